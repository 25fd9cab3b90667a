"""``unlearn audit report``: the audit report as HTML or JSON, to a file or stdout."""

from __future__ import annotations

import datetime as dt
import json
import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from service.cli.common import fail, open_service, out, user_errors


class ReportFormat(StrEnum):
    html = "html"
    json = "json"


def parse_bound(text: str | None, name: str) -> dt.datetime | None:
    """An ISO date (midnight UTC) or datetime (UTC when it names no offset)."""
    if text is None:
        return None
    try:
        at = dt.datetime.fromisoformat(text.strip())
    except ValueError:
        fail(
            f"{name} must be an ISO date or datetime (2025-01-31, 2025-01-31T12:00Z), got {text!r}"
        )
    return at if at.tzinfo is not None else at.replace(tzinfo=dt.UTC)


def report(
    start: Annotated[
        str | None,
        typer.Option("--from", help="requests received at or after this ISO date/datetime (UTC)"),
    ] = None,
    end: Annotated[
        str | None, typer.Option("--to", help="requests received before this ISO date/datetime")
    ] = None,
    fmt: Annotated[ReportFormat, typer.Option("--format", help="html or json")] = (
        ReportFormat.html
    ),
    out_file: Annotated[
        Path | None, typer.Option("--out", help="write here (default: standard output)")
    ] = None,
) -> None:
    """Deletion requests, deadlines, served depth, held-out accuracy (overall and per label)
    and an Art. 30 summary; HTML is one self-contained page (inline SVG plots), JSON carries
    the same numbers."""
    lo, hi = parse_bound(start, "--from"), parse_bound(end, "--to")
    with user_errors():
        from service.audit.report import render_html

        data = open_service().audit_report(start=lo, end=hi)
    text = render_html(data) if fmt is ReportFormat.html else json.dumps(data, indent=1) + "\n"
    if out_file is None:
        sys.stdout.write(text)
        return
    try:
        out_file.write_text(text, encoding="utf-8")
    except OSError as exc:
        fail(f"cannot write {out_file}: {exc.strerror or exc}")
    req = data["requests"]
    out.print(
        f"wrote {fmt.value} report to {out_file}: {req['total']} request(s), "
        f"deadline met {req['deadline']['met']}, missed {req['deadline']['missed']}, "
        f"open {req['deadline']['open']}"
    )


def register(audit_app: typer.Typer) -> None:
    audit_app.command("report")(report)
