"""How well a classifier forgot, measured cheaply (single forward passes), in SalUn's terms:

* UA (unlearning accuracy): 100 - accuracy on the forget set; RA, TA: accuracy on the retain
  and test sets;
* MIA-efficacy: share of the forget set that a confidence-based membership attack (trained on
  retain = members vs test = non-members) calls non-members;
* loss-attack AUC: how well the per-example loss tells forget from test (0.5: like unseen data).

Flags are two-sided: *under*-unlearning when the forget set still looks like training data,
*over*-unlearning when it looks less like members than unseen data does (a tell-tale of its
own) or when test accuracy fell by more than ``max_test_drop`` points.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from torch import nn

from models.approximate.base import Examples, Family, per_example_nll
from models.approximate.thresholds import AUC_Z_BEFORE_WIDENING, DEFAULT_THRESHOLDS

METRICS = ("UA", "RA", "TA", "MIA")


@dataclass(frozen=True)
class Scores:
    correct: np.ndarray  # bool per example
    loss: np.ndarray  # per-example NLL


def scores(family: Family, model: nn.Module, data: Examples, batch_size: int = 512) -> Scores:
    correct, losses = [], []
    model.eval()
    with torch.no_grad():
        for batch in data.batches(batch_size):
            out = family.forward(model, batch)
            correct.append((out.logits.argmax(-1) == out.targets).all(dim=1).numpy())
            losses.append(per_example_nll(out).numpy())
    return Scores(np.concatenate(correct), np.concatenate(losses))


def mia_efficacy(forget: Scores, retain: Scores, test: Scores, seed: int = 0) -> float:
    """Percentage of forget examples the attack predicts to be non-members."""
    n = min(len(retain.loss), len(test.loss))
    rng = np.random.default_rng(seed)
    members = rng.choice(retain.loss, n, replace=False)
    features = np.concatenate([members, test.loss[:n]]).reshape(-1, 1)
    labels = np.concatenate([np.ones(n), np.zeros(n)])
    attack = LogisticRegression().fit(-np.log1p(features), labels)
    predicted = attack.predict(-np.log1p(forget.loss.reshape(-1, 1)))
    return float(100 * (predicted == 0).mean())


def loss_auc(forget: Scores, held_out: Scores) -> float:
    """AUC of "lower loss means member", forget (positive) vs held-out (negative)."""
    labels = np.concatenate([np.ones(len(forget.loss)), np.zeros(len(held_out.loss))])
    return float(roc_auc_score(labels, -np.concatenate([forget.loss, held_out.loss])))


def auc_band(n_forget: int, n_held_out: int, margin: float, z: float = 0.0) -> float:
    """How far an attack AUC must leave 0.5 to be flagged: ``margin``, widened to ``z``
    standard errors of the AUC of two samples of these sizes drawn from one distribution
    (Mann-Whitney, ``sqrt((n1 + n2 + 1) / (12 n1 n2))``), so a small forget set's noise alone
    does not raise a flag. ``z = 0`` keeps the bare margin."""
    if n_forget < 1 or n_held_out < 1:
        return margin
    se: float = ((n_forget + n_held_out + 1) / (12 * n_forget * n_held_out)) ** 0.5
    return max(margin, z * se)


def classifier_evidence(
    family: Family,
    model: nn.Module,
    forget: Examples,
    retain: Examples,
    test: Examples,
    *,
    original_test_accuracy: float | None = None,
    reference: dict[str, float] | None = None,
    auc_margin: float = DEFAULT_THRESHOLDS.auc_margin,
    auc_z: float = AUC_Z_BEFORE_WIDENING,
    max_test_drop: float = DEFAULT_THRESHOLDS.max_test_drop,
) -> dict[str, float | bool]:
    """The evidence dict stored with the request (floats in percent, AUC in [0, 1])."""
    f, r, t = (scores(family, model, d) for d in (forget, retain, test))
    ev: dict[str, float | bool] = {
        "UA": round(float(100 * (1 - f.correct.mean())), 2),
        "RA": round(float(100 * r.correct.mean()), 2),
        "TA": round(float(100 * t.correct.mean()), 2),
        "MIA": round(mia_efficacy(f, r, t), 2),
        "loss_auc": round(loss_auc(f, t), 4),
        "forget_loss": round(float(f.loss.mean()), 4),
    }
    dropped = (
        original_test_accuracy is not None and original_test_accuracy - ev["TA"] > max_test_drop
    )
    band = auc_band(len(f.loss), len(t.loss), auc_margin, auc_z)
    ev["auc_band"] = round(band, 4)
    ev["under_unlearning"] = bool(ev["loss_auc"] > 0.5 + band)
    ev["over_unlearning"] = bool(ev["loss_auc"] < 0.5 - band or dropped)
    if reference is not None:
        gaps = {m: abs(float(ev[m]) - float(reference[m])) for m in METRICS}
        ev.update({f"gap_{m}": round(g, 2) for m, g in gaps.items()})
        ev["avg_gap"] = round(sum(gaps.values()) / len(gaps), 2)
    return ev
