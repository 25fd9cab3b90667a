"""Speed benchmarks of the S3T additions, on one Rotten Tomatoes shard.

    python -m bench.throughput [--shard-size 2000] [--epochs 1] [--out FILE.json]

1. Training a shard's B sequences from the activation cache vs. recomputing the frozen lower
   layers for every batch (the "naive" row source below).
2. Ensemble inference with the shared plain prefix vs. every shard running the whole backbone.
3. Retraining after one deletion (cut sequences from their cut step) vs. retraining the shard.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from bench.common import ROOT, peak_rss_mb, print_table, write_json

SLICES, BUDGET = 4, 4


class RecomputeSource:
    """Rows entering a group computed on the fly from the text (no cache), per batch."""

    def __init__(self, encoder: Any, texts: dict[str, str], max_length: int) -> None:
        self.encoder, self.texts, self.max_length = encoder, texts, max_length
        self._lengths: dict[str, int] = {}

    def length(self, record_id: str) -> int:
        if record_id not in self._lengths:
            ids = self.encoder.backbone.prepare([self.texts[record_id]], self.max_length)
            self._lengths[record_id] = int(ids.attention_mask.shape[1])
        return self._lengths[record_id]

    def batch(self, group: int, record_ids: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
        backbone = self.encoder.backbone
        inputs = backbone.prepare([self.texts[r] for r in record_ids], self.max_length)
        # groups below `group` are off during step `group`, so the lower layers are plain
        with torch.no_grad():
            hidden = backbone.run_layers(
                backbone.embed(inputs),
                inputs.attention_mask,
                0,
                self.encoder.layout.boundary(group),
            )
        return hidden, inputs.attention_mask


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shard-size", type=int, default=2000)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--infer-size", type=int, default=1000)
    parser.add_argument("--out", type=Path, default=ROOT / "bench/results/throughput.json")
    args = parser.parse_args()

    from models.adapters import build_encoder
    from models.cache import ActivationCache
    from models.checkpoints import InMemoryCheckpointStore
    from models.config import TrainConfig
    from models.data import load_dataset
    from models.determinism import configure_determinism
    from models.ensemble import EnsemblePredictor, Member
    from models.s3t import S3TTrainer, ShardData, retrain_shard, train_shard
    from models.training import Example
    from sharding import SliceAddress, cyclic_sequences, full_depths, plan_deletion

    configure_determinism()
    data = load_dataset("rotten-tomatoes")
    train, test = data.split(2000, 0)
    records = train.subset(args.shard_size, 0).records
    config = TrainConfig(n_slices=SLICES, epochs=args.epochs)
    encoder = build_encoder(config)
    examples = sorted((Example(r.record_id, r.label) for r in records), key=lambda e: e.record_id)
    shard = ShardData(0, tuple(tuple(examples[i::SLICES]) for i in range(SLICES)))
    texts = {r.record_id: r.text or "" for r in records}
    seqs = cyclic_sequences(SLICES, BUDGET)
    work = Path(tempfile.mkdtemp(prefix="unlearn-bench-"))
    result: dict[str, Any] = {
        "benchmark": "throughput",
        "shard_records": len(records),
        "slices": SLICES,
        "budget": BUDGET,
        "epochs": args.epochs,
        "threads": torch.get_num_threads(),
    }

    # 1. cached vs recomputed lower layers
    t0 = time.perf_counter()
    cache = ActivationCache.build(work / "cache", encoder, list(texts.items()), max_length=64)
    cache_s = time.perf_counter() - t0
    store = InMemoryCheckpointStore()
    t0 = time.perf_counter()
    chains = train_shard(S3TTrainer(encoder, config, store), shard, cache, seqs)
    cached_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    naive = RecomputeSource(encoder, texts, 64)
    naive_chains = train_shard(
        S3TTrainer(encoder, config, InMemoryCheckpointStore()), shard, naive, seqs
    )
    naive_s = time.perf_counter() - t0
    trained_examples = sum(len(shard.examples(s[:k])) for s in seqs for k in range(1, SLICES + 1))
    trained_examples *= args.epochs
    result["training"] = {
        "examples_trained": trained_examples,
        "cache_build_seconds": cache_s,
        "cached_seconds": cached_s,
        "naive_seconds": naive_s,
        "cached_examples_per_s": trained_examples / cached_s,
        "naive_examples_per_s": trained_examples / naive_s,
        "speedup": naive_s / cached_s,
        "speedup_including_cache_build": naive_s / (cached_s + cache_s),
        "same_checkpoints": naive_chains == chains,
    }

    # 2. shared-prefix vs naive ensemble inference (4 shards: the trained shard's 4 sequences
    #    stand in for 4 shards; full depth, then mixed depths)
    texts_test = [r.text or "" for r in test.records[: args.infer_size]]
    infer: dict[str, Any] = {}
    for name, depths in (("full_depth", (4, 4, 4, 4)), ("mixed_depths", (4, 3, 2, 1))):
        members = [Member(i, chains[i][:d]) for i, d in enumerate(depths)]
        pred = EnsemblePredictor.from_chains(encoder, store, members, n_classes=2, max_length=64)
        timings = {}
        for shared in (True, False):
            t0 = time.perf_counter()
            pred.logits(texts_test, shared_prefix=shared)
            timings[shared] = time.perf_counter() - t0
        infer[name] = {
            "depths": depths,
            "shared_seconds": timings[True],
            "naive_seconds": timings[False],
            "speedup": timings[False] / timings[True],
            "shared_examples_per_s": len(texts_test) / timings[True],
        }
    result["inference"] = {"examples": len(texts_test), **infer}

    # 3. one deletion: retrain the cut sequences vs. retrain the whole shard
    victim = shard.slices[2][0].record_id
    t0 = time.perf_counter()
    cache.remove({victim})
    clean = shard.without({victim})
    impact = plan_deletion({0: seqs}, full_depths({0: seqs}), [SliceAddress(0, 2)])
    trainer = S3TTrainer(encoder, config, store)  # restores the clean prefixes from `store`
    retrain_shard(trainer, clean, cache, seqs, chains, impact.retrain)
    retrain_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    train_shard(S3TTrainer(encoder, config, InMemoryCheckpointStore()), clean, cache, seqs)
    full_s = time.perf_counter() - t0
    result["retrain"] = {
        "cut_steps": [t.from_step for t in impact.retrain],
        "retrain_seconds": retrain_s,
        "full_shard_retrain_seconds": full_s,
        "speedup": full_s / retrain_s,
    }
    result["peak_rss_mb"] = peak_rss_mb()
    tr, inf, rt = result["training"], result["inference"], result["retrain"]
    print_table(
        f"S3T speed, one shard of {len(records)} records, L={SLICES}, B={BUDGET}",
        ["measure", "ours (s)", "baseline (s)", "ratio"],
        [
            ["train: cache vs recompute", tr["cached_seconds"], tr["naive_seconds"], tr["speedup"]],
            [
                "  incl. cache build",
                tr["cached_seconds"] + tr["cache_build_seconds"],
                tr["naive_seconds"],
                tr["speedup_including_cache_build"],
            ],
            [
                "infer full depth: shared vs naive",
                inf["full_depth"]["shared_seconds"],
                inf["full_depth"]["naive_seconds"],
                inf["full_depth"]["speedup"],
            ],
            [
                "infer mixed depth: shared vs naive",
                inf["mixed_depths"]["shared_seconds"],
                inf["mixed_depths"]["naive_seconds"],
                inf["mixed_depths"]["speedup"],
            ],
            [
                "1 deletion: retrain cut vs shard",
                rt["retrain_seconds"],
                rt["full_shard_retrain_seconds"],
                rt["speedup"],
            ],
        ],
    )
    write_json(args.out, result)


if __name__ == "__main__":
    main()
