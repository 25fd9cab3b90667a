"""Accuracy benchmark on Rotten Tomatoes: S3T ensemble vs full-data LoRA vs SISA vs a probe.

    python -m bench.accuracy [--seeds 0 1 2] [--epochs 2] [--out bench/results/accuracy.json]

Every (method, seed) runs in its own process so wall time and peak RAM are its own. The plain
backbone's activation cache is built once (it depends only on the records) and shared.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import statistics
import time
from pathlib import Path
from typing import Any

from bench.common import ROOT, peak_rss_mb, print_table, run_worker, write_json

METHODS = ("s3t", "full", "sisa", "probe")
SHARDS, SLICES, BUDGET = 4, 4, 4


def _setup(args: argparse.Namespace) -> tuple[Any, ...]:
    from models.adapters import build_encoder
    from models.config import TrainConfig
    from models.determinism import configure_determinism
    from models.run import RunSpec, split_dataset

    configure_determinism()
    config = TrainConfig(n_slices=SLICES, epochs=args.epochs, seed=args.seed)
    spec = RunSpec(test_size=args.test_size, train_size=args.train_size, config=config)
    train, test = split_dataset(spec)
    encoder = build_encoder(config)
    return config, train, test, encoder


def prepare(args: argparse.Namespace) -> dict[str, Any]:
    from models.cache import ActivationCache

    config, train, _, encoder = _setup(args)
    started = time.perf_counter()
    ActivationCache.build(
        Path(args.workdir) / "cache",
        encoder,
        [(r.record_id, r.text or "") for r in train.records],
        max_length=config.max_length,
    )
    return {"cache_seconds": time.perf_counter() - started, "train_records": len(train)}


def worker(args: argparse.Namespace) -> dict[str, Any]:
    from models.baselines import (
        JointTrainer,
        frozen_embeddings,
        probe_accuracy,
        train_full,
        train_sisa_shard,
    )
    from models.cache import ActivationCache
    from models.checkpoints import InMemoryCheckpointStore
    from models.ensemble import EnsemblePredictor, Member, load_combined
    from models.run import place_shards
    from models.s3t import S3TTrainer, train_shard
    from models.training import Example
    from sharding import Placement, cyclic_sequences

    config, train, test, encoder = _setup(args)
    texts = [r.text or "" for r in test.records]
    labels = [r.label for r in test.records]
    started = time.perf_counter()
    if args.worker == "probe":
        tx = frozen_embeddings(encoder, [r.text or "" for r in train.records], max_length=64)
        vx = frozen_embeddings(encoder, texts, max_length=64)
        acc = probe_accuracy(tx, train.labels(), vx, labels, seed=args.seed)
        return {
            "accuracy": acc,
            "train_seconds": time.perf_counter() - started,
            "eval_seconds": 0.0,
        }
    cache = ActivationCache(Path(args.workdir) / "cache")
    store = InMemoryCheckpointStore()
    secret = hashlib.sha256(f"bench-placement-{args.seed}".encode()).digest()
    shards = place_shards(train, Placement(secret, SHARDS, SLICES))
    if args.worker == "s3t":
        trainer = S3TTrainer(encoder, config, store)
        seqs = cyclic_sequences(SLICES, BUDGET)
        members = [Member(d.shard, train_shard(trainer, d, cache, seqs)[0]) for d in shards]
        predictor = EnsemblePredictor.from_chains(
            encoder, store, members, n_classes=2, max_length=config.max_length
        )
    elif args.worker == "sisa":
        joint = JointTrainer(encoder, config, store)
        loaded = [
            load_combined(
                store,
                train_sisa_shard(joint, shard=d.shard, slices=d.slices, source=cache)[-1],
                shard=d.shard,
                n_groups=SLICES,
            )
            for d in shards
        ]
        predictor = EnsemblePredictor(encoder, loaded, n_classes=2, max_length=config.max_length)
    else:
        joint = JointTrainer(encoder, config, store)
        examples = [Example(r.record_id, r.label) for r in train.records]
        sha = train_full(joint, examples=examples, source=cache)
        predictor = EnsemblePredictor(
            encoder,
            [load_combined(store, sha, shard=-1, n_groups=SLICES)],
            n_classes=2,
            max_length=config.max_length,
        )
    trained = time.perf_counter()
    pred = predictor.predict(texts).tolist()
    acc = sum(int(p == y) for p, y in zip(pred, labels, strict=True)) / len(labels)
    return {
        "accuracy": acc,
        "train_seconds": trained - started,
        "eval_seconds": time.perf_counter() - trained,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--train-size", type=int, default=8000)
    parser.add_argument("--test-size", type=int, default=2000)
    parser.add_argument("--methods", nargs="+", choices=METHODS, default=list(METHODS))
    parser.add_argument("--out", type=Path, default=ROOT / "bench/results/accuracy.json")
    parser.add_argument("--workdir", type=Path, default=ROOT / "runs/bench-accuracy")
    parser.add_argument("--worker", choices=(*METHODS, "prepare"), help=argparse.SUPPRESS)
    parser.add_argument("--seed", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker is not None:
        result = prepare(args) if args.worker == "prepare" else worker(args)
        print(json.dumps({**result, "peak_rss_mb": peak_rss_mb()}))
        return

    common = ["--epochs", str(args.epochs), "--train-size", str(args.train_size)]
    common += ["--test-size", str(args.test_size), "--workdir", str(args.workdir)]
    prep = run_worker("bench.accuracy", [*common, "--worker", "prepare"])
    print(
        f"activation cache: {prep['cache_seconds']:.1f} s for {prep['train_records']} records",
        flush=True,
    )
    runs: list[dict[str, Any]] = []
    for seed in args.seeds:
        for method in args.methods:
            if method == "probe" and seed != args.seeds[0]:
                continue  # the probe's only randomness is the solver's; one run is enough
            res = run_worker("bench.accuracy", [*common, "--worker", method, "--seed", str(seed)])
            runs.append({"method": method, "seed": seed, **res})
            print(json.dumps(runs[-1]), flush=True)
            write_json(args.out.with_suffix(".partial.json"), {"runs": runs})
    summary = {}
    for method in args.methods:
        rs = [r for r in runs if r["method"] == method]
        accs = [r["accuracy"] for r in rs]
        summary[method] = {
            "mean_accuracy": statistics.fmean(accs),
            "std_accuracy": statistics.stdev(accs) if len(accs) > 1 else 0.0,
            "mean_train_seconds": statistics.fmean(r["train_seconds"] for r in rs),
            "mean_eval_seconds": statistics.fmean(r["eval_seconds"] for r in rs),
            "max_peak_rss_mb": max(r["peak_rss_mb"] for r in rs),
            "runs": len(rs),
        }
    goals = {}
    if {"s3t", "full", "probe"} <= summary.keys():
        gap = 100 * (summary["full"]["mean_accuracy"] - summary["s3t"]["mean_accuracy"])
        goals = {
            "s3t_gap_to_full_points": gap,
            "s3t_within_1_point_of_full": gap <= 1.0,
            "s3t_above_probe": summary["s3t"]["mean_accuracy"] > summary["probe"]["mean_accuracy"],
        }
    result = {
        "benchmark": "accuracy",
        "dataset": "rotten-tomatoes",
        "train_records": args.train_size,
        "test_records": args.test_size,
        "seeds": args.seeds,
        "epochs": args.epochs,
        "layout": {"shards": SHARDS, "slices": SLICES, "budget": BUDGET},
        "cache": prep,
        "runs": runs,
        "summary": summary,
        "goals": goals,
    }
    print_table(
        f"Rotten Tomatoes, {args.train_size} train / {args.test_size} test, seeds {args.seeds}",
        ["method", "accuracy (mean)", "std", "train s", "eval s", "peak RSS MB", "runs"],
        [
            [
                m,
                s["mean_accuracy"],
                s["std_accuracy"],
                s["mean_train_seconds"],
                s["mean_eval_seconds"],
                s["max_peak_rss_mb"],
                s["runs"],
            ]
            for m, s in summary.items()
        ],
    )
    if goals:
        print(json.dumps(goals))
    write_json(args.out, result)


if __name__ == "__main__":
    main()
