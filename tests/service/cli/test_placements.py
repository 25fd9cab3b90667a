"""``unlearn placements`` against the embedded SQLite default."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from service.cli.main import app
from tests.service.conftest import synthetic_dataset

runner = CliRunner()


def ok(args: list[str]) -> str:
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    return result.output


def test_placements_lists_counts_and_ids_as_json(cli_env: Path) -> None:
    lines = ["record_id,subject_id,text,label"]
    for r in synthetic_dataset().records:
        lines.append(f"{r.record_id},{r.subject_id or ''},{r.text},{r.label}")
    (cli_env / "reviews.csv").write_text("\n".join(lines) + "\n")
    ok(["import", str(cli_env / "reviews.csv"), "--name", "reviews"])
    ok(["train", "--dataset", "reviews", "--slices", "3", "--no-wait", "--no-progress"])

    whole = json.loads(ok(["placements", "--model", "1"]))
    assert (whole["active"], whole["erased"], whole["next_cursor"]) == (72, 0, None)
    assert len(whole["slices"]) == 2 * 3
    assert sorted(r["record_id"] for r in whole["records"]) == [f"rec-{i:04d}" for i in range(72)]

    shard = json.loads(ok(["placements", "--model", "1", "--shard", "1", "--slice", "0"]))
    assert [(c["shard"], c["slice"]) for c in shard["slices"]] == [(1, 0)]
    assert {(r["shard"], r["slice"]) for r in shard["records"]} == {(1, 0)}
    assert shard["active"] == len(shard["records"]) == shard["slices"][0]["active"]

    first = json.loads(ok(["placements", "--model", "1", "--limit", "50"]))
    rest = json.loads(
        ok(["placements", "--model", "1", "--limit", "50", "--cursor", first["next_cursor"]])
    )
    assert first["records"] + rest["records"] == whole["records"] and rest["next_cursor"] is None

    ok(["delete", "--subject", "subject-2", "--json"])
    after = json.loads(ok(["placements", "--model", "1"]))
    assert (after["active"], after["erased"]) == (69, 3)
    assert not {"rec-0006", "rec-0007", "rec-0008"} & {r["record_id"] for r in after["records"]}

    for args in (["--model", "7"], ["--model", "1", "--shard", "2"]):
        result = runner.invoke(app, ["placements", *args])
        assert result.exit_code == 2 and "error:" in result.output, result.output
