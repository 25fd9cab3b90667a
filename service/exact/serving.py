"""Serving an S3T model: every live shard's served chain, logits averaged over shards."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from models.adapters import AdaptedEncoder
from models.ensemble import EnsemblePredictor
from service.jobs.shards import make_encoder
from service.kind import Prediction, ServeContext
from service.lineage.errors import Conflict, Unavailable
from service.lineage.served import Route, served
from service.predict import classify
from service.states import ModelState


@dataclass
class ExactLoaded:
    version: int
    data_kind: str
    predictor: EnsemblePredictor
    label_names: list[str]
    routes: list[Route]

    def answer(self, inputs: Sequence[object]) -> Prediction:
        logits = self.predictor.logits(list(inputs))
        return classify(logits, self.label_names, self.version, self.routes)


def load_exact(model_id: int, ctx: ServeContext) -> ExactLoaded:
    with ctx.db.snapshot() as s:
        now = served(s, model_id)
    if not now.members:
        if now.status in (ModelState.PENDING, ModelState.TRAINING):
            raise Conflict(f"model {model_id} is still {now.status}: nothing to serve yet")
        raise Unavailable(f"every shard of model {model_id} is dead until retraining ends")
    # One encoder per model, shared by its loaded versions (the server runs one forward at
    # a time per model).
    encoders: dict[int, AdaptedEncoder] = ctx.cache.setdefault("encoders", {})
    encoder = encoders.get(model_id)
    if encoder is None:
        encoder = encoders[model_id] = make_encoder(now.config)
    predictor = EnsemblePredictor.from_chains(
        encoder,
        ctx.store,
        now.members,
        n_classes=now.config.n_classes,
        max_length=now.config.max_length,
    )
    return ExactLoaded(now.version, now.kind, predictor, now.label_names, now.routes)
