"""``Service.evaluate``: scores of what a model serves, before and after one label's
training records are all erased (the model status then warns for that label)."""

from __future__ import annotations

import dataclasses
from collections import Counter

import pytest

from service.audit.report import build_report
from service.core import Service
from service.jobs.runner import LocalWorker
from service.lineage.deletion import DeletionInput
from service.lineage.errors import NotFound, Unprocessable
from service.serving import ModelServer
from service.usecases.evaluate import Evaluation, class_scores, confusion_matrix
from tests.service.conftest import SMALL, synthetic_dataset
from tests.service.lineage.test_evaluate import held_out


def test_confusion_and_class_scores_by_hand() -> None:
    truth = [0, 0, 0, 1, 1, 2]
    predicted = [0, 1, 0, 1, 0, 1]
    m = confusion_matrix(truth, predicted, 3)
    assert m == [[2, 1, 0], [1, 1, 0], [0, 1, 0]]
    a, b, c = class_scores(m, ["a", "b", "c"])
    assert (a.support, a.predicted, a.correct) == (3, 3, 2)
    assert a.precision == pytest.approx(2 / 3) and a.recall == pytest.approx(2 / 3)
    assert a.f1 == pytest.approx(2 / 3)
    assert b.precision == pytest.approx(1 / 3) and b.recall == pytest.approx(1 / 2)
    assert b.f1 == pytest.approx(2 * (1 / 3) * (1 / 2) / (1 / 3 + 1 / 2))
    # Never predicted: precision undefined; recall 0 of 1; F1 undefined with it.
    assert (c.predicted, c.precision, c.recall, c.f1) == (0, None, 0.0, None)


def independent(service: Service, model_id: int, evaluation: Evaluation) -> None:
    """The evaluation's numbers, recomputed from the model's own answers on the held-out
    texts (every held-out record is active here)."""
    records = held_out().records
    answer = service.predict(model_id, [r.text for r in records])
    assert answer.routing_version == evaluation.routing_version
    names = ["neg", "pos"]
    pairs = Counter((names[r.label], got) for r, got in zip(records, answer.labels, strict=True))
    assert evaluation.n_records == len(records)
    assert evaluation.n_correct == pairs["neg", "neg"] + pairs["pos", "pos"]
    assert evaluation.accuracy == pytest.approx(evaluation.n_correct / len(records))
    assert evaluation.confusion == [[pairs[t, p] for p in names] for t in names]
    for score in evaluation.per_class:
        label = score.label
        hits = pairs[label, label]
        given = sum(n for (_, p), n in pairs.items() if p == label)
        support = sum(n for (t, _), n in pairs.items() if t == label)
        assert (score.support, score.predicted, score.correct) == (support, given, hits)
        assert score.recall == pytest.approx(hits / support)
        assert score.precision == (None if given == 0 else pytest.approx(hits / given))


@pytest.mark.parametrize("service", ["sqlite"], indirect=True)
def test_evaluate_before_and_after_erasing_every_record_of_one_label(service: Service) -> None:
    service.import_dataset("synthetic", synthetic_dataset())
    service.import_dataset("held-out", held_out())
    model_id = service.create_model(
        "synthetic", dataclasses.replace(SMALL, eval_dataset="held-out")
    )
    LocalWorker(service.db, service.settings).drain()
    service.predictor = ModelServer(service)

    before = service.evaluate(model_id, "held-out")
    independent(service, model_id, before)
    assert before.label_names == ["neg", "pos"] and before.dataset == "held-out"
    assert [r.depth for r in before.routes] == [3, 3]
    (status,) = service.model_statuses(model_id)
    assert [(x.label, x.trained, x.active, x.warning) for x in status.labels] == [
        ("neg", 36, 36, None),
        ("pos", 36, 36, None),
    ]

    positives = tuple(r.record_id for r in synthetic_dataset().records if r.label == 1)
    service.delete(DeletionInput(record_ids=positives, dataset="synthetic"))
    (status,) = service.model_statuses(model_id)
    neg, pos = status.labels
    assert (neg.active, neg.warning) == (36, None)
    assert (pos.trained, pos.active) == (36, 0)
    assert pos.warning is not None and "'pos'" in pos.warning and "no active" in pos.warning

    LocalWorker(service.db, service.settings).drain()
    after = service.evaluate(model_id, "held-out")
    assert after.routing_version > before.routing_version
    assert [r.depth for r in after.routes] == [3, 3]
    independent(service, model_id, after)
    # Retrained without a single positive record, the model finds fewer positives.
    assert after.per_class[1].correct < before.per_class[1].correct

    # The held-out scores after training and after the retrains, per label in the report.
    with service.db.snapshot() as s:
        report = build_report(s, start=None, end=None)
    (entry,) = report["accuracy"]
    points = {p["routing_version"]: p["per_class"] for p in entry["points"]}
    for scored in (before, after):
        assert points[scored.routing_version] == [
            {
                "label": c.label,
                "n_correct": c.correct,
                "n_total": c.support,
                "accuracy": c.recall,
            }
            for c in scored.per_class
        ]


def test_evaluate_needs_a_dataset_with_the_models_labels(service: Service) -> None:
    service.import_dataset("synthetic", synthetic_dataset())
    model_id = service.create_model("synthetic", SMALL)
    (status,) = service.model_statuses(model_id)  # placed at registration, not yet trained
    assert [(x.label, x.trained, x.active) for x in status.labels] == [
        ("neg", 36, 36),
        ("pos", 36, 36),
    ]
    service.predictor = ModelServer(service)
    with pytest.raises(NotFound):
        service.evaluate(model_id, "nope")
    service.import_dataset("other", dataclasses.replace(held_out(), label_names=("a", "b")))
    with pytest.raises(Unprocessable, match="kind and labels"):
        service.evaluate(model_id, "other")
