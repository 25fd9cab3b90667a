"""``unlearn import``: a dataset into the lineage DB (optionally with a held-out split)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from service.cli.common import fail, open_service, out, user_errors


def import_cmd(
    source: Annotated[str, typer.Argument(help="a .csv/.jsonl file or a built-in dataset")],
    name: Annotated[
        str | None, typer.Option(help="dataset name (default: from the source)")
    ] = None,
    limit: Annotated[
        int | None, typer.Option(help="import only this many records (seeded choice)")
    ] = None,
    seed: Annotated[int, typer.Option(help="seed of the --limit and --hold-out choices")] = 0,
    hold_out: Annotated[
        int | None,
        typer.Option(
            help="also split off about this many records (seeded) into dataset "
            "NAME-held-out, never trained on: the held-out set a model is evaluated against. "
            "Split by data subject: all of a subject's records land on one side (records "
            "without a subject one by one), so the count can differ by part of a subject"
        ),
    ] = None,
) -> None:
    """Import a dataset: all rows valid, or nothing stored (the error names the line)."""
    with user_errors():
        from models.data import load_dataset

        dataset = load_dataset(source)
        if limit is not None:
            dataset = dataset.subset(limit, seed)
        label = name or Path(source).stem
        parts = [(label, dataset)]
        if hold_out is not None:
            if not 0 < hold_out < len(dataset):
                fail(f"--hold-out must be between 1 and {len(dataset) - 1}")
            train, held = dataset.split_by_subject(hold_out, seed)
            if not held.records:
                fail(
                    f"cannot hold out about {hold_out} records without splitting a data "
                    "subject's records"
                )
            parts = [(label, train), (f"{label}-held-out", held)]
        svc = open_service()
        summaries = [svc.import_dataset(n, d) for n, d in parts]
    for summary in summaries:
        out.print(
            f"imported {summary.n_records} records into dataset {summary.name!r} "
            f"({summary.kind}, labels {', '.join(summary.label_names)})"
        )
    if hold_out is not None and summaries[-1].n_records != hold_out:
        out.print(
            f"held out {summaries[-1].n_records} records, not {hold_out}: each data "
            "subject's records stay on one side"
        )
