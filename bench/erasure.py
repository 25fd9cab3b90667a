"""What sealing payloads costs: importing a dataset and reading a shard's training inputs,
with payloads sealed (the service) and with sealing replaced by the identity (the
counterfactual), on SQLite; plus an end-to-end import + S3T training of a small model
(every measure repeated, sealed and plaintext runs interleaved; medians).

    python -m bench.erasure [--records 10000] [--repeats 3] [--out bench/results/erasure.json]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any
from unittest import mock

from bench.common import ROOT, print_table, write_json
from models.config import TrainConfig
from models.data import Dataset, load_dataset
from service.core import Service
from service.erasure import vault
from service.jobs.shards import read_shard
from service.lineage.registry import ModelSpec
from service.settings import Settings


@contextmanager
def plaintext() -> Iterator[None]:
    """The counterfactual: payloads stored and read as they are (never used by the service)."""
    with (
        mock.patch.object(vault, "seal", lambda s, key_id, payload: payload),
        mock.patch.object(vault, "subject_keys", lambda s, owners: dict.fromkeys(owners)),
        mock.patch.object(vault, "new_keys", lambda s, owners: [None] * len(owners)),
        mock.patch.object(vault, "open_payload", lambda s, envelope: envelope),
        mock.patch.object(vault, "open_payloads", lambda s, envelopes: list(envelopes)),
    ):
        yield


def one_run(data: Dataset, sealed: bool, train: bool) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        svc = Service.open(
            Settings(home=home, database_url=f"sqlite:///{home / 'u.db'}", secret_hex="ab" * 32)
        )
        svc.upgrade_schema()
        with plaintext() if not sealed else nullcontext():
            t = time.perf_counter()
            svc.import_dataset("rt", data)
            imported = time.perf_counter() - t
            config = TrainConfig(n_slices=2, rank=4, epochs=1, max_length=16, batch_size=64)
            model_id = svc.create_model("rt", ModelSpec(n_shards=2, budget=1, config=config))
            t = time.perf_counter()
            with svc.db.snapshot() as s:
                for shard in range(2):
                    read_shard(s, model_id, shard, 2)
            read = time.perf_counter() - t
            trained = 0.0
            if train:
                t = time.perf_counter()
                svc.finish_model(model_id)
                trained = time.perf_counter() - t
        svc.db.dispose()
        return {"import_s": imported, "read_shards_s": read, "train_s": trained}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=10000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--train-records", type=int, default=1000)
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "erasure.json"))
    args = parser.parse_args()
    full = load_dataset("rotten-tomatoes")
    data = Dataset(full.name, full.records[: args.records], full.label_names)
    small = Dataset(full.name, full.records[: args.train_records], full.label_names)
    results: dict[str, Any] = {"benchmark": "erasure", "records": args.records, "runs": {}}
    modes = (("sealed", True), ("plaintext", False))
    # Interleaved, so a slow phase of the machine weighs on both sides alike; medians.
    runs: dict[str, list[dict[str, float]]] = {name: [] for name, _ in modes}
    e2e: dict[str, list[float]] = {name: [] for name, _ in modes}
    for _ in range(args.repeats):
        for name, sealed in modes:
            runs[name].append(one_run(data, sealed, train=False))
            r = one_run(small, sealed, train=True)
            e2e[name].append(r["import_s"] + r["train_s"])
    for name, _ in modes:
        results["runs"][name] = {
            "import_s": statistics.median(r["import_s"] for r in runs[name]),
            "read_shards_s": statistics.median(r["read_shards_s"] for r in runs[name]),
            "end_to_end_s": statistics.median(e2e[name]),
            "end_to_end_runs_s": e2e[name],
            "end_to_end_records": args.train_records,
        }
    sealed, plain = results["runs"]["sealed"], results["runs"]["plaintext"]
    results["ratios"] = {
        k: sealed[k] / plain[k] for k in ("import_s", "read_shards_s", "end_to_end_s")
    }
    rows = [
        (k, sealed[k], plain[k], results["ratios"][k])
        for k in ("import_s", "read_shards_s", "end_to_end_s")
    ]
    print_table(
        "sealed vs plaintext payloads (seconds)", ["what", "sealed", "plaintext", "ratio"], rows
    )
    write_json(Path(args.out), results)


if __name__ == "__main__":
    main()
