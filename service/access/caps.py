"""Caps on the work one API key can queue: model layout and training parameters, dataset
upload size, models per key (``UNLEARN_MAX_*`` settings). The operator CLI is not capped."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from service.access.errors import Forbidden
from service.lineage.errors import Unprocessable


@dataclass(frozen=True)
class Caps:
    shards: int = 16
    slices: int = 12
    budget: int = 8
    epochs: int = 20
    rank: int = 64
    tokens: int = 512  # max_length: tokens per input
    size: int = 4096  # any other integer hyperparameter (widths, layers, batch size)
    upload_bytes: int = 16 * 1024 * 1024
    models_per_key: int = 10

    # What each cap bounds, by the parameter names the API and the families use.
    def named(self) -> dict[str, tuple[int, str]]:
        return {
            "shards": (self.shards, "UNLEARN_MAX_SHARDS"),
            "n_shards": (self.shards, "UNLEARN_MAX_SHARDS"),
            "slices": (self.slices, "UNLEARN_MAX_SLICES"),
            "n_slices": (self.slices, "UNLEARN_MAX_SLICES"),
            "budget": (self.budget, "UNLEARN_MAX_BUDGET"),
            "epochs": (self.epochs, "UNLEARN_MAX_EPOCHS"),
            "rank": (self.rank, "UNLEARN_MAX_RANK"),
            "max_length": (self.tokens, "UNLEARN_MAX_TOKENS"),
        }

    def check_params(self, params: Mapping[str, Any], what: str = "") -> None:
        """422 naming the first parameter over its cap (and the setting that sets it)."""
        named = self.named()
        for key, value in params.items():
            number = _number(value)
            if number is None:
                continue
            cap, setting = named.get(key, (self.size, "UNLEARN_MAX_SIZE"))
            if number > cap and (key in named or float(number).is_integer()):
                raise Unprocessable(
                    f"{what}{key}={value} exceeds this deployment's cap of {cap} ({setting})"
                )

    def check_upload(self, n_bytes: int) -> None:
        if n_bytes > self.upload_bytes:
            raise Unprocessable(
                f"the upload has {n_bytes} bytes; this deployment takes at most "
                f"{self.upload_bytes} per dataset (UNLEARN_MAX_UPLOAD_BYTES)"
            )

    def check_model_count(self, existing: int) -> None:
        if existing >= self.models_per_key:
            raise Forbidden(
                f"this key has registered {existing} models, the most one key may "
                f"(UNLEARN_MAX_MODELS_PER_KEY={self.models_per_key})"
            )


def _number(value: object) -> float | None:
    """A parameter as a number when it reads as one (``1e6`` and ``"1000000"`` too: the
    methods turn them into ints), else ``None``."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None
