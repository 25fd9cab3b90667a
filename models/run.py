"""A training run on a local directory: placement, sequence selection, per-shard caches,
S3T training, and evaluation of the served ensemble.

Layout of ``out/``::

    run.json        the run manifest (spec, placement, sequences, checkpoint chains, depths)
    checkpoints/    content-addressed safetensors files
    cache/shardN/   activation cache of shard N

The lineage database of the service replaces ``run.json``; the functions below are the same
building blocks it calls.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from models.adapters import build_encoder
from models.backbones import fit_problem
from models.cache import ActivationCache
from models.checkpoints import LocalCheckpointStore
from models.config import TrainConfig
from models.data import Dataset, load_dataset, model_input
from models.ensemble import EnsemblePredictor, Member
from models.errors import ModelsError
from models.files import write_atomic
from models.progress import NULL_PROGRESS, Progress
from models.s3t import S3TTrainer, ShardData, train_shard
from models.training import Example
from sharding import Placement, SelectionMethod, balance, select_sequences, serve

RUN_FILE = "run.json"
FORMAT = 1


class RunError(ModelsError):
    """A local training run cannot start (data, shapes) or its directory cannot be read."""


@dataclass(frozen=True)
class RunSpec:
    dataset: str = "rotten-tomatoes"
    n_shards: int = 4
    budget: int = 4
    selection: str = "cyclic"
    deletion_probs: tuple[float, ...] | None = None
    test_size: int = 2000
    train_size: int | None = None
    split_seed: int = 0
    config: TrainConfig = dataclasses.field(default_factory=TrainConfig)

    def __post_init__(self) -> None:
        SelectionMethod(self.selection)
        if self.n_shards < 1 or self.budget < 1 or self.test_size < 1:
            raise ValueError("n_shards, budget and test_size must be >= 1")

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["config"] = self.config.to_dict()
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RunSpec:
        probs = d.get("deletion_probs")
        return cls(
            **{
                **d,
                "deletion_probs": tuple(probs) if probs is not None else None,
                "config": TrainConfig.from_dict(d["config"]),
            }
        )


def split_dataset(spec: RunSpec) -> tuple[Dataset, Dataset]:
    data = load_dataset(spec.dataset)
    if spec.test_size >= len(data):
        raise RunError(f"test_size {spec.test_size} leaves no training data in {len(data)} records")
    train, test = data.split(spec.test_size, spec.split_seed)
    if spec.train_size is not None:
        if spec.train_size > len(train):
            raise RunError(f"train_size {spec.train_size} exceeds the {len(train)} records left")
        train = train.subset(spec.train_size, spec.split_seed)
    return train, test


def place_shards(train: Dataset, placement: Placement) -> list[ShardData]:
    """Examples of every shard by slice, from the keyed placement of each record's subject."""
    grid: list[list[list[Example]]] = [
        [[] for _ in range(placement.n_slices)] for _ in range(placement.n_shards)
    ]
    for r in train.records:
        addr = placement.place(r.record_id, r.subject_id)
        grid[addr.shard][addr.slice].append(Example(r.record_id, r.label))
    return [
        ShardData(i, tuple(tuple(sorted(s, key=lambda e: e.record_id)) for s in slices))
        for i, slices in enumerate(grid)
    ]


def train_run(
    spec: RunSpec, out: Path, *, secret: bytes, progress: Progress = NULL_PROGRESS
) -> dict[str, Any]:
    """Train every shard's sequences; writes and returns the run manifest."""
    config = spec.config
    train, test = split_dataset(spec)
    problem = fit_problem(config.backbone, config.n_classes, train.kind, len(train.label_names))
    if problem is not None:
        raise RunError(f"{train.name}: {problem}")
    placement = Placement(secret, spec.n_shards, config.n_slices)
    shards = place_shards(train, placement)
    report = balance(
        (placement.place(r.record_id, r.subject_id) for r in train.records),
        spec.n_shards,
        config.n_slices,
    )
    probs = None
    if spec.deletion_probs is not None:
        probs = {s: spec.deletion_probs for s in range(spec.n_shards)}
    sequences = select_sequences(
        SelectionMethod(spec.selection),
        n_shards=spec.n_shards,
        n_slices=config.n_slices,
        budget=spec.budget,
        deletion_probs=probs,
    )
    encoder = build_encoder(config)
    store = LocalCheckpointStore(out / "checkpoints")
    trainer = S3TTrainer(encoder, config, store)
    inputs = {r.record_id: model_input(r) for r in train.records}
    started = time.perf_counter()
    shard_entries = []
    for data in shards:
        if not any(data.slices):
            raise RunError(f"shard {data.shard} received no records; use fewer shards")
        empty = [i for i, s in enumerate(data.slices) if not s]
        if empty:
            raise RunError(f"shard {data.shard} has empty slice(s) {empty}; use fewer slices")
        cache = ActivationCache.build(
            out / "cache" / f"shard{data.shard}",
            encoder,
            [(e.record_id, inputs[e.record_id]) for s in data.slices for e in s],
            max_length=config.max_length,
            progress=progress,
            description=f"caching shard {data.shard}",
        )
        chains = train_shard(trainer, data, cache, sequences[data.shard], progress=progress)
        shard_entries.append(
            {
                "shard": data.shard,
                "slices": [[e.record_id for e in s] for s in data.slices],
                "sequences": [list(seq) for seq in sequences[data.shard]],
                "chains": [list(c) for c in chains],
                "depths": [len(c) for c in chains],
            }
        )
    manifest = {
        "format": FORMAT,
        "spec": spec.to_dict(),
        "config_hash": config.config_hash(),
        "backbone_sha256": encoder.backbone.weights_sha256,
        "secret_fingerprint": hashlib.sha256(secret).hexdigest()[:16],
        "train_records": len(train),
        "test_records": len(test),
        "label_names": list(train.label_names),
        "train_seconds": round(time.perf_counter() - started, 3),
        "balance": {
            "min_slice": report.min_slice,
            "max_slice": report.max_slice,
            "imbalance": report.imbalance,
            "chi2_pvalue": report.chi2_pvalue,
        },
        "shards": shard_entries,
    }
    write_manifest(out, manifest)
    return manifest


def write_manifest(out: Path, manifest: dict[str, Any]) -> None:
    out.mkdir(parents=True, exist_ok=True)
    write_atomic(out / RUN_FILE, json.dumps(manifest, indent=1).encode())


def load_manifest(out: Path) -> dict[str, Any]:
    try:
        manifest: dict[str, Any] = json.loads((out / RUN_FILE).read_text())
    except FileNotFoundError:
        raise RunError(f"{out} holds no trained run ({RUN_FILE} missing)") from None
    if manifest.get("format") != FORMAT:
        raise RunError(f"{out / RUN_FILE} has an unsupported format {manifest.get('format')!r}")
    return manifest


def served_members(manifest: dict[str, Any]) -> list[Member]:
    """Per shard, the sequence of greatest depth (ties: lowest index) cut to that depth."""
    members = []
    for entry in manifest["shards"]:
        route = serve(entry["shard"], entry["depths"])
        if route.sequence is not None:
            chain = entry["chains"][route.sequence][: route.depth]
            members.append(Member(entry["shard"], tuple(chain)))
    return members


@dataclass(frozen=True)
class Evaluation:
    accuracy: float
    n_test: int
    live_shards: int
    depths: dict[int, int]
    seconds: float


def evaluate_run(
    out: Path, *, batch_size: int = 64, progress: Progress = NULL_PROGRESS
) -> Evaluation:
    """Accuracy of the served ensemble on the run's held-out split."""
    manifest = load_manifest(out)
    spec = RunSpec.from_dict(manifest["spec"])
    config = spec.config
    _, test = split_dataset(spec)
    encoder = build_encoder(config)
    if encoder.backbone.weights_sha256 != manifest["backbone_sha256"]:
        raise RunError("the installed backbone weights differ from the ones this run trained on")
    members = served_members(manifest)
    predictor = EnsemblePredictor.from_chains(
        encoder,
        LocalCheckpointStore(out / "checkpoints"),
        members,
        n_classes=config.n_classes,
        max_length=config.max_length,
    )
    texts = [model_input(r) for r in test.records]
    labels = [r.label for r in test.records]
    started = time.perf_counter()
    correct = 0
    with progress.task("evaluating", len(texts), unit="records") as advance:
        for i in range(0, len(texts), batch_size):
            pred = predictor.predict(texts[i : i + batch_size], batch_size=batch_size)
            correct += sum(
                int(p) == y for p, y in zip(pred.tolist(), labels[i : i + batch_size], strict=True)
            )
            advance(len(pred))
    return Evaluation(
        accuracy=correct / len(texts),
        n_test=len(texts),
        live_shards=len(members),
        depths={m.shard: m.depth for m in members},
        seconds=round(time.perf_counter() - started, 3),
    )
