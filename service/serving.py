"""The predict path: check the routing version on every call, reload what changed.

A prediction reads the model's routing version (one primary-key read) before and after it
computes; if a deletion committed in between, it computes again on the new routing. So once
a deletion's ``202`` has been sent, no answer of any API process comes from a cut checkpoint.
What a model loads and how it answers is its kind's (``ModelKind.load``).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Protocol

from sqlalchemy import select

from models.checkpoints import LocalCheckpointStore
from service.db.engine import Database
from service.db.tables import ModelRow
from service.kind import Loaded, Prediction, ServeContext
from service.kinds import kind_of
from service.lineage.errors import NotFound, Unavailable, Unprocessable
from service.settings import Settings

__all__ = ["MAX_RETRIES", "ModelServer", "Prediction"]

MAX_RETRIES = 3


class Opened(Protocol):
    """What the server needs of the opened service."""

    db: Database
    settings: Settings
    store: LocalCheckpointStore


class ModelServer:
    """Per-process cache of loaded models, keyed by model and routing version."""

    def __init__(self, service: Opened) -> None:
        self.db = service.db
        self._ctx = ServeContext(service.db, service.settings, service.store)
        self._loaded: dict[int, Loaded] = {}
        self._lock = threading.Lock()
        # A model's loaded versions share its encoder: one forward at a time per model.
        self._model_locks: dict[int, threading.Lock] = {}

    def routing_version(self, model_id: int) -> int:
        with self.db.read() as s:
            version = s.scalar(select(ModelRow.routing_version).where(ModelRow.id == model_id))
        if version is None:
            raise NotFound(f"no model {model_id}")
        return version

    def predict(self, model_id: int, inputs: Sequence[object]) -> Prediction:
        version = self.routing_version(model_id)
        for _ in range(MAX_RETRIES):
            loaded = self._current(model_id, version)
            _check_inputs(inputs, loaded.data_kind)
            with self._model_locks[model_id]:
                answer = loaded.answer(inputs)
            after = self.routing_version(model_id)
            if after == loaded.version:
                return answer
            version = after
        raise Unavailable("routing kept changing during the prediction; retry")

    def _current(self, model_id: int, version: int) -> Loaded:
        with self._lock:
            cached = self._loaded.get(model_id)
            if cached is not None and cached.version == version:
                return cached
            self._model_locks.setdefault(model_id, threading.Lock())
            with self.db.read() as s:
                model = s.get(ModelRow, model_id)
                if model is None:
                    raise NotFound(f"no model {model_id}")
                kind = kind_of(model)
            loaded = kind.load(model_id, self._ctx)
            self._loaded[model_id] = loaded
            return loaded


def _check_inputs(inputs: Sequence[object], kind: str) -> None:
    if kind == "text":
        if not all(isinstance(x, str) and x.strip() for x in inputs):
            raise Unprocessable("this model reads text: every input must be a non-blank string")
    elif not all(
        isinstance(x, list) and x and all(isinstance(v, int | float) for v in x) for x in inputs
    ):
        raise Unprocessable("this model reads features: every input must be a list of numbers")
