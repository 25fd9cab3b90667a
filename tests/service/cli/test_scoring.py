"""``unlearn predict`` and ``unlearn evaluate`` on the embedded default, and the per-label
warning of ``unlearn status`` once every record of one label is erased."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from models.data import Dataset
from service.cli.main import app
from tests.service.cli.test_ops import TINY
from tests.service.conftest import synthetic_dataset
from tests.service.lineage.test_evaluate import held_out

runner = CliRunner()


def write_csv(path: Path, data: Dataset) -> Path:
    lines = ["record_id,subject_id,text,label"]
    for r in data.records:
        label = data.label_names[r.label]  # by name, so the dataset's labels are named
        lines.append(f"{r.record_id},{r.subject_id or ''},{r.text},{label}")
    path.write_text("\n".join(lines) + "\n")
    return path


def ok(args: list[str]) -> str:
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    return result.output


@pytest.fixture
def model(cli_env: Path) -> str:
    """A trained model on the synthetic reviews, with a held-out dataset imported."""
    ok(
        [
            "import",
            str(write_csv(cli_env / "reviews.csv", synthetic_dataset())),
            "--name",
            "reviews",
        ]
    )
    ok(["import", str(write_csv(cli_env / "held.csv", held_out())), "--name", "held-out"])
    ok(["train", "--dataset", "reviews", *TINY])
    return "1"


def test_predict_evaluate_and_the_label_warning(model: str, cli_env: Path) -> None:
    texts = ["the film was brilliant", "the script was dull"]
    answer = json.loads(ok(["predict", "--model", model, *texts, "--json"]))
    assert answer["label_names"] == ["neg", "pos"]
    assert len(answer["labels"]) == 2 and all(len(p) == 2 for p in answer["probabilities"])
    assert [r["depth"] for r in answer["routes"]] == [3, 3]
    (cli_env / "inputs.txt").write_text(f"{texts[0]}\n\n{texts[1]}\n")
    from_file = json.loads(
        ok(["predict", "--model", model, "--file", str(cli_env / "inputs.txt"), "--json"])
    )
    assert from_file == answer
    table = ok(["predict", "--model", model, *texts])
    assert "p(neg)" in table and "p(pos)" in table and "routing version" in table
    assert "seq 0 depth 3" in table

    scored = json.loads(ok(["evaluate", "--model", model, "--dataset", "held-out", "--json"]))
    assert scored["n_records"] == 30 and scored["label_names"] == ["neg", "pos"]
    assert sum(map(sum, scored["confusion"])) == 30
    assert [c["support"] for c in scored["per_class"]] == [15, 15]
    assert scored["n_correct"] == sum(c["correct"] for c in scored["per_class"])
    shown = ok(["evaluate", "--model", model, "--dataset", "held-out"])
    assert f"accuracy {scored['accuracy']:.4f} ({scored['n_correct']}/30)" in shown
    assert "precision" in shown and "confusion" in shown

    assert "warning" not in ok(["status"])
    positives = [r.record_id for r in synthetic_dataset().records if r.label == 1]
    ok(["delete", "--dataset", "reviews", *[a for r in positives for a in ("--record", r)]])
    status = ok(["status"])
    assert "active training records per label: neg 36/36, pos 0/36" in status
    assert "warning: label 'pos' has no active training records left" in status
    (view,) = json.loads(ok(["status", "--json"]))
    assert view["labels"][1] == {
        "label": "pos",
        "trained": 36,
        "active": 0,
        "warning": view["labels"][1]["warning"],
    }
    # Every shard lost records: nothing serves until the retrains publish.
    dead = runner.invoke(app, ["evaluate", "--model", model, "--dataset", "held-out"])
    assert dead.exit_code == 2 and "dead until retraining ends" in dead.output


def test_predict_needs_inputs_from_one_place(cli_env: Path) -> None:
    result = runner.invoke(app, ["predict", "--model", "1"])
    assert result.exit_code == 2 and "nothing to predict" in result.output
    (cli_env / "in.txt").write_text("x\n")
    both = runner.invoke(app, ["predict", "--model", "1", "x", "--file", str(cli_env / "in.txt")])
    assert both.exit_code == 2 and "not both" in both.output
    missing = runner.invoke(app, ["predict", "--model", "7", "some text"])
    assert missing.exit_code == 2 and "no model 7" in missing.output
