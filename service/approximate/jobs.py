"""The two jobs of an approximate model: ``fit`` (train on all its records; version 1) and
``unlearn`` (run a method on the live version for the requests the job serves).

An ``unlearn`` job publishes by compare-and-swap: only if the version it started from is still
live. Otherwise (another deletion's version was published meanwhile) it fails and its retry
starts from the new live version, so no published version ever drops an earlier forgetting.
"""

from __future__ import annotations

import logging
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session
from torch import Tensor, nn

from models.approximate.base import Family
from models.approximate.families import load_weights, make_family, weights
from models.approximate.methods.ssd import importances
from models.approximate.run import unlearn
from service.approximate.data import Rows, forget_rows, held_out_rows, training_rows
from service.approximate.evidence import flagged, measure, version_scores
from service.approximate.store import VersionStore, version_store
from service.approximate.versions import exact_ancestor, live_version, next_version, publish
from service.audit import log as audit
from service.db.base import utcnow
from service.db.engine import Database
from service.db.tables import (
    DatasetRow,
    DeletionJobRow,
    DeletionRequestRow,
    JobRow,
    ModelRow,
    ModelVersionRow,
)
from service.jobs.attempt import Attempt
from service.jobs.files import discarding_unused
from service.jobs.lifecycle import transition
from service.jobs.progress import JobProgress, beating
from service.lineage.registry import get_model
from service.states import CLOSED_REQUEST_STATES, ModelState, RequestState, VersionState

log = logging.getLogger(__name__)
FISHER = "fisher."  # weights-file prefix of the SSD importances stored with a version


class ParentChanged(RuntimeError):
    """The live version changed while the job ran; its retry starts from the new one."""


@dataclass(frozen=True)
class Setup:
    model_id: int
    config: dict[str, Any]
    method: str
    n_classes: int
    eval_dataset_id: int

    def family(self) -> Family:
        return make_family(self.config["family"], self.config["family_params"], self.n_classes)

    @property
    def seed(self) -> int:
        return int(self.config["seed"])


def _setup(s: Session, model: ModelRow) -> Setup:
    dataset = s.get(DatasetRow, model.dataset_id)
    assert dataset is not None and model.method is not None and model.eval_dataset_id is not None
    return Setup(
        model.id, dict(model.config), model.method, len(dataset.label_names), model.eval_dataset_id
    )


def run_fit(ctx: Attempt) -> None:
    db = ctx.db
    with db.write() as s:
        job = ctx.owned(s)
        model = get_model(s, job.model_id)
        model.status = ModelState.TRAINING
    with db.snapshot() as s:
        model = get_model(s, job.model_id)
        setup = _setup(s, model)
        data_version = model.routing_version
        train = training_rows(s, model.id)
        held_out = held_out_rows(s, setup.eval_dataset_id)
    family = setup.family()
    tracker = JobProgress(db, ctx.job_id, ctx.number, ctx.progress)
    with beating(tracker):
        examples = train.examples(family)
        net = family.fit(family.build(setup.seed), examples, seed=setup.seed)
        fisher = importances(family, net, examples) if setup.method == "SSD" else {}
        scores = version_scores(family, net, train, held_out, setup.config)
    store = version_store(ctx.settings.checkpoints_dir)
    sha = store.put(_with_fisher(net, fisher))
    with _cleanup(db, store, sha), db.write() as s:
        model = get_model(s, setup.model_id, lock=True)
        job = ctx.owned(s)
        row = ModelVersionRow(
            model_id=model.id,
            version=next_version(s, model.id),
            sha256=sha,
            job_id=job.id,
            method="train",
            exact=True,
            state=VersionState.CANDIDATE,
            data_version=data_version,
            held_out=scores,
        )
        s.add(row)
        publish(s, model, row)
        model.status = ModelState.READY
        audit.append(
            s, "model.trained", {"model": model.id, "job": job.id, "n_records": len(train)}
        )
        job.evidence = {"version": row.version, "n_records": len(train), **scores}
        ctx.finish(s, job)


@dataclass(frozen=True)
class _Work:
    """What an ``unlearn`` job reads, in one snapshot."""

    parent_id: int
    parent_sha: str
    parent_scores: dict[str, Any] | None
    baseline_scores: dict[str, Any] | None
    forget: Rows
    retain: Rows
    held_out: Rows
    data_version: int
    params: dict[str, Any]


def _read(s: Session, job: JobRow, model: ModelRow, setup: Setup) -> _Work | None:
    """``None`` when the model failed to train (it serves nothing, so nothing to forget)."""
    parent = live_version(s, model.id)
    if parent is None:
        if model.status == ModelState.FAILED:
            return None
        raise RuntimeError(f"model {model.id} has no live version yet (still training?)")
    waiting = [r.id for r in _waiting(s, job.id)]
    return _Work(
        parent.id,
        parent.sha256,
        parent.held_out,
        exact_ancestor(s, parent).held_out,
        forget_rows(s, model.id, waiting, parent.data_version),
        training_rows(s, model.id),
        held_out_rows(s, setup.eval_dataset_id),
        model.routing_version,
        dict(job.params or {}),
    )


def run_unlearn(ctx: Attempt) -> None:
    db, job_id = ctx.db, ctx.job_id
    with db.snapshot() as s:
        job = s.get(JobRow, job_id)
        assert job is not None
        model = get_model(s, job.model_id)
        setup = _setup(s, model)
        work = _read(s, job, model, setup)
    if work is None or not len(work.forget):
        live = None if work is None else work.parent_id
        _nothing_to_forget(ctx, setup.model_id, live)
        return
    parent_id, forget, retain, held_out = work.parent_id, work.forget, work.retain, work.held_out
    params, data_version = work.params, work.data_version
    method, overrides = str(params["method"]), dict(params.get("overrides", {}))
    family = setup.family()
    store = version_store(ctx.settings.checkpoints_dir)
    saved = store.get(work.parent_sha)
    fisher = {k[len(FISHER) :]: v for k, v in saved.items() if k.startswith(FISHER)}
    net = load_weights(
        family.build(setup.seed), {k: v for k, v in saved.items() if not k.startswith(FISHER)}
    )
    tracker = JobProgress(db, ctx.job_id, ctx.number, ctx.progress)
    with beating(tracker):
        result = unlearn(
            family,
            net,
            method,
            forget.examples(family),
            retain.examples(family),
            seed=setup.seed,
            train_importances=fisher or None,
            progress=tracker,
            **overrides,
        )
        evidence, scores = measure(
            family,
            result.model,
            forget,
            retain,
            held_out,
            work.parent_scores,
            work.baseline_scores,
            setup.config,
        )
    evidence.update(
        method=result.method,
        params=result.params,
        seconds=round(result.seconds, 3),
        steps=result.steps,
        n_forget=len(forget),
        n_retain=len(retain),
    )
    review = not result.exact and flagged(evidence)
    sha = store.put(_with_fisher(result.model, fisher))
    retired = None
    with _cleanup(db, store, sha), db.write() as s:
        model = get_model(s, setup.model_id, lock=True)
        job = ctx.owned(s)
        parent = s.get(ModelVersionRow, parent_id)
        assert parent is not None
        if parent.state != VersionState.LIVE:
            raise ParentChanged(
                f"version {parent.version} of model {model.id} is no longer live; "
                "the retry unlearns from the live one"
            )
        row = ModelVersionRow(
            model_id=model.id,
            version=next_version(s, model.id),
            sha256=sha,
            parent_id=parent.id,
            job_id=job.id,
            method=result.method,
            exact=result.exact,
            state=VersionState.CANDIDATE,
            data_version=data_version if result.exact else parent.data_version,
            evidence=evidence,
            held_out=scores,
        )
        s.add(row)
        s.flush()
        if not review:
            retired = publish(s, model, row)
        job.evidence = {
            "version": row.version,
            "method": row.method,
            "exact": row.exact,
            "needs_review": review,
        }
        if review:
            now = utcnow()
            for req in _waiting(s, job_id):
                detail = {"model": model.id, "version": row.version}
                transition(s, req, RequestState.NEEDS_REVIEW, now, detail)
        ctx.finish(s, job)
    if retired is not None:
        store.delete(retired)


def _waiting(s: Session, job_id: int) -> list[DeletionRequestRow]:
    return list(
        s.scalars(
            select(DeletionRequestRow)
            .join(DeletionJobRow, DeletionJobRow.request_id == DeletionRequestRow.id)
            .where(
                DeletionJobRow.job_id == job_id,
                DeletionRequestRow.state.not_in(
                    (*CLOSED_REQUEST_STATES, RequestState.NEEDS_REVIEW)
                ),
            )
            .order_by(DeletionRequestRow.id)
        )
    )


def _nothing_to_forget(ctx: Attempt, model_id: int, live: int | None) -> None:
    """The live weights were never trained on the requests' records (trained or retrained
    after they were erased), or the model never trained at all: nothing to unlearn, and the
    request can complete."""
    with ctx.db.write() as s:
        get_model(s, model_id, lock=True)
        job = ctx.owned(s)
        row = None if live is None else s.get(ModelVersionRow, live)
        job.evidence = {
            "version": None if row is None else row.version,
            "method": "none",
            "exact": True,
            "note": "the model failed to train and serves nothing"
            if row is None
            else "the live version was trained without these records",
        }
        ctx.finish(s, job)


def _with_fisher(net: nn.Module, fisher: dict[str, Tensor]) -> dict[str, Tensor]:
    return {**weights(net), **{FISHER + k: v for k, v in fisher.items()}}


def _cleanup(db: Database, store: VersionStore, sha: str) -> AbstractContextManager[None]:
    """Delete the job's weights file unless a version row uses it when the block ends."""
    return discarding_unused(db, lambda: [sha], _versions_using, store.delete)


def _versions_using(s: Session, shas: list[str]) -> set[str]:
    return set(s.scalars(select(ModelVersionRow.sha256).where(ModelVersionRow.sha256.in_(shas))))
