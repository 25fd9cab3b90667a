"""Approximate models inside the service: what a deletion costs and what it shows.

    python -m bench.approximate_service [--deletions 5] [--families ...] [--out FILE.json]

On the embedded default (SQLite, in-process worker, CPU), with real data: MNIST-5k (4,000
training images, 1,000 held out) for the CNN family with its default method (l1-sparse), and
2,000 Rotten Tomatoes snippets (500 held out) for the tiny GPT-2 with NPO; with
``--families minilm-lora-all``, MiniLM with LoRA on every layer on all of Rotten Tomatoes but 500
held out, with l1-sparse. For each: the fit
(version 1), then ``--deletions`` deletions of 10 random records each, one after another.
Per deletion: the time to accept it (the API's transaction), the ``unlearn`` job's time until
its version is published or flagged, the request's final state and the evidence. The fit time
is what an exact retrain from scratch costs on the same machine.
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import ROOT, print_table, write_json

SECRET = "a7" * 32
KEYS = {
    "cnn-mnist": ("UA", "TA", "TA_before", "loss_auc"),
    "minilm-lora-all": ("UA", "TA", "TA_before", "loss_auc"),
    "gpt2-tiny": ("forget_nll", "retain_nll", "retain_nll_before", "min_k_auc"),
}


def _split(
    records: tuple[Any, ...], n_train: int, n_held: int, seed: int
) -> tuple[list[Any], list[Any]]:
    rows = list(records)
    random.Random(seed).shuffle(rows)
    return rows[:n_train], rows[n_train : n_train + n_held]


def run_family(family: str, n_deletions: int, seed: int) -> dict[str, Any]:
    import torch

    from models.data import Dataset, load_dataset, load_mnist_5k
    from models.determinism import configure_determinism
    from service.approximate.registry import ApproximateSpec
    from service.core import Service
    from service.jobs.runner import LocalWorker
    from service.lineage.deletion import DeletionInput
    from service.lineage.query import get_request
    from service.settings import Settings
    from service.usecases.views import request_view

    configure_determinism()
    torch.set_num_threads(2)
    if family == "cnn-mnist":
        source, n_train, n_held = load_mnist_5k(), 4000, 1000
    elif family == "minilm-lora-all":  # all of Rotten Tomatoes but the held-out 500
        source = load_dataset("rotten-tomatoes")
        n_train, n_held = len(source.records) - 500, 500
    else:
        source, n_train, n_held = load_dataset("rotten-tomatoes"), 2000, 500
    train, held = _split(source.records, n_train, n_held, seed)
    with tempfile.TemporaryDirectory(prefix="unlearn-bench-") as home:
        settings = Settings(
            home=Path(home), database_url=f"sqlite:///{home}/unlearn.db", secret_hex=SECRET
        )
        svc = Service.open(settings)
        svc.upgrade_schema()
        svc.import_dataset("train", Dataset("train", tuple(train), source.label_names))
        svc.import_dataset("held-out", Dataset("held-out", tuple(held), source.label_names))
        worker = LocalWorker(svc.db, svc.settings)
        start = time.perf_counter()
        svc.create_approximate_model("train", ApproximateSpec(family, "held-out"))
        worker.drain()
        fit_s = time.perf_counter() - start
        rng = random.Random(seed)
        ids = [r.record_id for r in train]
        rng.shuffle(ids)
        deletions = []
        for i in range(n_deletions):
            chosen = tuple(ids[10 * i : 10 * i + 10])
            t0 = time.perf_counter()
            view, _, _ = svc.delete(DeletionInput(record_ids=chosen, dataset="train"))
            accept_ms = 1000 * (time.perf_counter() - t0)
            t1 = time.perf_counter()
            worker.drain()
            job_s = time.perf_counter() - t1
            with svc.db.read() as s:
                done = request_view(s, get_request(s, view["id"]))
            version = done["unlearning"][-1]["version"] or {}
            ev = version.get("evidence") or {}
            deletions.append(
                {
                    "accept_ms": round(accept_ms, 1),
                    "unlearn_s": round(job_s, 2),
                    "state": done["state"],
                    "version": version.get("version"),
                    "method": version.get("method"),
                    "under_unlearning": ev.get("under_unlearning"),
                    "over_unlearning": ev.get("over_unlearning"),
                    **{k: ev.get(k) for k in KEYS[family]},
                }
            )
        svc.db.dispose()
    return {"family": family, "n_train": n_train, "fit_s": round(fit_s, 2), "deletions": deletions}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--deletions", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--families", nargs="+", default=["cnn-mnist", "gpt2-tiny"])
    parser.add_argument(
        "--out", type=Path, default=ROOT / "bench" / "results" / "approximate_service.json"
    )
    args = parser.parse_args()
    results = [run_family(f, args.deletions, args.seed) for f in args.families]
    for res in results:
        keys = KEYS[res["family"]]
        rows = [
            [i + 1, d["accept_ms"], d["unlearn_s"], d["state"], d["method"], d["version"]]
            + [d[k] for k in keys]
            + [d["under_unlearning"], d["over_unlearning"]]
            for i, d in enumerate(res["deletions"])
        ]
        print_table(
            f"{res['family']}: fit (= exact retrain) {res['fit_s']} s on {res['n_train']} records",
            ["#", "accept ms", "unlearn s", "state", "method", "version", *keys, "under", "over"],
            rows,
        )
    write_json(args.out, {"seed": args.seed, "results": results})


if __name__ == "__main__":
    main()
