"""Comparison points for S3T, all on the same backbone and adapted layers.

- SISA: one model per shard with *all* adapted groups trained together on cumulative slices
  (0, 1, ..., L-1), a checkpoint per slice; after a deletion a shard falls back to the last
  checkpoint whose slices are clean.
- Full-data LoRA: every adapted group trained on all the training data at once.
- Probe: logistic regression on frozen mean-pooled embeddings.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from models.adapters import AdaptedEncoder
from models.checkpoints import CheckpointManifest, CheckpointStore
from models.config import TrainConfig
from models.data.records import records_digest
from models.determinism import derive_seed, generator
from models.head import ClassificationHead, pool
from models.progress import NULL_PROGRESS, Advance, Progress
from models.training import Example, RowSource, fit


@dataclass
class JointTrainer:
    """Trains every adapted group and the head together (SISA steps and full-data LoRA)."""

    encoder: AdaptedEncoder
    config: TrainConfig
    store: CheckpointStore
    head: ClassificationHead = field(init=False)

    def __post_init__(self) -> None:
        self.head = ClassificationHead(
            self.encoder.backbone.hidden_size,
            self.config.n_classes,
            self.encoder.backbone.pooling,
        )

    @property
    def groups(self) -> tuple[int, ...]:
        return tuple(range(1, self.encoder.n_groups + 1))

    def step(
        self,
        *,
        kind: str,
        shard: int,
        slice_ids: tuple[int, ...],
        examples: Sequence[Example],
        source: RowSource,
        parent: str | None,
        advance: Advance | None = None,
    ) -> str:
        """One joint training step, continued from ``parent`` (or a seeded init)."""
        seed = derive_seed(self.config.config_hash(), kind, shard, slice_ids)
        gen = generator(seed)
        if parent is None:
            self.head.reset(gen)
            for g in self.groups:
                self.encoder.reset_group(g, gen)
        else:
            tensors = self.store.get(parent)[0]
            for g in self.groups:
                prefix = f"group{g}."
                self.encoder.load_group_state(
                    g,
                    {k.removeprefix(prefix): v for k, v in tensors.items() if k.startswith(prefix)},
                )
            self.head.load(tensors)
        self.encoder.set_active_groups(len(self.groups))
        fit(
            encoder=self.encoder,
            head=self.head,
            source=source,
            input_group=len(self.groups),
            examples=examples,
            trainable_groups=self.groups,
            config=self.config,
            generator=gen,
            advance=advance,
        )
        tensors = {
            f"group{g}.{n}": t for g in self.groups for n, t in self.encoder.group_state(g).items()
        }
        tensors.update(self.head.state())
        manifest = CheckpointManifest(
            kind=kind,
            config_hash=self.config.config_hash(),
            backbone_sha256=self.encoder.backbone.weights_sha256,
            shard=shard,
            step=len(slice_ids),
            slice_ids=slice_ids,
            records_digest=records_digest(e.record_id for e in examples),
            n_records=len(examples),
            seed=seed,
            parent=parent,
            groups=self.groups,
        )
        return self.store.put(tensors, manifest)


def train_sisa_shard(
    trainer: JointTrainer,
    *,
    shard: int,
    slices: Sequence[Sequence[Example]],
    source: RowSource,
    progress: Progress = NULL_PROGRESS,
) -> tuple[str, ...]:
    """SISA checkpoints after slices 0, 0..1, ..., 0..L-1 of one shard."""
    chain: list[str] = []
    total = sum(len(s) * (len(slices) - i) for i, s in enumerate(slices)) * trainer.config.epochs
    with progress.task(f"SISA shard {shard}", total, unit="examples") as advance:
        for k in range(1, len(slices) + 1):
            examples = [e for s in slices[:k] for e in s]
            chain.append(
                trainer.step(
                    kind="sisa-step",
                    shard=shard,
                    slice_ids=tuple(range(k)),
                    examples=examples,
                    source=source,
                    parent=chain[-1] if chain else None,
                    advance=advance,
                )
            )
    return tuple(chain)


def train_full(
    trainer: JointTrainer,
    *,
    examples: Sequence[Example],
    source: RowSource,
    progress: Progress = NULL_PROGRESS,
) -> str:
    """A single LoRA model on all the training data."""
    with progress.task(
        "full-data LoRA", len(examples) * trainer.config.epochs, unit="examples"
    ) as advance:
        return trainer.step(
            kind="full",
            shard=-1,
            slice_ids=(),
            examples=examples,
            source=source,
            parent=None,
            advance=advance,
        )


@torch.no_grad()
def frozen_embeddings(
    encoder: AdaptedEncoder, texts: Sequence[object], *, max_length: int, batch_size: int = 64
) -> np.ndarray:
    """Pooled last-layer states of the plain backbone (adapters off), [n, hidden]."""
    encoder.set_active_groups(0)
    backbone = encoder.backbone
    rows = []
    for i in range(0, len(texts), batch_size):
        inputs = backbone.prepare(texts[i : i + batch_size], max_length)
        hidden = encoder.forward_from(backbone.embed(inputs), inputs.attention_mask, 0)
        rows.append(pool(hidden, inputs.attention_mask, backbone.pooling).numpy())
    return np.concatenate(rows)


def probe_accuracy(
    train_x: np.ndarray,
    train_y: Sequence[int],
    test_x: np.ndarray,
    test_y: Sequence[int],
    *,
    seed: int,
) -> float:
    """Accuracy of a logistic-regression probe on frozen embeddings."""
    from sklearn.linear_model import LogisticRegression

    clf = LogisticRegression(max_iter=2000, C=1.0, random_state=seed)
    clf.fit(train_x, np.asarray(train_y))
    return float((clf.predict(test_x) == np.asarray(test_y)).mean())
