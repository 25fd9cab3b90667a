"""Ensemble inference over shards: mean of logits over live shards.

A shard served at depth ``d`` is ``backbone + groups 1..d + head_d``. Everything below group
``d`` is the plain backbone, the same for every shard, so with ``shared_prefix=True`` the plain
layers run once per batch (up to each served depth's boundary) and only the adapted top layers
run per shard.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from models.adapters import AdaptedEncoder, GroupState
from models.checkpoints import CheckpointStore
from models.errors import ModelsError
from models.head import ClassificationHead, HeadState
from models.s3t import group_tensors


@dataclass(frozen=True)
class Member:
    """One live shard as served: its checkpoint chain for steps 1..depth."""

    shard: int
    checkpoints: tuple[str, ...]

    @property
    def depth(self) -> int:
        return len(self.checkpoints)


@dataclass(frozen=True)
class LoadedMember:
    """Weights of one served shard: LoRA states of groups 1..depth and its head."""

    shard: int
    depth: int
    groups: tuple[GroupState, ...]
    head: HeadState


def load_chain(store: CheckpointStore, member: Member) -> LoadedMember:
    """An S3T member: checkpoint ``k`` holds group ``k``; the head comes from the last one."""
    tensors = [store.get(sha)[0] for sha in member.checkpoints]
    groups = tuple(group_tensors(t, k) for k, t in enumerate(tensors, start=1))
    return LoadedMember(member.shard, member.depth, groups, head_tensors(tensors[-1]))


def load_combined(store: CheckpointStore, sha: str, *, shard: int, n_groups: int) -> LoadedMember:
    """A SISA or full-data checkpoint: one file with every group and the head."""
    tensors = store.get(sha)[0]
    groups = tuple(group_tensors(tensors, k) for k in range(1, n_groups + 1))
    return LoadedMember(shard, n_groups, groups, head_tensors(tensors))


def head_tensors(tensors: dict[str, torch.Tensor]) -> HeadState:
    return {k: v for k, v in tensors.items() if k.startswith("head.")}


class NoLiveShardError(ModelsError):
    """Every shard is dead (depth 0): the ensemble has nothing to serve."""


class EnsemblePredictor:
    def __init__(
        self,
        encoder: AdaptedEncoder,
        members: Sequence[LoadedMember],
        *,
        n_classes: int,
        max_length: int,
    ) -> None:
        self.members = [m for m in members if m.depth > 0]
        if not self.members:
            raise NoLiveShardError("every shard is dead: nothing can be served")
        self.encoder = encoder
        self.max_length = max_length
        self.head = ClassificationHead(
            encoder.backbone.hidden_size, n_classes, encoder.backbone.pooling
        ).eval()
        self.head.to(encoder.device)

    @classmethod
    def from_chains(
        cls,
        encoder: AdaptedEncoder,
        store: CheckpointStore,
        members: Sequence[Member],
        *,
        n_classes: int,
        max_length: int,
    ) -> EnsemblePredictor:
        loaded = [load_chain(store, m) for m in members if m.depth > 0]
        return cls(encoder, loaded, n_classes=n_classes, max_length=max_length)

    def _activate(self, member: LoadedMember) -> None:
        for k, state in enumerate(member.groups, start=1):
            self.encoder.load_group_state(k, state)
        self.encoder.set_active_groups(member.depth)
        self.head.load(member.head)

    @torch.no_grad()
    def logits(
        self, texts: Sequence[object], *, batch_size: int = 64, shared_prefix: bool = True
    ) -> torch.Tensor:
        """Mean logits over live shards, [len(texts), n_classes]."""
        out = []
        for i in range(0, len(texts), batch_size):
            chunk = texts[i : i + batch_size]
            if shared_prefix:
                out.append(self._shared_batch(chunk))
            else:
                out.append(self._naive_batch(chunk))
        return torch.cat(out)

    def predict(
        self, texts: Sequence[object], *, batch_size: int = 64, shared_prefix: bool = True
    ) -> torch.Tensor:
        """The ensemble's class per text: the argmax of :meth:`logits`."""
        logits = self.logits(texts, batch_size=batch_size, shared_prefix=shared_prefix)
        return logits.argmax(dim=-1)

    def _naive_batch(self, texts: Sequence[object]) -> torch.Tensor:
        backbone = self.encoder.backbone
        inputs = backbone.prepare(texts, self.max_length)
        total = torch.zeros(
            len(texts), self.head.linear.out_features, device=inputs.input_ids.device
        )
        for member in self.members:
            self._activate(member)
            hidden = self.encoder.forward_from(backbone.embed(inputs), inputs.attention_mask, 0)
            logits = self.head(hidden, inputs.attention_mask)
            total += logits
        return (total / len(self.members)).cpu()

    def _shared_batch(self, texts: Sequence[object]) -> torch.Tensor:
        backbone = self.encoder.backbone
        layout = self.encoder.layout
        inputs = backbone.prepare(texts, self.max_length)
        mask = inputs.attention_mask
        self.encoder.set_active_groups(0)
        plain: dict[int, torch.Tensor] = {}
        hidden, layer = backbone.embed(inputs), 0
        for depth in sorted({m.depth for m in self.members}, reverse=True):
            stop = layout.boundary(depth)
            hidden = backbone.run_layers(hidden, mask, layer, stop)
            plain[depth], layer = hidden, stop
        total = torch.zeros(
            len(texts), self.head.linear.out_features, device=inputs.input_ids.device
        )
        for member in self.members:
            self._activate(member)
            top = self.encoder.forward_from(
                plain[member.depth], mask, layout.boundary(member.depth)
            )
            logits = self.head(top, mask)
            total += logits
        return (total / len(self.members)).cpu()
