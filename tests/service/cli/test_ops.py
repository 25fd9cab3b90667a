"""Operator commands against the embedded SQLite default."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from service.cli.main import app
from tests.service.conftest import synthetic_dataset

runner = CliRunner()
TINY = ["--shards", "2", "--slices", "3", "--budget", "2", "--epochs", "1", "--rank", "4"]
TINY += ["--max-length", "24", "--no-progress"]


@pytest.fixture
def home(cli_env: Path) -> Path:
    tmp_path = cli_env
    lines = ["record_id,subject_id,text,label"]
    for r in synthetic_dataset().records:
        lines.append(f"{r.record_id},{r.subject_id or ''},{r.text},{r.label}")
    (tmp_path / "reviews.csv").write_text("\n".join(lines) + "\n")
    return tmp_path


def ok(args: list[str]) -> str:
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    return result.output


def test_operator_workflow(home: Path) -> None:
    from service.db.schema import head_revision

    assert f"schema at {head_revision()}" in ok(["db", "upgrade"])
    assert "imported 72 records" in ok(["import", str(home / "reviews.csv"), "--name", "reviews"])
    ok(["train", "--dataset", "reviews", *TINY])
    status = json.loads(ok(["status", "--json"]))
    assert status[0]["status"] == "ready"
    assert [s["served_depth"] for s in status[0]["shards"]] == [3, 3]
    assert "depth 3/3" in ok(["status"])
    assert "OK" in ok(["verify"])

    out = json.loads(ok(["delete", "--subject", "subject-0", "--json"]))
    assert out["state"] == "effective" and out["n_records"] == 3
    listed = json.loads(ok(["requests", "list", "--json"]))
    assert [r["id"] for r in listed] == [out["id"]]
    shown = json.loads(ok(["requests", "show", out["id"]]))
    assert shown["timeline"][0]["state"] == "received"
    lineage = json.loads(ok(["lineage", "rec-0000"]))
    assert lineage[0]["state"] == "erased"
    assert lineage[0]["models"][0]["checkpoints"], "lineage keeps the checkpoints it shaped"
    assert not any(c["served"] for c in lineage[0]["models"][0]["checkpoints"])
    assert "OK" in ok(["verify"])
    assert "nothing to erase" in ok(["delete", "--subject", "nobody"])
    assert "audit chain OK" in ok(["audit", "verify"])

    from sqlalchemy import text

    from service.core import Service

    with Service.open().db.write() as s:  # tampering by someone with the DB owner's rights
        s.execute(text("DROP TRIGGER audit_events_no_update"))
        s.execute(text("UPDATE audit_events SET kind = 'dataset.renamed' WHERE seq = 1"))
    result = runner.invoke(app, ["audit", "verify"])
    assert result.exit_code == 1 and "event 1" in result.output


def test_verify_fails_when_a_cut_checkpoint_is_served_again(home: Path) -> None:
    from sqlalchemy import select

    from service.core import Service
    from service.db.tables import RoutingRow, SequenceRow

    ok(["import", str(home / "reviews.csv"), "--name", "reviews"])
    ok(["train", "--dataset", "reviews", *TINY])
    cut = json.loads(ok(["delete", "--subject", "subject-1", "--json"]))["cut"][0]
    svc = Service.open()
    with svc.db.write() as s:
        seq = s.scalar(
            select(SequenceRow).where(
                SequenceRow.shard == cut["shard"], SequenceRow.position == cut["sequence"]
            )
        )
        assert seq is not None
        route = s.get(RoutingRow, (cut["model"], cut["shard"]))
        assert route is not None
        seq.valid_depth = route.depth = cut["from_depth"]
        route.sequence_id = seq.id
    result = runner.invoke(app, ["verify"])
    assert result.exit_code == 1
    assert "violation" in result.output


def test_user_errors_are_one_line(home: Path) -> None:
    for args in (
        ["train", "--dataset", "missing", "--no-progress"],
        ["import", str(home / "nope.csv")],
        ["requests", "show", "no-such-id"],
        ["delete"],
        ["lineage", "rec-9999"],
    ):
        result = runner.invoke(app, args)
        assert result.exit_code == 2, (args, result.output)
        assert "error:" in result.output and "Traceback" not in result.output


def test_import_can_hold_out_a_seeded_disjoint_set(home: Path) -> None:
    output = ok(["import", str(home / "reviews.csv"), "--name", "r", "--hold-out", "12"])
    assert "imported 60 records into dataset 'r'" in output
    assert "imported 12 records into dataset 'r-held-out'" in output
    from sqlalchemy import select

    from service.core import Service
    from service.db.tables import RecordRow
    from service.lineage.datasets import get_dataset

    with Service.open().db.read() as s:
        ids = {
            name: set(
                s.scalars(
                    select(RecordRow.record_id).where(
                        RecordRow.dataset_id == get_dataset(s, name).id
                    )
                )
            )
            for name in ("r", "r-held-out")
        }
    assert len(ids["r"]) == 60 and len(ids["r-held-out"]) == 12
    assert not ids["r"] & ids["r-held-out"]
    bad = runner.invoke(app, ["import", str(home / "reviews.csv"), "--hold-out", "72"])
    assert bad.exit_code != 0 and "--hold-out must be between 1 and 71" in bad.output
