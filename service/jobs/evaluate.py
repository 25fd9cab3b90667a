"""Score what a model serves on its held-out dataset after training and after each retrain,
and record it in the audit trail (``model.evaluated``: counts, overall and per label, never
records)."""

from __future__ import annotations

import logging

import torch
from sqlalchemy import select

from models.adapters import AdaptedEncoder
from models.checkpoints import CheckpointStore
from models.data import model_input
from models.ensemble import EnsemblePredictor
from models.progress import NULL_PROGRESS, Progress
from service.audit import log as audit
from service.db.engine import Database
from service.db.tables import DatasetRow, ModelRow, RecordRow
from service.erasure import vault
from service.lineage.served import served
from service.states import RecordState
from service.usecases.evaluate import per_class_counts

log = logging.getLogger(__name__)
BATCH = 128


def evaluate_served(
    db: Database,
    store: CheckpointStore,
    model_id: int,
    encoder: AdaptedEncoder,
    progress: Progress = NULL_PROGRESS,
) -> tuple[int, int] | None:
    """(correct, total) of the served ensemble on the model's held-out records, recorded as
    an audit event; ``None`` when the model has no held-out dataset or serves nothing.
    Never raises: a failed evaluation must not fail the job that published."""
    try:
        return _evaluate(db, store, model_id, encoder, progress)
    except Exception:
        log.exception("held-out evaluation of model %s failed", model_id)
        return None


def _evaluate(
    db: Database,
    store: CheckpointStore,
    model_id: int,
    encoder: AdaptedEncoder,
    progress: Progress,
) -> tuple[int, int] | None:
    with db.snapshot() as s:
        eval_id = s.scalar(select(ModelRow.eval_dataset_id).where(ModelRow.id == model_id))
        if eval_id is None:
            return None
        now = served(s, model_id)
        name = s.scalar(select(DatasetRow.name).where(DatasetRow.id == eval_id))
        found = s.execute(
            select(RecordRow.payload, RecordRow.label)
            .where(RecordRow.dataset_id == eval_id, RecordRow.state == RecordState.ACTIVE)
            .order_by(RecordRow.id)
        ).all()
        opened = vault.open_payloads(s, [p for p, _ in found])
        rows = [(p, label) for p, (_, label) in zip(opened, found, strict=True)]
    if not now.members or not rows:
        return None
    predictor = EnsemblePredictor.from_chains(
        encoder,
        store,
        now.members,
        n_classes=now.config.n_classes,
        max_length=now.config.max_length,
    )
    predicted: list[int] = []
    task = progress.task(f"model {model_id} held-out {name}", len(rows), unit="records")
    with task as advance, torch.no_grad():
        for start in range(0, len(rows), BATCH):
            batch = rows[start : start + BATCH]
            logits = predictor.logits([model_input(p) for p, _ in batch])
            predicted += logits.argmax(dim=-1).cpu().tolist()
            advance(len(batch))
    truth = [label for _, label in rows]
    correct = sum(t == p for t, p in zip(truth, predicted, strict=True))
    with db.write() as s:
        audit.append(
            s,
            "model.evaluated",
            {
                "model": model_id,
                "routing_version": now.version,
                "dataset": name,
                "n_correct": correct,
                "n_total": len(rows),
                "per_class": per_class_counts(truth, predicted, now.label_names),
            },
        )
    return correct, len(rows)
