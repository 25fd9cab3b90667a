"""Approximate models from the shell: ``train-approximate``, a deletion that goes to review,
``requests resolve`` with another method and then the exact retrain (embedded SQLite)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from service.cli.main import app
from tests.service.approximate.conftest import CNN, image_dataset

runner = CliRunner()
PARAMS = [arg for key, value in CNN.items() for arg in ("--param", f"{key}={value}")]


@pytest.fixture
def home(cli_env: Path) -> Path:
    return cli_env


def ok(args: list[str]) -> str:
    result = runner.invoke(app, args)
    assert result.exit_code == 0, (args, result.output, result.exception)
    return result.output


def refused(args: list[str], needle: str) -> None:
    result = runner.invoke(app, args)
    assert result.exit_code == 2, (args, result.output)
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and needle in errors[0], (args, result.output)  # one line, unwrapped
    assert "Traceback" not in result.output


def _import_images() -> None:
    from service.core import Service

    ok(["db", "upgrade"])
    svc = Service.open()
    svc.import_dataset("digits", image_dataset(200, 0, "digits", n_subjects=4))
    svc.import_dataset("digits-held-out", image_dataset(60, 1, "held"))
    svc.db.dispose()


def _run_worker() -> None:
    """What `unlearn worker` does, until no job is left."""
    from service.core import Service
    from service.jobs.runner import LocalWorker

    svc = Service.open()
    LocalWorker(svc.db, svc.settings).drain()
    svc.db.dispose()


def test_flagged_deletion_resolved_with_another_method_then_retrain(home: Path) -> None:
    _import_images()
    base = ["--dataset", "digits", "--family", "cnn-mnist", "--eval-dataset", "digits-held-out"]
    # A zero AUC margin flags every approximate result: the deletion waits for review.
    flagging = ["--auc-margin", "0", "--auc-z", "0", "--no-progress"]
    trained = ok(["train-approximate", *base, "--method", "ft", *PARAMS, *flagging])
    assert "model 1 (cnn-mnist, unlearns with FT): ready, live version 1" in trained
    (status,) = json.loads(ok(["status", "--json"]))
    assert status["kind"] == "approximate" and status["live_version"] == 1
    assert status["config"]["family_params"] == CNN and status["config"]["auc_margin"] == 0
    assert "approximate cnn-mnist, unlearns with FT, live version 1" in ok(["status"])

    deleted = ok(["delete", "--subject", "subject-0"])
    found = re.search(r"request (\S+) unlearning: 3 record\(s\) erased", deleted)
    assert found, deleted
    rid = found.group(1)
    assert "approximate model 1 will unlearn with FT (job 2)" in deleted

    _run_worker()
    (listed,) = json.loads(ok(["requests", "list", "--state", "needs_review", "--json"]))
    assert listed["id"] == rid and listed["unlearning"][0]["version"]["state"] == "candidate"
    assert "needs_review" in ok(["requests", "list"])
    ok(["audit", "report", "--format", "json", "--out", str(home / "report.json")])
    report = json.loads((home / "report.json").read_text())["requests"]
    assert report["by_state"]["needs_review"] == 1 and report["items"][0]["models"] == [1]
    ok(["audit", "report", "--out", str(home / "report.html")])  # draws the new states too
    assert "needs_review" in (home / "report.html").read_text()
    bad_state = runner.invoke(app, ["requests", "list", "--state", "pending"])
    assert bad_state.exit_code == 2 and "needs_review" in bad_state.output  # lists the choices

    refused(["requests", "resolve", rid], "exactly one of --accept, --retrain or --method")
    refused(["requests", "resolve", rid, "--accept", "--retrain"], "got --accept and --retrain")
    refused(["requests", "resolve", rid, "--retrain", "--method", "FT"], "exactly one")
    refused(["requests", "resolve", rid, "--retrain", "--method-param", "lr=0.1"], "--method")
    refused(["requests", "resolve", rid, "--method", "FT", "--method-param", "lr"], "KEY=VALUE")
    refused(["requests", "resolve", rid, "--method", "sgd-magic"], "unknown unlearning method")

    again = ok(["requests", "resolve", rid, "--method", "FT", "--method-param", "epochs=1"])
    assert f"request {rid} needs_review (method approximate)" in again
    assert re.search(r"job 2 FT: version 2 rejected, flags: \w+", again), again
    assert re.search(r"job 3 FT: version 3 candidate, flags: \w+", again), again
    assert f"unlearn requests resolve {rid} --accept" in again

    done = json.loads(ok(["requests", "resolve", rid, "--retrain", "--no-progress", "--json"]))
    assert done["state"] == "completed" and done["method"] == "exact"
    assert [u["method"] for u in done["unlearning"]] == ["FT", "FT", "Retrain"]
    final = done["unlearning"][-1]["version"]
    assert final["version"] == 4 and final["state"] == "live" and final["exact"]
    assert "live version 4" in ok(["status"])
    cert = json.loads(ok(["certificate", "show", rid]))
    assert cert["method"] == "exact" and cert["models"][0]["method"] == "Retrain"

    refused(["requests", "resolve", rid, "--accept"], f"request {rid} is completed")
    refused(["requests", "resolve", "no-such-id", "--accept"], "no deletion request")


def test_train_approximate_refuses_bad_input_clearly(home: Path) -> None:
    _import_images()
    base = ["train-approximate", "--dataset", "digits", "--eval-dataset", "digits-held-out"]
    cases = [
        ([*base, "--family", "cnn-mnist", "--param", "width=four"], "not a number"),
        ([*base, "--family", "cnn-mnist", "--param", "depth=3"], "depth"),
        ([*base, "--family", "minilm-lora-all"], "reads text"),
        ([*base, "--family", "cnn-mnist", "--method", "NPO", "--method-param", "nope=1"], "nope"),
        ([*base, "--family", "cnn-mnist", "--method-param", "x=1", "--method-param", "x=2"], "x"),
        (["train-approximate", "--dataset", "digits", "--family", "cnn-mnist",
          "--eval-dataset", "digits"], "must not be the training"),
    ]  # fmt: skip
    for args, needle in cases:
        refused(args, needle)
    assert json.loads(ok(["status", "--json"])) == []
