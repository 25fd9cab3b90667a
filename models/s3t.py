"""Slice-wise S3T training of one shard: top-down layer groups on cumulative slices.

Step ``k`` of a sequence ``pi`` trains the LoRA weights of group ``k`` (and the head, continued
from step ``k-1``) on slices ``pi_1..pi_k``. Groups ``1..k-1`` are restored from their own
checkpoints, switched on and frozen; groups below ``k`` are off. Every step's seed comes from
(config hash, shard, prefix), and data order from record ids, so the checkpoint of a prefix is a
pure function of the records in it: sequences sharing a prefix share checkpoints, and retraining
after a deletion reproduces training from scratch on the remaining data bit for bit.

A step whose slices are all empty (erased) is a normal step: it trains nothing and keeps its
group's zero LoRA and its parent's head.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import torch

from models.adapters import AdaptedEncoder
from models.checkpoints import CheckpointManifest, CheckpointStore
from models.config import TrainConfig
from models.data.records import records_digest
from models.determinism import derive_seed, generator
from models.errors import ModelsError
from models.head import ClassificationHead, LMHead
from models.progress import NULL_PROGRESS, Advance, Progress
from models.training import Example, RowSource, fit
from sharding import RetrainTask


class IsolationError(ModelsError):
    """A training step changed the weights of a group it must leave alone."""


@dataclass(frozen=True)
class ShardData:
    """The training examples of one shard, by slice id (0..L-1)."""

    shard: int
    slices: tuple[tuple[Example, ...], ...]

    def examples(self, slice_ids: Sequence[int]) -> list[Example]:
        out = [e for s in slice_ids for e in self.slices[s]]
        return sorted(out, key=lambda e: e.record_id)

    def without(self, record_ids: set[str]) -> ShardData:
        """The same shard with ``record_ids`` erased."""
        return ShardData(
            self.shard,
            tuple(tuple(e for e in sl if e.record_id not in record_ids) for sl in self.slices),
        )

    def slices_holding(self, record_ids: set[str]) -> set[int]:
        return {i for i, sl in enumerate(self.slices) if any(e.record_id in record_ids for e in sl)}


@dataclass
class S3TTrainer:
    encoder: AdaptedEncoder
    config: TrainConfig
    store: CheckpointStore
    head: ClassificationHead | LMHead = field(init=False)

    def __post_init__(self) -> None:
        if self.encoder.n_groups != self.config.n_slices:
            raise ValueError("encoder groups must equal the number of slices")
        self.head = make_head(self.encoder, self.config)
        self.head.eval()

    def train_sequence(
        self,
        data: ShardData,
        source: RowSource,
        sequence: Sequence[int],
        *,
        restored: Sequence[str] = (),
        shared: dict[tuple[int, ...], str] | None = None,
        progress: Progress = NULL_PROGRESS,
    ) -> tuple[str, ...]:
        """Checkpoint addresses for steps 1..L of ``sequence``.

        ``restored`` are the addresses of steps ``1..len(restored)``, kept as they are (the
        retrain path); ``shared`` maps prefixes already trained in this shard to their address.
        """
        seq = tuple(sequence)
        if sorted(seq) != list(range(self.config.n_slices)):
            raise ValueError(f"sequence {seq} is not a permutation of the shard's slices")
        chain = list(restored)
        for k, address in enumerate(chain, start=1):
            manifest = self.store.get(address)[1]
            if manifest.slice_ids != seq[:k] or manifest.shard != data.shard:
                raise ValueError(
                    f"restored checkpoint {address} does not belong to step {k} of {seq}"
                )
        shared = {} if shared is None else shared
        sizes = [len(s) for s in data.slices]
        units = sequence_units(sizes, seq, first_step=len(chain) + 1, epochs=self.config.epochs)
        with progress.task(f"shard {data.shard} sequence {seq}", units, unit="examples") as advance:
            for k in range(len(chain) + 1, len(seq) + 1):
                prefix = seq[:k]
                sha = shared.get(prefix)
                if sha is None:
                    sha = self.train_step(data, source, prefix, chain, advance=advance)
                    shared[prefix] = sha
                else:
                    advance(len(data.examples(prefix)) * self.config.epochs)
                chain.append(sha)
        return tuple(chain)

    def train_step(
        self,
        data: ShardData,
        source: RowSource,
        prefix: tuple[int, ...],
        parents: Sequence[str],
        *,
        advance: Advance | None = None,
    ) -> str:
        """Train step ``k = len(prefix)`` on top of ``parents`` (steps 1..k-1); returns its sha."""
        k = len(prefix)
        if len(parents) != k - 1:
            raise ValueError(f"step {k} needs {k - 1} parent checkpoints, got {len(parents)}")
        self.restore(parents)
        seed = derive_seed(self.config.config_hash(), "s3t", data.shard, prefix)
        gen = generator(seed)
        if k == 1:
            self.head.reset(gen)
        self.encoder.reset_group(k, gen)
        self.encoder.set_active_groups(k)
        frozen = {j: self.encoder.group_hash(j) for j in range(1, k)}
        examples = data.examples(prefix)
        if examples:
            fit(
                encoder=self.encoder,
                head=self.head,
                source=source,
                input_group=k,
                examples=examples,
                trainable_groups=(k,),
                config=self.config,
                generator=gen,
                advance=advance,
            )
        # else: an empty step (every slice of the prefix erased). Group k keeps its seeded
        # init, whose LoRA B is zero, so the group adds nothing; the head stays the parent's
        # (at step 1 its seeded init: serving leaves out a shard whose served step holds no
        # record, ``service.lineage.served``). Still a
        # pure function of (config, shard, prefix, no records): retrain equivalence holds.
        changed = [j for j, h in frozen.items() if self.encoder.group_hash(j) != h]
        if changed:
            raise IsolationError(f"step {k} changed frozen group(s) {changed}")
        tensors = {f"group{k}.{n}": t for n, t in self.encoder.group_state(k).items()}
        tensors.update(self.head.state())
        manifest = CheckpointManifest(
            kind="s3t-step",
            config_hash=self.config.config_hash(),
            backbone_sha256=self.encoder.backbone.weights_sha256,
            shard=data.shard,
            step=k,
            slice_ids=prefix,
            records_digest=records_digest(e.record_id for e in examples),
            n_records=len(examples),
            seed=seed,
            parent=parents[-1] if parents else None,
            groups=(k,),
        )
        return self.store.put(tensors, manifest)

    def restore(self, chain: Sequence[str]) -> None:
        """Load groups 1..len(chain) and the head of the last step from their checkpoints."""
        for k, sha in enumerate(chain, start=1):
            tensors, _ = self.store.get(sha)
            self.encoder.load_group_state(k, group_tensors(tensors, k))
            if k == len(chain):
                self.head.load(tensors)
        self.encoder.set_active_groups(len(chain))


def make_head(encoder: AdaptedEncoder, config: TrainConfig) -> ClassificationHead | LMHead:
    """The task's head: a classifier trained with the groups, or the causal LM's own output
    layer, frozen (``task="lm"``)."""
    backbone = encoder.backbone
    if config.task == "lm":
        if backbone.lm_head is None:
            raise ValueError(
                f"backbone {backbone.name} has no language-model output layer: the lm task "
                "needs a decoder-only model saved with its head"
            )
        return LMHead(backbone.lm_head)
    return ClassificationHead(backbone.hidden_size, config.n_classes, backbone.pooling)


def sequence_units(
    slice_sizes: Sequence[int], sequence: Sequence[int], *, first_step: int = 1, epochs: int
) -> int:
    """Examples times epochs that steps ``first_step..L`` of ``sequence`` train (step ``k``
    on slices ``pi_1..pi_k``), shared prefixes included: what ``train_sequence`` reports
    as done, so a job can know its total before it trains."""
    seq = tuple(sequence)
    per_epoch = sum(sum(slice_sizes[s] for s in seq[:k]) for k in range(first_step, len(seq) + 1))
    return per_epoch * epochs


def group_tensors(tensors: Mapping[str, torch.Tensor], group: int) -> dict[str, torch.Tensor]:
    prefix = f"group{group}."
    return {k.removeprefix(prefix): v for k, v in tensors.items() if k.startswith(prefix)}


def train_shard(
    trainer: S3TTrainer,
    data: ShardData,
    source: RowSource,
    sequences: Sequence[Sequence[int]],
    *,
    progress: Progress = NULL_PROGRESS,
) -> tuple[tuple[str, ...], ...]:
    """All sequences of one shard (shared prefixes trained once)."""
    shared: dict[tuple[int, ...], str] = {}
    return tuple(
        trainer.train_sequence(data, source, seq, shared=shared, progress=progress)
        for seq in sequences
    )


def retrain_sequence(
    trainer: S3TTrainer,
    data: ShardData,
    source: RowSource,
    sequence: Sequence[int],
    chain: Sequence[str],
    *,
    from_step: int,
    progress: Progress = NULL_PROGRESS,
) -> tuple[str, ...]:
    """Restore steps ``1..from_step-1`` of ``chain`` and re-run ``from_step..L`` on ``data``
    (which must already have the erased records removed)."""
    if not 1 <= from_step <= len(sequence):
        raise ValueError(f"from_step {from_step} out of range 1..{len(sequence)}")
    return trainer.train_sequence(
        data, source, sequence, restored=chain[: from_step - 1], progress=progress
    )


def retrain_shard(
    trainer: S3TTrainer,
    data: ShardData,
    source: RowSource,
    sequences: Sequence[Sequence[int]],
    chains: Sequence[Sequence[str]],
    tasks: Sequence[RetrainTask],
    *,
    progress: Progress = NULL_PROGRESS,
) -> tuple[tuple[str, ...], ...]:
    """Apply a shard's retrain plan (``sharding.plan_deletion(...).retrain``): every task's
    sequence is retrained from its step; the other chains are returned unchanged."""
    out = [tuple(c) for c in chains]
    for task in tasks:
        if task.shard != data.shard:
            raise ValueError(f"retrain task for shard {task.shard} given to shard {data.shard}")
        out[task.sequence] = retrain_sequence(
            trainer,
            data,
            source,
            sequences[task.sequence],
            chains[task.sequence],
            from_step=task.from_step,
            progress=progress,
        )
    return tuple(out)
