"""Progress in the CLI: bars on a terminal, plain lines when stderr is a file or a pipe, and
``unlearn train`` ends with the held-out accuracy of what it trained."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from models.progress_lines import LineProgress
from service.cli.common import progress_bars
from service.cli.main import app
from service.cli.progress import RichProgress
from tests.service.cli.test_ops import TINY, ok
from tests.service.conftest import synthetic_dataset

runner = CliRunner()


@pytest.fixture
def home(cli_env: Path) -> Path:
    lines = ["record_id,subject_id,text,label"]
    lines += [
        f"{r.record_id},{r.subject_id or ''},{r.text},{r.label}"
        for r in synthetic_dataset().records
    ]
    (cli_env / "reviews.csv").write_text("\n".join(lines) + "\n")
    return cli_env


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_bars_on_a_terminal_plain_lines_elsewhere(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sys.stderr", _Terminal())
    assert isinstance(progress_bars(True), RichProgress)
    stderr = io.StringIO()
    monkeypatch.setattr("sys.stderr", stderr)
    lines = progress_bars(True)
    assert isinstance(lines, LineProgress)
    with lines as progress, progress.task("caching shard 0", 2, unit="records") as advance:
        advance(2)
    text = stderr.getvalue()
    assert text.startswith("caching shard 0: started, 2 records\n")
    assert "caching shard 0: done, 2 records in " in text
    assert not isinstance(progress_bars(False), LineProgress)


def test_train_to_a_file_prints_progress_lines_and_ends_with_the_accuracy(home: Path) -> None:
    from service.app.queries import last_held_out_score
    from service.core import Service

    ok(["import", str(home / "reviews.csv"), "--name", "reviews", "--hold-out", "12"])
    args = [a for a in TINY if a != "--no-progress"]
    result = runner.invoke(
        app, ["train", "--dataset", "reviews", "--eval-dataset", "reviews-held-out", *args]
    )
    assert result.exit_code == 0, result.output
    for shard in (0, 1):
        assert f"job 1 train model 1: caching shard {shard}: started, " in result.stderr
        assert re.search(
            rf"shard {shard} sequence \(.*\): done, [\d,]+ examples in ", result.stderr
        )
    with Service.open().db.read() as s:
        score = last_held_out_score(s, 1)
    assert score is not None and score.total == 12
    assert (
        f"model 1: held-out accuracy {score.correct / 12:.4f} ({score.correct}/12 records of "
        f"reviews-held-out, routing version {score.routing_version})"
    ) in result.stdout
    assert "held-out accuracy" not in result.stderr
