"""``unlearn lineage`` (where a record sits) and ``unlearn verify`` (the exactness check)."""

from __future__ import annotations

from typing import Annotated

import typer

from service.cli.common import EXIT_VIOLATION, AsJson, dump_views, open_service, user_errors
from service.cli.printers import print_verify


def lineage(
    record_id: Annotated[str, typer.Argument(help="external record id")],
    dataset: Annotated[str | None, typer.Option(help="dataset of the record")] = None,
) -> None:
    """Where a record sits and which checkpoints it shaped (JSON)."""
    with user_errors():
        dump_views(open_service().lineage(record_id, dataset))


def verify(as_json: AsJson = False) -> None:
    """Check the exactness invariant on the live DB and checkpoint store, and approximate
    models' versions and quarantine (exit 1 if broken)."""
    with user_errors():
        report = open_service().verify()
    if as_json:
        dump_views(report)
    else:
        print_verify(report)
    if not report.ok:
        raise typer.Exit(EXIT_VIOLATION)
