"""``unlearn import --hold-out`` splits by data subject."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from sqlalchemy import select
from typer.testing import CliRunner

from service.cli.main import app
from service.core import Service
from service.db.tables import RecordRow
from service.lineage.datasets import get_dataset
from tests.service.conftest import synthetic_dataset

runner = CliRunner()


def _write(path: Path, rows: Sequence[tuple[str, str | None, str, int]]) -> Path:
    lines = ["record_id,subject_id,text,label"]
    lines += [f"{rid},{subject or ''},{text},{label}" for rid, subject, text, label in rows]
    path.write_text("\n".join(lines) + "\n")
    return path


def _subjects(name: str) -> dict[str, set[str]]:
    """record id -> subject key of each record of dataset ``name``, grouped by subject key."""
    with Service.open().db.read() as s:
        rows = s.execute(
            select(RecordRow.record_id, RecordRow.subject_key).where(
                RecordRow.dataset_id == get_dataset(s, name).id
            )
        )
        out: dict[str, set[str]] = {}
        for rid, key in rows:
            out.setdefault(key or f"record:{rid}", set()).add(rid)
        return out


def test_a_subjects_records_are_all_held_out_or_all_trained_on(cli_env: Path) -> None:
    rows = [(r.record_id, r.subject_id, r.text or "", r.label) for r in synthetic_dataset().records]
    source = _write(cli_env / "reviews.csv", rows)
    held_subjects = 0
    for seed in range(4):
        name = f"r{seed}"
        args = ["import", str(source), "--name", name, "--hold-out", "20", "--seed", str(seed)]
        result = runner.invoke(app, args)
        assert result.exit_code == 0, result.output
        assert f"imported 20 records into dataset '{name}-held-out'" in result.output
        train, held = _subjects(name), _subjects(f"{name}-held-out")
        assert not set(train) & set(held), "no subject on both sides"
        assert sum(map(len, train.values())) == 52
        held_subjects += sum(1 for ids in held.values() if len(ids) == 3)
    assert held_subjects, "some seed holds out whole subjects"


def test_the_count_follows_whole_subjects_and_says_so(cli_env: Path) -> None:
    rows = [(f"r{i:02d}", f"subject-{i // 4}", f"text {i}", i % 2) for i in range(24)]
    source = _write(cli_env / "people.csv", rows)
    result = runner.invoke(app, ["import", str(source), "--name", "p", "--hold-out", "9"])
    assert result.exit_code == 0, result.output
    assert "imported 8 records into dataset 'p-held-out'" in result.output
    assert "held out 8 records, not 9" in " ".join(result.output.split())
    one = _write(cli_env / "one.csv", [(f"o{i}", "alice", f"text {i}", i % 2) for i in range(6)])
    result = runner.invoke(app, ["import", str(one), "--name", "o", "--hold-out", "2"])
    assert result.exit_code == 2 and "without splitting a data" in result.output, result.output
