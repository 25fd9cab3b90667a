"""``unlearn train`` passes every ``TrainConfig`` option into the model's stored config."""

from __future__ import annotations

import json
from pathlib import Path

from sqlalchemy import select
from typer.testing import CliRunner

from models.config import DEFAULT_TRAIN, TrainConfig
from service.cli.main import app
from service.core import Service
from service.db.tables import ModelRow
from tests.service.conftest import synthetic_dataset

runner = CliRunner()


def _csv(home: Path) -> Path:
    lines = ["record_id,subject_id,text,label"]
    for r in synthetic_dataset().records:
        lines.append(f"{r.record_id},{r.subject_id or ''},{r.text},{r.label}")
    path = home / "reviews.csv"
    path.write_text("\n".join(lines) + "\n")
    return path


def _configs() -> list[TrainConfig]:
    with Service.open().db.read() as s:
        return [TrainConfig.from_dict(c) for c in s.scalars(select(ModelRow.config))]


def test_every_option_reaches_the_models_config(cli_env: Path) -> None:
    result = runner.invoke(app, ["import", str(_csv(cli_env)), "--name", "reviews"])
    assert result.exit_code == 0, result.output
    given = {
        "--slices": "3",
        "--rank": "5",
        "--alpha": "4.5",
        "--lr": "0.01",
        "--weight-decay": "0.05",
        "--epochs": "3",
        "--batch-size": "7",
        "--max-length": "20",
        "--seed": "11",
        "--backbone": "all-minilm-l6-v2",
    }
    args = ["train", "--dataset", "reviews", "--no-wait", "--no-progress"]
    result = runner.invoke(app, args + [x for kv in given.items() for x in kv])
    assert result.exit_code == 0, result.output
    result = runner.invoke(app, ["train", "--dataset", "reviews", "--no-wait", "--no-progress"])
    assert result.exit_code == 0, result.output
    set_, default = _configs()
    assert set_ == TrainConfig(
        backbone="all-minilm-l6-v2",
        n_slices=3,
        rank=5,
        alpha=4.5,
        lr=0.01,
        weight_decay=0.05,
        epochs=3,
        batch_size=7,
        max_length=20,
        n_classes=2,
        seed=11,
    )
    assert default == DEFAULT_TRAIN, "no option given: DEFAULT_TRAIN, one class per label"
    status = json.loads(runner.invoke(app, ["status", "--json"]).output)
    assert status[0]["config_hash"] == set_.config_hash()


def test_bad_values_and_backbones_are_one_line_errors(cli_env: Path) -> None:
    runner.invoke(app, ["import", str(_csv(cli_env)), "--name", "reviews"])
    base = ["train", "--dataset", "reviews", "--no-wait", "--no-progress"]
    for extra, says in (
        (["--lr", "0"], "lr"),
        (["--weight-decay", "-1"], "weight_decay"),
        (["--backbone", "nope"], "unknown backbone 'nope'"),
        (["--backbone", "patch-transformer-28"], "does not read text"),
    ):
        result = runner.invoke(app, base + extra)
        assert result.exit_code == 2 and says in result.output, (extra, result.output)
    assert _configs() == []
