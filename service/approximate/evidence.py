"""The evidence of an approximate deletion, per task, and the held-out scores cached on every
model version (so a deletion scores only the new weights, never the old ones again)."""

from __future__ import annotations

from typing import Any

from torch import nn

from models.approximate.base import Family
from models.approximate.evidence import classifier_evidence, scores
from models.approximate.lm_evidence import lm_evidence, mean_nll, token_logprobs
from models.approximate.thresholds import AUC_Z_BEFORE_WIDENING
from service.approximate.data import Rows


def version_scores(
    family: Family, model: nn.Module, retain: Rows, held_out: Rows, config: dict[str, Any]
) -> dict[str, float]:
    """What later evidence compares against: held-out accuracy (classifiers) or retain and
    held-out NLL (language model, on the same retain sample the evidence uses)."""
    if family.task == "classifier":
        correct = scores(family, model, held_out.examples(family)).correct
        return {"TA": round(float(100 * correct.mean()), 2)}
    sample = retain.head(int(config["evidence_retain"]))
    return {
        "retain_nll": round(mean_nll(token_logprobs(family, model, sample.inputs)), 4),  # type: ignore[arg-type]
        "held_out_nll": round(mean_nll(token_logprobs(family, model, held_out.inputs)), 4),  # type: ignore[arg-type]
    }


def measure(
    family: Family,
    model: nn.Module,
    forget: Rows,
    retain: Rows,
    held_out: Rows,
    parent_scores: dict[str, Any] | None,
    baseline_scores: dict[str, Any] | None,
    config: dict[str, Any],
) -> tuple[dict[str, Any], dict[str, float]]:
    """(evidence with its two-sided flags, the new weights' cached scores).

    Utility is flagged against ``baseline_scores``, those of the newest exact version in the
    lineage (trained or retrained from scratch), so small losses do not add up unnoticed over
    many deletions; ``parent_scores`` are the served version's, shown as ``*_before``."""
    parent_scores = parent_scores or {}
    baseline = baseline_scores or {}
    sample = retain.head(int(config["evidence_retain"]))
    if family.task == "classifier":
        ev: dict[str, Any] = dict(
            classifier_evidence(
                family,
                model,
                forget.examples(family),
                sample.examples(family),
                held_out.examples(family),
                original_test_accuracy=baseline.get("TA"),
                auc_margin=float(config["auc_margin"]),
                auc_z=float(config.get("auc_z", AUC_Z_BEFORE_WIDENING)),
                max_test_drop=float(config["max_test_drop"]),
            )
        )
        ev.update(_shown(parent_scores, baseline, "TA"))
        return ev, {"TA": float(ev["TA"])}
    prefix, continuation = _decoding(int(family.max_length))  # type: ignore[attr-defined]
    ev = dict(
        lm_evidence(
            family,  # type: ignore[arg-type]
            model,
            [str(t) for t in forget.inputs],
            [str(t) for t in sample.inputs],
            [str(t) for t in held_out.inputs],
            prefix_tokens=prefix,
            continuation_tokens=continuation,
            original_retain_nll=baseline.get("retain_nll"),
            auc_margin=float(config["auc_margin"]),
            auc_z=float(config.get("auc_z", AUC_Z_BEFORE_WIDENING)),
            max_retain_nll_rise=float(config["max_retain_nll_rise"]),
        )
    )
    ev.update(_shown(parent_scores, baseline, "retain_nll"))
    return ev, {"retain_nll": float(ev["retain_nll"]), "held_out_nll": float(ev["held_out_nll"])}


def _shown(parent: dict[str, Any], baseline: dict[str, Any], name: str) -> dict[str, Any]:
    out = {}
    if name in parent:
        out[f"{name}_before"] = parent[name]
    if name in baseline:
        out[f"{name}_baseline"] = baseline[name]
    return out


def _decoding(window: int) -> tuple[int, int]:
    """Prefix and continuation lengths of the verbatim test: 24 + 16 tokens where the model's
    window (plus its last target) holds them, else half and half of what it holds."""
    if window + 1 >= 40:
        return 24, 16
    prefix = (window + 1) // 2
    return prefix, window + 1 - prefix


def flagged(evidence: dict[str, Any]) -> bool:
    return bool(evidence.get("under_unlearning") or evidence.get("over_unlearning"))
