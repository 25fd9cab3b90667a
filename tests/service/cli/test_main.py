"""The ``unlearn`` CLI on a tiny CSV dataset (fast) and on real data (slow)."""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from service.cli.main import app
from tests.models.conftest import synthetic_items

runner = CliRunner()


def _csv(path: Path, n: int = 48) -> Path:
    lines = ["record_id,subject_id,text,label"]
    for i, (rid, text, label) in enumerate(synthetic_items(n, seed=21)):
        subject = f"person-{i // 3}" if i % 2 else ""
        lines.append(f"{rid},{subject},{text},{'pos' if label else 'neg'}")
    path.write_text("\n".join(lines) + "\n")
    return path


TINY = shlex.split(
    "--shards 2 --slices 2 --budget 2 --epochs 1 --max-length 16 --rank 2 --test-size 8"
    " --no-progress"
)


def test_help_lists_the_commands() -> None:
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for cmd in ("experiment", "train", "serve", "delete", "verify", "simulate-capacity"):
        assert cmd in result.output


def test_help_and_usage_errors_off_a_terminal_are_never_wrapped() -> None:
    """Through a pipe, help gives each option's whole name and its whole help text on one
    line (the next one for a long name), and a usage error is one line (Rich would draw
    80-column panels and cut both)."""

    def unlearn(*args: str) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-c", "from service.cli.main import app; app()", *args]
        return subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)

    help_text = unlearn("train-approximate", "--help").stdout
    lines = help_text.splitlines()
    at = next(i for i, x in enumerate(lines) if "--max-retain-nll-rise <float range>" in x)
    assert "language model: flag a relative retain-NLL rise  [default: 0.1; x>=0]" in "".join(
        lines[at : at + 2]
    )
    assert "\u2502" not in help_text  # no panel borders
    error = unlearn("placements", "--model", "1", "--no-such-option")
    assert error.returncode == 2
    assert "Error: No such option: --no-such-option" in error.stderr.splitlines()


def test_train_and_evaluate_a_csv(tmp_path: Path) -> None:
    data = _csv(tmp_path / "reviews.csv")
    out = tmp_path / "run"
    result = runner.invoke(
        app, ["experiment", "train", "--out", str(out), "--dataset", str(data), *TINY]
    )
    assert result.exit_code == 0, result.output
    manifest = json.loads((out / "run.json").read_text())
    assert manifest["train_records"] == 40 and manifest["test_records"] == 8
    assert manifest["balance"]["max_slice"] >= 10 >= manifest["balance"]["min_slice"]
    assert "placement balance" in result.output
    assert (out / "placement.key").stat().st_mode & 0o777 == 0o600
    placed = [rid for entry in manifest["shards"] for s in entry["slices"] for rid in s]
    assert len(placed) == len(set(placed)) == 40
    for entry in manifest["shards"]:
        assert entry["sequences"] == [[0, 1], [1, 0]]
        assert entry["depths"] == [2, 2]
        for chain in entry["chains"]:
            for sha in chain:
                assert (out / "checkpoints" / sha[:2] / f"{sha}.safetensors").exists()
    # subjects stay together: records of one person share a (shard, slice)
    where = {
        rid: (entry["shard"], i)
        for entry in manifest["shards"]
        for i, s in enumerate(entry["slices"])
        for rid in s
    }
    rows = [line.split(",") for line in data.read_text().splitlines()[1:]]
    by_subject: dict[str, set[tuple[int, int]]] = {}
    for rid, subject, *_ in rows:
        if subject and rid in where:
            by_subject.setdefault(subject, set()).add(where[rid])
    assert by_subject and all(len(v) == 1 for v in by_subject.values())

    result = runner.invoke(app, ["experiment", "evaluate", "--run", str(out), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert 0.0 <= report["accuracy"] <= 1.0 and report["n_test"] == 8
    assert report["served_depths"] == {"0": 2, "1": 2}

    again = runner.invoke(
        app, ["experiment", "train", "--out", str(out), "--dataset", str(data), *TINY]
    )
    assert again.exit_code == 2 and "--force" in again.output


def test_bad_input_gives_one_clear_error(tmp_path: Path) -> None:
    # However long the path, the error is one line (output off a terminal is never wrapped).
    deep = tmp_path / ("a-long-directory-name-" * 8)
    deep.mkdir()
    bad = deep / "bad.csv"
    bad.write_text("record_id,text,label\nr1,fine,1\nr1,again,0\n")
    result = runner.invoke(
        app, ["experiment", "train", "--out", str(tmp_path / "r"), "--dataset", str(bad)]
    )
    assert result.exit_code == 2
    (error,) = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert str(bad) in error and "line 3" in error and 'duplicate record_id "r1"' in error
    assert not (tmp_path / "r" / "run.json").exists()
    result = runner.invoke(app, ["experiment", "evaluate", "--run", str(tmp_path / "nothing")])
    assert result.exit_code == 2 and "no trained run" in result.output
    result = runner.invoke(
        app, ["experiment", "train", "--out", str(tmp_path / "r"), "--dataset", "nope"]
    )
    assert result.exit_code == 2 and "rotten-tomatoes" in result.output
    result = runner.invoke(
        app,
        [
            "experiment",
            "train",
            "--out",
            str(tmp_path / "r"),
            "--selection",
            "bms",
            "--deletion-priors",
            "x",
        ],
    )
    assert result.exit_code == 2


def test_simulate_capacity_matches_closed_forms() -> None:
    result = runner.invoke(app, ["simulate-capacity", "--json", "--trials", "20000"])
    assert result.exit_code == 0, result.output
    runs = json.loads(result.stdout)["runs"]
    assert {(r["method"], r["budget"]) for r in runs} == {
        ("s3t", 1),
        ("s3t", 2),
        ("s3t", 3),
        ("s3t", 6),
        ("sisa", 1),
    }
    for r in runs:
        assert r["relative_error"] < 0.03
        assert r["depth_curve"][0] == 6


@pytest.mark.slow
def test_real_data_end_to_end(tmp_path: Path) -> None:
    out = tmp_path / "rt"
    # A fixed placement secret: with a fresh random one per run the shards (and so the
    # accuracy, near the bar) would change from run to run.
    secret = tmp_path / "placement.key"
    secret.write_bytes(bytes.fromhex("5e" * 32))
    args = ["experiment", "train", "--out", str(out), "--secret-file", str(secret)]
    args += shlex.split(
        "--train-size 600 --test-size 300 --shards 2 --slices 2 --budget 2 --epochs 1"
    )
    args += ["--no-progress"]
    assert runner.invoke(app, args).exit_code == 0
    result = runner.invoke(app, ["experiment", "evaluate", "--run", str(out), "--json"])
    assert result.exit_code == 0, result.output
    accuracy = json.loads(result.stdout)["accuracy"]
    assert accuracy > 0.6, accuracy


def test_train_on_numeric_features(tmp_path: Path) -> None:
    lines = ["record_id,features,label"]
    for i in range(40):
        pixels = [((i * 7 + j) % 13) / 13 * (i % 2) for j in range(784)]
        lines.append(f'f{i:03d},"{" ".join(f"{p:.3f}" for p in pixels)}",{i % 2}')
    data = tmp_path / "images.csv"
    data.write_text("\n".join(lines) + "\n")
    out = tmp_path / "run"
    args = [
        "experiment",
        "train",
        "--out",
        str(out),
        "--dataset",
        str(data),
        "--shards",
        "1",
        "--slices",
        "2",
        "--budget",
        "1",
        "--epochs",
        "1",
        "--test-size",
        "8",
        "--no-progress",
    ]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert json.loads((out / "run.json").read_text())["spec"]["config"]["backbone"] == (
        "patch-transformer-28"
    )
    result = runner.invoke(app, ["experiment", "evaluate", "--run", str(out), "--json"])
    assert result.exit_code == 0, result.output
    wrong_args = [a if a != str(out) else str(tmp_path / "r2") for a in args]
    wrong = runner.invoke(app, [*wrong_args, "--backbone", "all-minilm-l6-v2"])
    assert wrong.exit_code == 2 and "does not read features" in wrong.output
