"""Tune S3T training settings on a validation split carved from the training data.

    python -m bench.tune [--variants 2 3 2:0.001] [--out FILE.json]

The benchmark's test split is never read: the shard and the validation records both come
from the 8,000 training records of ``bench.accuracy``'s split. One shard is trained with S3T
(one sequence), SISA and full-data LoRA on the same records, and each is scored on the
validation records; the S3T-minus-SISA gap on one shard is the proxy for the ensemble gap.
A variant is ``EPOCHS[:LR]``.
"""

from __future__ import annotations

import argparse
import hashlib
import time
from pathlib import Path
from typing import Any

from bench.common import ROOT, print_table, write_json

SLICES = 4


def _variant(text: str) -> dict[str, Any]:
    parts = text.split(":")
    out: dict[str, Any] = {"epochs": int(parts[0])}
    if len(parts) > 1:
        out["lr"] = float(parts[1])
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variants", nargs="+", default=["1", "2", "3", "2:0.001", "2:0.004"])
    parser.add_argument("--baselines", nargs="*", default=["sisa", "full"])
    parser.add_argument("--shard-size", type=int, default=2000)
    parser.add_argument("--val-size", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workdir", default=str(ROOT / "runs" / "bench-tune"))
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "tune.json"))
    args = parser.parse_args()

    from models.adapters import build_encoder
    from models.baselines import JointTrainer, train_full, train_sisa_shard
    from models.cache import ActivationCache
    from models.checkpoints import InMemoryCheckpointStore
    from models.config import TrainConfig
    from models.determinism import configure_determinism
    from models.ensemble import EnsemblePredictor, Member, load_combined
    from models.run import RunSpec, place_shards, split_dataset
    from models.s3t import S3TTrainer
    from models.training import Example
    from sharding import Placement

    configure_determinism()
    train, _ = split_dataset(RunSpec(test_size=2000, train_size=8000))
    pool = train.subset(args.shard_size + args.val_size, 1000 + args.seed)
    shard_set, val_set = pool.split(args.val_size, 2000 + args.seed)
    shard_records, val = shard_set.records, val_set.records
    val_texts = [r.text or "" for r in val]
    val_labels = [r.label for r in val]

    base = TrainConfig(n_slices=SLICES, seed=args.seed)
    encoder = build_encoder(base)
    cache_dir = Path(args.workdir) / f"cache-{args.seed}-{args.shard_size}"
    if not (cache_dir / "index.json").exists():
        ActivationCache.build(
            cache_dir,
            encoder,
            [(r.record_id, r.text or "") for r in shard_records],
            max_length=base.max_length,
        )
    cache = ActivationCache(cache_dir)
    secret = hashlib.sha256(f"bench-tune-{args.seed}".encode()).digest()
    (data,) = place_shards(shard_set, Placement(secret, 1, SLICES))

    def accuracy(predictor: EnsemblePredictor) -> float:
        pred = predictor.predict(val_texts).tolist()
        return sum(int(p == y) for p, y in zip(pred, val_labels, strict=True)) / len(val)

    rows: list[dict[str, Any]] = []

    def record(method: str, variant: str, acc: float, started: float) -> None:
        rows.append(
            {
                "method": method,
                "variant": variant,
                "val_accuracy": acc,
                "seconds": time.perf_counter() - started,
            }
        )
        print(rows[-1], flush=True)

    for text in args.variants:
        config = TrainConfig(n_slices=SLICES, seed=args.seed, **_variant(text))
        store = InMemoryCheckpointStore()
        started = time.perf_counter()
        chain = S3TTrainer(encoder, config, store).train_sequence(data, cache, tuple(range(SLICES)))
        predictor = EnsemblePredictor.from_chains(
            encoder, store, [Member(0, chain)], n_classes=2, max_length=base.max_length
        )
        acc = accuracy(predictor)
        record("s3t", text, acc, started)
    for method in args.baselines:
        store = InMemoryCheckpointStore()
        joint = JointTrainer(encoder, base, store)
        started = time.perf_counter()
        if method == "sisa":
            sha = train_sisa_shard(joint, shard=0, slices=data.slices, source=cache)[-1]
        else:
            examples = [Example(r.record_id, r.label) for r in shard_records]
            sha = train_full(joint, examples=examples, source=cache)
        member = load_combined(store, sha, shard=0, n_groups=SLICES)
        acc = accuracy(EnsemblePredictor(encoder, [member], n_classes=2, max_length=64))
        record(method, str(base.epochs), acc, started)
    print_table(
        f"validation accuracy ({args.shard_size} train / {len(val)} validation, seed {args.seed})",
        ["method", "variant", "val acc", "seconds"],
        [(r["method"], r["variant"], r["val_accuracy"], r["seconds"]) for r in rows],
    )
    write_json(Path(args.out), {"seed": args.seed, "shard_size": args.shard_size, "runs": rows})


if __name__ == "__main__":
    main()
