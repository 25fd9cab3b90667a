"""``unlearn train`` (an S3T model) and ``unlearn status`` (every model's serving state);
approximate models are registered by ``unlearn train-approximate``
(``service.cli.approximate``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from models.config import DEFAULT_TRAIN, TrainConfig, help_of
from service.cli.common import (
    AsJson,
    Progress,
    Selection,
    dump_views,
    floats,
    open_service,
    out,
    progress_bars,
    user_errors,
)
from service.cli.printers import print_status

if TYPE_CHECKING:
    from service.core import Service


def train_option(name: str) -> Any:
    """An option with the help text of ``TrainConfig`` field ``name`` (its default is
    ``DEFAULT_TRAIN``'s); ``unlearn train`` and ``unlearn experiment train`` share them."""
    return typer.Option(help=help_of(TrainConfig, name))


def train(
    dataset: Annotated[str, typer.Option(help="name of an imported dataset")],
    shards: Annotated[int, typer.Option(help="number of shards (m)")] = 2,
    slices: Annotated[int, train_option("n_slices")] = DEFAULT_TRAIN.n_slices,
    budget: Annotated[int, typer.Option(help="sequences trained per shard (B)")] = 2,
    selection: Annotated[Selection, typer.Option(help="how sequences are chosen")] = (
        Selection.cyclic
    ),
    deletion_priors: Annotated[
        str | None, typer.Option(help="per-slice deletion probabilities for bms")
    ] = None,
    backbone: Annotated[
        str | None,
        typer.Option(help=f"{help_of(TrainConfig, 'backbone')} (default: the dataset kind's)"),
    ] = None,
    rank: Annotated[int, train_option("rank")] = DEFAULT_TRAIN.rank,
    lora_targets: Annotated[str, train_option("lora_targets")] = DEFAULT_TRAIN.lora_targets,
    alpha: Annotated[float, train_option("alpha")] = DEFAULT_TRAIN.alpha,
    lr: Annotated[float, train_option("lr")] = DEFAULT_TRAIN.lr,
    weight_decay: Annotated[float, train_option("weight_decay")] = DEFAULT_TRAIN.weight_decay,
    epochs: Annotated[int, train_option("epochs")] = DEFAULT_TRAIN.epochs,
    batch_size: Annotated[int, train_option("batch_size")] = DEFAULT_TRAIN.batch_size,
    max_length: Annotated[int, train_option("max_length")] = DEFAULT_TRAIN.max_length,
    seed: Annotated[int, train_option("seed")] = DEFAULT_TRAIN.seed,
    eval_dataset: Annotated[
        str | None,
        typer.Option(help="imported held-out dataset scored after training and every retrain"),
    ] = None,
    wait: Annotated[
        bool, typer.Option(help="train now in this process (embedded) or wait for a worker")
    ] = True,
    progress: Progress = True,
) -> None:
    """Register an S3T model on a dataset and train it (every TrainConfig field is an
    option but ``n_classes``: one class per label of the dataset)."""
    with user_errors():
        config = TrainConfig(
            n_slices=slices,
            rank=rank,
            lora_targets=lora_targets,
            alpha=alpha,
            lr=lr,
            weight_decay=weight_decay,
            epochs=epochs,
            batch_size=batch_size,
            max_length=max_length,
            seed=seed,
        )
        svc = open_service()
        model_id = svc.create_s3t_model(
            dataset,
            shards=shards,
            budget=budget,
            selection=selection.value,
            deletion_probs=floats(deletion_priors),
            config=config,
            backbone=backbone,
            eval_dataset=eval_dataset,
        )
        if wait:
            finish_model(svc, model_id, progress)
    out.print(f"model {model_id}: see `unlearn status --model {model_id}`")


def finish_model(svc: Service, model_id: int, progress: bool) -> None:
    """Run (embedded) or wait for (broker) the model's training, with progress bars (plain
    lines when stderr is not a terminal); then its held-out accuracy, when it has one."""
    score = svc.finish_model(model_id, lambda: progress_bars(progress))
    if score is not None and score.accuracy is not None:
        out.print(
            f"model {model_id}: held-out accuracy {score.accuracy:.4f} "
            f"({score.correct}/{score.total} records of {score.dataset}, "
            f"routing version {score.routing_version})",
            markup=False,
            highlight=False,
            soft_wrap=True,
        )


def status(
    model: Annotated[int | None, typer.Option(help="one model (default: all)")] = None,
    as_json: AsJson = False,
) -> None:
    """Each model's shards x sequences x served depth (or versions), and the jobs in flight."""
    with user_errors():
        views = open_service().model_statuses(model)
    if as_json:
        dump_views(views)
        return
    print_status(views)


def restore(
    model: Annotated[int, typer.Option(help="the S3T model to bring back to full depth")],
) -> None:
    """Queue a retrain for every sequence below full depth that no open job rebuilds (after a
    failed retrain: a model incident in `unlearn status`). Requests never wait on it."""
    with user_errors():
        jobs = open_service().restore(model)
    if jobs:
        out.print(f"queued retrain job(s) {', '.join(map(str, jobs))} for model {model}")
    else:
        out.print(f"model {model}: every sequence is at full depth or has an open job")
