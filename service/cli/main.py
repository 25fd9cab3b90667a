"""The ``unlearn`` command line.

Heavy imports (torch, transformers) happen inside the commands that need them, so ``--help``
and the pure commands stay fast and ``import service`` touches nothing.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Literal, NoReturn

import typer
from rich.console import Console
from rich.table import Table

app = typer.Typer(
    name="unlearn",
    help="Exact machine unlearning: S3T training, deletion, lineage and audit.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
out = Console(width=None if sys.stdout.isatty() else 120)

EXIT_USER_ERROR = 2


class Selection(StrEnum):
    cyclic = "cyclic"
    bms = "bms"


class CapacityMethod(StrEnum):
    s3t = "s3t"
    sisa = "sisa"
    both = "both"


def fail(message: str) -> NoReturn:
    Console(stderr=True).print(f"[bold red]error:[/] {message}", highlight=False)
    raise typer.Exit(EXIT_USER_ERROR)


@contextmanager
def user_errors() -> Iterator[None]:
    """Turn the library's documented errors into one line and exit code 2 (no traceback)."""
    from models.data.errors import DataError
    from sharding.errors import ShardingError

    known: tuple[type[Exception], ...] = (DataError, ShardingError, FileNotFoundError, ValueError)
    try:
        yield
    except known as exc:
        fail(str(exc))
    except RuntimeError as exc:
        if type(exc).__module__.startswith("models."):
            fail(str(exc))
        raise


def _progress(enabled: bool) -> Any:
    from service.cli.progress import RichProgress

    return RichProgress(enabled=enabled and sys.stderr.isatty())


def load_or_create_secret(path: Path) -> bytes:
    """The placement secret (raw bytes of the file); created with 32 random bytes if absent."""
    if path.exists():
        secret = path.read_bytes()
        if len(secret) < 16:
            fail(f"placement secret {path} is shorter than 16 bytes")
        return secret
    path.parent.mkdir(parents=True, exist_ok=True)
    secret = secrets.token_bytes(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(secret)
    return secret


def _floats(text: str | None) -> tuple[float, ...] | None:
    if text is None:
        return None
    try:
        return tuple(float(x) for x in text.split(",") if x.strip())
    except ValueError:
        fail(f"--deletion-priors must be comma-separated numbers, got {text!r}")


@app.command()
def train(
    out_dir: Annotated[Path, typer.Option("--out", help="run directory to create")],
    dataset: Annotated[
        str, typer.Option(help="built-in dataset (rotten-tomatoes) or a .csv/.jsonl file")
    ] = "rotten-tomatoes",
    shards: Annotated[int, typer.Option(help="number of shards (m)")] = 4,
    slices: Annotated[int, typer.Option(help="slices per shard (L) = LoRA layer groups")] = 4,
    budget: Annotated[int, typer.Option(help="sequences trained per shard (B)")] = 4,
    selection: Annotated[
        Selection, typer.Option(help="how sequences are chosen")
    ] = Selection.cyclic,
    deletion_priors: Annotated[
        str | None,
        typer.Option(help="per-slice deletion probabilities for bms, e.g. 0.1,0.2,0.3,0.4"),
    ] = None,
    backbone: Annotated[
        str, typer.Option(help="registered backbone; auto picks one for the dataset's kind")
    ] = "auto",
    rank: Annotated[int, typer.Option(help="LoRA rank")] = 8,
    alpha: Annotated[float, typer.Option(help="LoRA alpha")] = 16.0,
    lr: Annotated[float, typer.Option(help="AdamW learning rate")] = 2e-3,
    epochs: Annotated[int, typer.Option(help="epochs per training step")] = 2,
    batch_size: Annotated[int, typer.Option(help="examples per batch")] = 32,
    max_length: Annotated[int, typer.Option(help="tokens per example (truncated)")] = 64,
    seed: Annotated[int, typer.Option(help="base seed of the model")] = 0,
    train_size: Annotated[
        int | None, typer.Option(help="use only this many training records")
    ] = None,
    test_size: Annotated[int, typer.Option(help="records held out for evaluation")] = 2000,
    split_seed: Annotated[int, typer.Option(help="seed of the train/test split")] = 0,
    secret_file: Annotated[
        Path | None,
        typer.Option(help="placement secret; default OUT/placement.key, created if missing"),
    ] = None,
    threads: Annotated[int | None, typer.Option(help="torch CPU threads")] = None,
    force: Annotated[bool, typer.Option(help="replace an existing run in OUT")] = False,
    progress: Annotated[bool, typer.Option(help="show progress bars")] = True,
) -> None:
    """Train an S3T model: shards x slices x sequences of LoRA layer groups."""
    with user_errors():
        from models.config import TrainConfig
        from models.determinism import configure_determinism
        from models.run import RUN_FILE, RunSpec, train_run

        if (out_dir / RUN_FILE).exists():
            if not force:
                fail(f"{out_dir} already holds a trained run; pass --force to replace it")
            for name in ("checkpoints", "cache"):
                shutil.rmtree(out_dir / name, ignore_errors=True)
            (out_dir / RUN_FILE).unlink()
        from models.backbones import default_backbone
        from models.data import load_dataset

        loaded = load_dataset(dataset)
        n_classes = len(loaded.label_names)
        config = TrainConfig(
            backbone=default_backbone(loaded.kind) if backbone == "auto" else backbone,
            n_slices=slices,
            rank=rank,
            alpha=alpha,
            lr=lr,
            epochs=epochs,
            batch_size=batch_size,
            max_length=max_length,
            n_classes=max(2, n_classes),
            seed=seed,
        )
        spec = RunSpec(
            dataset=dataset,
            n_shards=shards,
            budget=budget,
            selection=selection.value,
            deletion_probs=_floats(deletion_priors),
            test_size=test_size,
            train_size=train_size,
            split_seed=split_seed,
            config=config,
        )
        secret = load_or_create_secret(secret_file or out_dir / "placement.key")
        configure_determinism(threads)
        with _progress(progress) as bars:
            manifest = train_run(spec, out_dir, secret=secret, progress=bars)
    table = Table(title=f"trained {manifest['train_records']} records into {out_dir}")
    for col in ("shard", "records", "sequences", "checkpoints"):
        table.add_column(col, justify="right")
    for entry in manifest["shards"]:
        n_ckpt = len({sha for chain in entry["chains"] for sha in chain})
        table.add_row(
            str(entry["shard"]),
            str(sum(len(s) for s in entry["slices"])),
            " ".join("".join(map(str, s)) for s in entry["sequences"]),
            str(n_ckpt),
        )
    out.print(table)
    bal = manifest["balance"]
    out.print(
        f"placement balance: slices hold {bal['min_slice']}..{bal['max_slice']} records "
        f"(max/mean {bal['imbalance']:.2f}, chi-square p={bal['chi2_pvalue']:.2f})"
    )
    out.print(
        f"training took {manifest['train_seconds']:.1f} s; next: unlearn evaluate --run {out_dir}"
    )


@app.command()
def evaluate(
    run: Annotated[Path, typer.Option(help="run directory made by `unlearn train`")],
    batch_size: Annotated[int, typer.Option(help="examples per inference batch")] = 64,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON instead of text")] = False,
    progress: Annotated[bool, typer.Option(help="show progress bars")] = True,
) -> None:
    """Accuracy of the served ensemble on the run's held-out split."""
    with user_errors():
        from models.determinism import configure_determinism
        from models.run import evaluate_run

        configure_determinism()
        with _progress(progress and not as_json) as bars:
            result = evaluate_run(run, batch_size=batch_size, progress=bars)
    data = {
        "accuracy": result.accuracy,
        "n_test": result.n_test,
        "live_shards": result.live_shards,
        "served_depths": {str(k): v for k, v in result.depths.items()},
        "seconds": result.seconds,
    }
    if as_json:
        print(json.dumps(data, indent=1))
        return
    out.print(
        f"accuracy {result.accuracy:.4f} on {result.n_test} held-out records "
        f"({result.live_shards} live shards, depths {result.depths}, {result.seconds:.1f} s)"
    )


@app.command("simulate-capacity")
def simulate_capacity_cmd(
    shards: Annotated[int, typer.Option(help="number of shards (m)")] = 5,
    slices: Annotated[int, typer.Option(help="slices per shard (L)")] = 6,
    budget: Annotated[
        list[int] | None, typer.Option(help="S3T budget B (repeat for several)")
    ] = None,
    method: Annotated[CapacityMethod, typer.Option(help="which scheme")] = CapacityMethod.both,
    trials: Annotated[int, typer.Option(help="Monte Carlo trials")] = 20000,
    seed: Annotated[int, typer.Option(help="simulation seed")] = 0,
    deletion_priors: Annotated[
        str | None, typer.Option(help="per-slice deletion probabilities (default uniform)")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON instead of a table")] = False,
) -> None:
    """Expected deletions until every shard is dead, and served depth after t deletions."""
    with user_errors():
        from sharding import s3t_expected_capacity, simulate_capacity, sisa_expected_capacity

        probs = _floats(deletion_priors)
        runs: list[tuple[Literal["s3t", "sisa"], int, float]] = []
        if method in (CapacityMethod.s3t, CapacityMethod.both):
            for b in budget or [1, 2, 3, slices]:
                runs.append(("s3t", b, s3t_expected_capacity(shards, slices, b)))
        if method in (CapacityMethod.sisa, CapacityMethod.both):
            runs.append(("sisa", 1, sisa_expected_capacity(shards, slices)))
        rows: list[dict[str, Any]] = []
        for name, b, closed in runs:
            res = simulate_capacity(
                method=name,
                n_shards=shards,
                n_slices=slices,
                budget=b,
                trials=trials,
                seed=seed,
                deletion_probs=probs,
            )
            expected = closed if probs is None else None  # closed forms assume uniform
            rows.append(
                {
                    "method": name,
                    "budget": b,
                    "simulated": res.mean_deletions_to_death,
                    "stderr": res.stderr,
                    "closed_form": expected,
                    "relative_error": None
                    if expected is None
                    else abs(res.mean_deletions_to_death - expected) / expected,
                    "depth_curve": list(res.depth_curve),
                }
            )
    if as_json:
        print(json.dumps({"shards": shards, "slices": slices, "trials": trials, "runs": rows}))
        return
    table = Table(title=f"deletion capacity, m={shards} shards, L={slices} slices, {trials} trials")
    marks = [t for t in (10, 25, 50, 100) if any(t < len(r["depth_curve"]) for r in rows)]
    for col in ("method", "B", "simulated", "closed form", "rel. err"):
        table.add_column(col, justify="right")
    for t in marks:
        table.add_column(f"depth@{t}", justify="right")
    for r in rows:
        curve = r["depth_curve"]
        table.add_row(
            r["method"],
            str(r["budget"]),
            f"{r['simulated']:.1f} ± {r['stderr']:.1f}",
            "-" if r["closed_form"] is None else f"{r['closed_form']:.1f}",
            "-" if r["relative_error"] is None else f"{100 * r['relative_error']:.2f}%",
            *[f"{curve[t]:.2f}" if t < len(curve) else "0.00" for t in marks],
        )
    out.print(table)


@app.command()
def datasets() -> None:
    """List the built-in datasets."""
    from models.data import DATASETS

    for name in DATASETS:
        out.print(name)


if __name__ == "__main__":
    app()
