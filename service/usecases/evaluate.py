"""Scoring what a model serves on an imported dataset (``unlearn evaluate``): accuracy,
per-class precision, recall and F1, and the confusion matrix.

Only the dataset's active records are scored (an erased record's payload is gone). The
answers come from the model server (``service.serving``) in batches; every batch must come
from one routing version, so the scores describe one served state: if a deletion or a
publication lands mid-way the whole pass runs again (at most ``MAX_PASSES`` times).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol

from pydantic import Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from models.data import model_input
from service.db.tables import DatasetRow, ModelRow, RecordRow
from service.erasure import vault
from service.lineage.datasets import get_dataset
from service.lineage.errors import Unavailable, Unprocessable
from service.states import RecordState
from service.views import View

BATCH = 128
MAX_PASSES = 3


class Scored(Protocol):
    """What a model server answers for one batch (``service.kind.Prediction``)."""

    @property
    def labels(self) -> list[str]: ...
    @property
    def routing_version(self) -> int: ...
    @property
    def routes(self) -> Sequence[Any]: ...
    @property
    def model_version(self) -> int | None: ...


class ClassScore(View):
    label: str
    support: int = Field(description="records of this label in the dataset")
    predicted: int = Field(description="records the model gave this label")
    correct: int
    precision: float | None = Field(description="correct / predicted; null when never predicted")
    recall: float | None = Field(description="correct / support; null without support")
    f1: float | None


class RouteUsed(View):
    shard: int
    sequence: int | None
    depth: int


class Evaluation(View):
    """A model scored on one dataset at one routing version."""

    model: int
    dataset: str
    routing_version: int
    model_version: int | None = Field(None, description="approximate models: the live version")
    routes: list[RouteUsed] = Field(description="S3T models: the sequence and depth per shard")
    n_records: int
    n_correct: int
    accuracy: float
    label_names: list[str]
    per_class: list[ClassScore]
    confusion: list[list[int]] = Field(
        description="confusion[true][predicted]: records, in label_names order"
    )


def confusion_matrix(truth: Sequence[int], predicted: Sequence[int], n: int) -> list[list[int]]:
    """``m[t][p]``: how many records of label ``t`` were predicted ``p``."""
    m = [[0] * n for _ in range(n)]
    for t, p in zip(truth, predicted, strict=True):
        m[t][p] += 1
    return m


def class_scores(confusion: list[list[int]], label_names: Sequence[str]) -> list[ClassScore]:
    out = []
    for i, name in enumerate(label_names):
        correct = confusion[i][i]
        support = sum(confusion[i])
        predicted = sum(row[i] for row in confusion)
        precision = correct / predicted if predicted else None
        recall = correct / support if support else None
        f1 = None
        if precision is not None and recall is not None:
            f1 = 0.0 if precision + recall == 0 else 2 * precision * recall / (precision + recall)
        out.append(
            ClassScore(
                label=name,
                support=support,
                predicted=predicted,
                correct=correct,
                precision=precision,
                recall=recall,
                f1=f1,
            )
        )
    return out


def per_class_counts(
    truth: Sequence[int], predicted: Sequence[int], label_names: Sequence[str]
) -> list[dict[str, Any]]:
    """Per label, records and correct answers (what ``model.evaluated`` audit events carry)."""
    m = confusion_matrix(truth, predicted, len(label_names))
    return [
        {"label": name, "n_correct": m[i][i], "n_total": sum(m[i])}
        for i, name in enumerate(label_names)
    ]


def scoring_inputs(
    s: Session, model: ModelRow, name: str
) -> tuple[list[str], list[object], list[int]]:
    """The label names, model inputs and true labels of dataset ``name``'s active records
    (id order); its kind and labels must be those ``model`` was trained on."""
    dataset = get_dataset(s, name)
    trained_on = s.get(DatasetRow, model.dataset_id)
    assert trained_on is not None
    if dataset.kind != trained_on.kind or dataset.label_names != trained_on.label_names:
        raise Unprocessable(
            f"dataset {name!r} must have the model's kind and labels "
            f"({trained_on.kind}, {trained_on.label_names})"
        )
    found = s.execute(
        select(RecordRow.payload, RecordRow.label)
        .where(RecordRow.dataset_id == dataset.id, RecordRow.state == RecordState.ACTIVE)
        .order_by(RecordRow.id)
    ).all()
    rows = [(p, y) for p, y in found if p is not None]  # an active record keeps its payload
    opened = vault.open_payloads(s, [p for p, _ in rows])
    return list(dataset.label_names), [model_input(p) for p in opened], [y for _, y in rows]


def score(
    *,
    model_id: int,
    dataset: str,
    label_names: Sequence[str],
    inputs: Sequence[object],
    truth: Sequence[int],
    predict: Callable[[Sequence[object]], Scored],
) -> Evaluation:
    """Score ``predict``'s answers on ``inputs`` against ``truth`` (label indices)."""
    if not inputs:
        raise Unprocessable(f"dataset {dataset!r} has no active records to score")
    index = {name: i for i, name in enumerate(label_names)}
    for _ in range(MAX_PASSES):
        answers = [predict(inputs[i : i + BATCH]) for i in range(0, len(inputs), BATCH)]
        first = answers[0]
        if any(a.routing_version != first.routing_version for a in answers):
            continue  # the served state changed mid-way: score one state only
        labels = [label for a in answers for label in a.labels]
        if len(labels) != len(inputs):
            raise Unprocessable(f"model {model_id} does not answer with labels")
        predicted = [index[label] for label in labels]
        m = confusion_matrix(truth, predicted, len(label_names))
        correct = sum(m[i][i] for i in range(len(label_names)))
        return Evaluation(
            model=model_id,
            dataset=dataset,
            routing_version=first.routing_version,
            model_version=first.model_version,
            routes=[
                RouteUsed(shard=r.shard, sequence=r.sequence, depth=r.depth) for r in first.routes
            ],
            n_records=len(inputs),
            n_correct=correct,
            accuracy=correct / len(inputs),
            label_names=list(label_names),
            per_class=class_scores(m, label_names),
            confusion=m,
        )
    raise Unavailable("routing kept changing during the evaluation; retry")
