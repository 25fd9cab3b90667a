"""``unlearn delete`` and ``unlearn requests list|show`` off a terminal: what a request named
but did not find is kept and shown, and nothing printed is wrapped or cut."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from service.cli import requests as requests_cli
from service.cli.main import app
from service.core import Service
from service.settings import Settings
from service.views import JobProgress, JobView, RequestPage
from tests.service.conftest import synthetic_dataset

runner = CliRunner()


@pytest.fixture
def svc(cli_env: Path) -> Iterator[Service]:
    """The embedded home of ``cli_env`` with the synthetic dataset imported (no model)."""
    service = Service.open(Settings.from_env())
    service.upgrade_schema()
    service.import_dataset("synthetic", synthetic_dataset())
    yield service
    service.db.dispose()


def ok(args: list[str]) -> str:
    result = runner.invoke(app, args)
    assert result.exit_code == 0, (args, result.output)
    return result.output


def test_ids_not_found_are_kept_with_the_request_and_printed_whole(svc: Service) -> None:
    unknown = [f"no-such-record-{i}-{'x' * 40}" for i in range(4)]
    args = ["delete", "--record", "rec-0001", "--idempotency-key", "k-1"]
    args += [a for u in unknown for a in ("--record", u)]
    printed = ok(args)
    # One line of ~230 characters: wider than any console default, never wrapped.
    assert f"  not found: {', '.join(unknown)}" in printed.splitlines(), printed
    found = re.search(r"request (\S+) completed", printed)
    assert found, printed
    request_id = found.group(1)

    shown = json.loads(ok(["requests", "show", request_id]))
    assert shown["not_found"] == unknown
    assert shown["outcome"] == "no_model_affected" and shown["n_records"] == 1
    (listed,) = json.loads(ok(["requests", "list", "--json"]))
    assert listed["not_found"] == unknown
    replayed = json.loads(ok([*args, "--json"]))  # the same key: the same request
    assert replayed["id"] == request_id and replayed["not_found"] == unknown
    assert "(replayed)" in ok(args) and f"  not found: {', '.join(unknown)}" in ok(args)

    by_subject = json.loads(ok(["delete", "--subject", "subject-2", "--json"]))
    assert "not_found" not in by_subject
    assert "not_found" not in json.loads(ok(["requests", "show", by_subject["id"]]))


def test_requests_list_off_a_terminal_is_never_cut(
    svc: Service, monkeypatch: pytest.MonkeyPatch
) -> None:
    ok(["delete", "--subject", "subject-0"])
    (view,) = svc.requests().items
    # A request waiting on many jobs: its row is far wider than any console default.
    job = JobView(
        id=0,
        kind="purge",
        state="queued",
        sequence_id=None,
        from_step=None,
        params=None,
        attempts=0,
        progress=JobProgress(done=0, total=1),
        error=None,
    )
    wide = view.model_copy(update={"jobs": [job.model_copy(update={"id": i}) for i in range(40)]})
    page = RequestPage(items=[wide], next_cursor=None)

    class Listing:
        def requests(self, **_: object) -> RequestPage:
            return page

    monkeypatch.setattr(requests_cli, "open_service", Listing)
    table = ok(["requests", "list"]).splitlines()
    jobs = " ".join(f"{i}:queued" for i in range(40))
    (row,) = [line for line in table if view.id in line]  # one row: nothing folded
    assert jobs in row and len(row) > 400, table
    assert "…" not in "\n".join(table)


def test_a_long_error_is_one_line(svc: Service) -> None:
    request_id = "an-id-nobody-issued-" * 15
    result = runner.invoke(app, ["requests", "show", request_id])
    assert result.exit_code == 2, result.output
    assert result.output.splitlines() == [f"error: no deletion request '{request_id}'"]
