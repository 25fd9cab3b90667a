"""When the evidence of an approximate deletion is flagged for review: the thresholds a model
is registered with, their defaults and help text (read by the registry's spec, the API schema
and the CLI options). Torch-free, so the front ends can show them without loading a model."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

# A model whose stored config has no ``auc_z`` was registered before the band was widened by
# the AUC's standard error: its evidence keeps the bare margin it was registered with (z = 0),
# so a deletion on it flags exactly what it flagged before. New models store ``auc_z``.
AUC_Z_BEFORE_WIDENING = 0.0


@dataclass(frozen=True, kw_only=True)
class EvidenceThresholds:
    """Keyword-only, so a spec that extends it keeps its own positional fields first.

    Fields carry their help text in ``metadata["help"]`` (``models.config.help_of``)."""

    auc_margin: float = dataclasses.field(
        default=0.05, metadata={"help": "flag when the attack AUC leaves 0.5 ± this"}
    )
    auc_z: float = dataclasses.field(
        default=1.96,
        metadata={
            "help": "widen the margin to this many standard errors of a same-distribution AUC"
        },
    )
    max_test_drop: float = dataclasses.field(
        default=5.0, metadata={"help": "classifiers: flag a held-out accuracy drop, points"}
    )
    max_retain_nll_rise: float = dataclasses.field(
        default=0.10, metadata={"help": "language model: flag a relative retain-NLL rise"}
    )
    evidence_retain: int = dataclasses.field(
        default=1000, metadata={"help": "retain records scored for the evidence (first by id)"}
    )


DEFAULT_THRESHOLDS = EvidenceThresholds()
