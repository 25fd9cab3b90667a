"""The predict path: check the routing version on every call, reload what changed.

A prediction reads the model's routing version (one primary-key read) before and after it
computes; if a deletion committed in between, it computes again on the new routing. So once
a deletion's ``202`` has been sent, no answer of any API process comes from a cut checkpoint.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from sqlalchemy import select

from models.adapters import AdaptedEncoder
from models.ensemble import EnsemblePredictor
from service.approximate.serving import LiveVersion, load_live
from service.approximate.store import version_store
from service.core import Service
from service.db.tables import DatasetRow, ModelRow
from service.jobs.shards import make_encoder
from service.lineage.errors import Conflict, NotFound, Unavailable, Unprocessable
from service.lineage.served import Route, served

MAX_RETRIES = 3


@dataclass(frozen=True)
class Prediction:
    labels: list[str]
    probabilities: list[list[float]]
    routing_version: int
    routes: list[Route]
    model_version: int | None = None  # approximate models: the live version that answered
    completions: list[str] | None = None  # the language model's answer


@dataclass
class _Loaded:
    version: int
    predictor: EnsemblePredictor | LiveVersion
    label_names: list[str]
    kind: str
    routes: list[Route]
    model_version: int | None = None


class ModelServer:
    """Per-process cache of loaded ensembles, keyed by model and routing version."""

    def __init__(self, service: Service) -> None:
        self.service = service
        self._loaded: dict[int, _Loaded] = {}
        self._encoders: dict[int, AdaptedEncoder] = {}
        self._lock = threading.Lock()
        # One encoder per model is shared by its loaded versions: one forward at a time.
        self._model_locks: dict[int, threading.Lock] = {}

    def routing_version(self, model_id: int) -> int:
        with self.service.db.read() as s:
            version = s.scalar(select(ModelRow.routing_version).where(ModelRow.id == model_id))
        if version is None:
            raise NotFound(f"no model {model_id}")
        return version

    def predict(self, model_id: int, inputs: Sequence[object]) -> Prediction:
        version = self.routing_version(model_id)
        for _ in range(MAX_RETRIES):
            loaded = self._current(model_id, version)
            _check_inputs(inputs, loaded.kind)
            with self._model_locks[model_id]:
                answer = _answer(loaded, inputs)
            after = self.routing_version(model_id)
            if after == loaded.version:
                return answer
            version = after
        raise Unavailable("routing kept changing during the prediction; retry")

    def _current(self, model_id: int, version: int) -> _Loaded:
        with self._lock:
            cached = self._loaded.get(model_id)
            if cached is not None and cached.version == version:
                return cached
            self._model_locks.setdefault(model_id, threading.Lock())
            loaded = self._load(model_id)
            self._loaded[model_id] = loaded
            return loaded

    def _load(self, model_id: int) -> _Loaded:
        with self.service.db.snapshot() as s:
            model = s.get(ModelRow, model_id)
            if model is not None and model.kind == "approximate":
                dataset = s.get(DatasetRow, model.dataset_id)
                assert dataset is not None
                live = load_live(s, model, version_store(self.service.settings.checkpoints_dir))
                return _Loaded(
                    model.routing_version,
                    live,
                    list(dataset.label_names),
                    dataset.kind,
                    [],
                    live.version,
                )
            now = served(s, model_id)
        if not now.members:
            if now.status in ("pending", "training"):
                raise Conflict(f"model {model_id} is still {now.status}: nothing to serve yet")
            raise Unavailable(f"every shard of model {model_id} is dead until retraining ends")
        encoder = self._encoders.get(model_id)
        if encoder is None:
            encoder = self._encoders[model_id] = make_encoder(now.config)
        predictor = EnsemblePredictor.from_chains(
            encoder,
            self.service.store,
            now.members,
            n_classes=now.config.n_classes,
            max_length=now.config.max_length,
        )
        return _Loaded(now.version, predictor, now.label_names, now.kind, now.routes)


def _answer(loaded: _Loaded, inputs: Sequence[object]) -> Prediction:
    predictor = loaded.predictor
    if isinstance(predictor, LiveVersion) and predictor.family.task == "lm":
        return Prediction(
            [],
            [],
            loaded.version,
            [],
            loaded.model_version,
            predictor.complete(list(inputs)),  # type: ignore[arg-type]
        )
    probs = torch.softmax(predictor.logits(list(inputs)), dim=-1)
    return Prediction(
        labels=[loaded.label_names[i] for i in probs.argmax(dim=-1).tolist()],
        probabilities=[[round(p, 6) for p in row] for row in probs.tolist()],
        routing_version=loaded.version,
        routes=loaded.routes,
        model_version=loaded.model_version,
    )


def _check_inputs(inputs: Sequence[object], kind: str) -> None:
    if kind == "text":
        if not all(isinstance(x, str) and x.strip() for x in inputs):
            raise Unprocessable("this model reads text: every input must be a non-blank string")
    elif not all(
        isinstance(x, list) and x and all(isinstance(v, int | float) for v in x) for x in inputs
    ):
        raise Unprocessable("this model reads features: every input must be a list of numbers")
