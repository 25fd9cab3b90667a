"""Serving an approximate model's live version: class logits, or greedy continuations for the
language model."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from sqlalchemy.orm import Session
from torch import nn

from models.approximate.base import Family
from models.approximate.families import load_weights, make_family, to_examples
from models.approximate.lm_evidence import greedy_continue
from service.approximate.jobs import FISHER
from service.approximate.store import VersionStore, version_store
from service.approximate.versions import live_version
from service.db.tables import DatasetRow, ModelRow
from service.kind import Prediction, ServeContext
from service.lineage.errors import Conflict, NotFound, Unavailable
from service.predict import classify
from service.states import ModelState

CONTINUATION_TOKENS = 32


@dataclass
class LiveVersion:
    family: Family
    net: nn.Module
    version: int
    sha256: str

    def logits(self, inputs: Sequence[object]) -> torch.Tensor:
        examples = to_examples(self.family, list(inputs), [0] * len(inputs))
        with torch.no_grad():
            return self.family.forward(self.net, next(examples.batches(len(inputs)))).logits[:, 0]

    def complete(self, prompts: Sequence[str]) -> list[str]:
        """Greedy continuation of each prompt (the model's window permitting)."""
        out = []
        window = int(getattr(self.family, "max_length", 64))
        for prompt in prompts:
            ids = self.family.tokenize(prompt)[:-1]  # type: ignore[attr-defined]  # no EOS
            ids = ids[-(window - 1) :]
            n = min(CONTINUATION_TOKENS, window - len(ids))
            new = greedy_continue(self.family, self.net, torch.tensor([ids]), n)  # type: ignore[arg-type]
            out.append(self.family.detokenize(new[0].tolist()))  # type: ignore[attr-defined]
        return out


@dataclass
class ApproximateLoaded:
    version: int
    data_kind: str
    live: LiveVersion
    label_names: list[str]

    def answer(self, inputs: Sequence[object]) -> Prediction:
        if self.live.family.task == "lm":
            prompts = [str(x) for x in inputs]
            return Prediction(
                [], [], self.version, [], self.live.version, self.live.complete(prompts)
            )
        logits = self.live.logits(inputs)
        return classify(logits, self.label_names, self.version, [], self.live.version)


def load_approximate(model_id: int, ctx: ServeContext) -> ApproximateLoaded:
    """The live version of the model, loaded in one snapshot."""
    with ctx.db.snapshot() as s:
        model = s.get(ModelRow, model_id)
        if model is None:
            raise NotFound(f"no model {model_id}")
        dataset = s.get(DatasetRow, model.dataset_id)
        assert dataset is not None
        live = load_live(s, model, version_store(ctx.settings.checkpoints_dir))
        return ApproximateLoaded(
            model.routing_version, dataset.kind, live, list(dataset.label_names)
        )


def load_live(s: Session, model: ModelRow, store: VersionStore) -> LiveVersion:
    live = live_version(s, model.id)
    if live is None:
        if model.status in (ModelState.PENDING, ModelState.TRAINING):
            raise Conflict(f"model {model.id} is still {model.status}: nothing to serve yet")
        raise Unavailable(f"model {model.id} has no live version")
    dataset = s.get(DatasetRow, model.dataset_id)
    assert dataset is not None and model.family is not None
    family = make_family(model.family, model.config["family_params"], len(dataset.label_names))
    tensors = {k: v for k, v in store.get(live.sha256).items() if not k.startswith(FISHER)}
    net = load_weights(family.build(int(model.config["seed"])), tensors)
    return LiveVersion(family, net, live.version, live.sha256)
