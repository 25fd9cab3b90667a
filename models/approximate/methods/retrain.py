"""Retrain from scratch on the retain set with the family's own recipe: exact, and the
reference every approximate method is measured against."""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from models.approximate.methods.base import Context, Method


class Retrain(Method):
    name = "Retrain"
    exact = True
    drive: ClassVar[Literal["forget", "retain", "none"]] = "none"
    defaults: ClassVar[dict[str, Any]] = {}

    def prepare(self, ctx: Context) -> None:
        assert ctx.retain is not None
        seed = int(ctx.state.get("seed", 0))
        ctx.model = ctx.family.fit(ctx.family.build(seed), ctx.retain, seed=seed)
