"""``unlearn experiment``: train and evaluate in a local directory, without the lineage DB
(quick trials and benchmarks; the service's own training is ``unlearn train``)."""

from __future__ import annotations

import json
import os
import secrets
import shutil
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from models.config import DEFAULT_TRAIN, TrainConfig, help_of
from service.cli.common import Selection, fail, floats, out, progress_bars, user_errors
from service.cli.models import train_option

experiment = typer.Typer(
    help="Train and evaluate in a local run directory (no database).", no_args_is_help=True
)


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


@experiment.command()
def train(
    out_dir: Annotated[Path, typer.Option("--out", help="run directory to create")],
    dataset: Annotated[
        str, typer.Option(help="built-in dataset (rotten-tomatoes) or a .csv/.jsonl file")
    ] = "rotten-tomatoes",
    shards: Annotated[int, typer.Option(help="number of shards (m)")] = 4,
    slices: Annotated[int, train_option("n_slices")] = DEFAULT_TRAIN.n_slices,
    budget: Annotated[int, typer.Option(help="sequences trained per shard (B)")] = 4,
    selection: Annotated[
        Selection, typer.Option(help="how sequences are chosen")
    ] = Selection.cyclic,
    deletion_priors: Annotated[
        str | None,
        typer.Option(help="per-slice deletion probabilities for bms, e.g. 0.1,0.2,0.3,0.4"),
    ] = None,
    backbone: Annotated[
        str,
        typer.Option(
            help=f"{help_of(TrainConfig, 'backbone')}; auto picks one for the dataset's kind"
        ),
    ] = "auto",
    rank: Annotated[int, train_option("rank")] = DEFAULT_TRAIN.rank,
    lora_targets: Annotated[str, train_option("lora_targets")] = DEFAULT_TRAIN.lora_targets,
    alpha: Annotated[float, train_option("alpha")] = DEFAULT_TRAIN.alpha,
    lr: Annotated[float, train_option("lr")] = DEFAULT_TRAIN.lr,
    weight_decay: Annotated[float, train_option("weight_decay")] = DEFAULT_TRAIN.weight_decay,
    epochs: Annotated[int, train_option("epochs")] = DEFAULT_TRAIN.epochs,
    batch_size: Annotated[int, train_option("batch_size")] = DEFAULT_TRAIN.batch_size,
    max_length: Annotated[int, train_option("max_length")] = DEFAULT_TRAIN.max_length,
    seed: Annotated[int, train_option("seed")] = DEFAULT_TRAIN.seed,
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
            lora_targets=lora_targets,
            alpha=alpha,
            lr=lr,
            weight_decay=weight_decay,
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
            deletion_probs=floats(deletion_priors),
            test_size=test_size,
            train_size=train_size,
            split_seed=split_seed,
            config=config,
        )
        secret = load_or_create_secret(secret_file or out_dir / "placement.key")
        configure_determinism(threads)
        with progress_bars(progress) as bars:
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
        f"training took {manifest['train_seconds']:.1f} s; "
        f"next: unlearn experiment evaluate --run {out_dir}"
    )


@experiment.command()
def evaluate(
    run: Annotated[Path, typer.Option(help="run directory made by `unlearn experiment train`")],
    batch_size: Annotated[int, typer.Option(help="examples per inference batch")] = 64,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON instead of text")] = False,
    progress: Annotated[bool, typer.Option(help="show progress bars")] = True,
) -> None:
    """Accuracy of the served ensemble on the run's held-out split."""
    with user_errors():
        from models.determinism import configure_determinism
        from models.run import evaluate_run

        configure_determinism()
        with progress_bars(progress and not as_json) as bars:
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
