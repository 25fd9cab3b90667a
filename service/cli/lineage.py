"""``unlearn lineage`` (where a record sits) and ``unlearn verify`` (the exactness check, and
with ``--erasure`` the scan for erased data left on disk)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from service.cli.common import (
    EXIT_VIOLATION,
    AsJson,
    dump_views,
    fail,
    open_service,
    user_errors,
)
from service.cli.printers import print_erasure_scan, print_verify
from service.views import ErasureScanView


def lineage(
    record_id: Annotated[str, typer.Argument(help="external record id")],
    dataset: Annotated[str | None, typer.Option(help="dataset of the record")] = None,
) -> None:
    """Where a record sits and which checkpoints it shaped (JSON)."""
    with user_errors():
        dump_views(open_service().lineage(record_id, dataset))


def verify(
    as_json: AsJson = False,
    erasure: Annotated[
        bool,
        typer.Option(
            "--erasure",
            help="instead: search every file under UNLEARN_HOME, the key and database files "
            "and (PostgreSQL, with pageinspect) every raw database page for the text of erased "
            "records and the wrapped bytes of destroyed data keys; name each remnant",
        ),
    ] = False,
    paths: Annotated[
        list[Path] | None,
        typer.Option(
            "--path",
            help="with --erasure: one more file or folder to search (logs, written reports, "
            "exports); repeatable",
        ),
    ] = None,
) -> None:
    """Check the exactness invariant on the live DB and checkpoint store, and approximate
    models' versions and quarantine; or, with --erasure, that no erased data is left on
    disk (exit 1 if broken or a remnant is found)."""
    if paths and not erasure:
        fail("--path only goes with --erasure")
    with user_errors():
        svc = open_service()
        report = svc.verify_erasure(paths or ()) if erasure else svc.verify()
    if as_json:
        dump_views(report)
    elif isinstance(report, ErasureScanView):
        print_erasure_scan(report)
    else:
        print_verify(report)
    if not report.ok:
        raise typer.Exit(EXIT_VIOLATION)
