"""The commands that need no model never import torch, transformers or peft (issue 15): each
runs in a fresh interpreter against a deployment with an S3T and an approximate model, a
completed deletion with its certificate and an API key, and reports the modules it loaded.
Their wall times are measured by ``bench/cli.py``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from service.approximate.registry import ApproximateSpec
from service.core import Service
from service.jobs.runner import LocalWorker
from service.lineage.deletion import DeletionInput
from service.settings import Settings
from tests.service.approximate.conftest import CNN, image_dataset
from tests.service.conftest import SECRET, SMALL, synthetic_dataset

HEAVY = ("torch", "transformers", "peft")
# Runs the CLI as `unlearn` would, then prints the heavy modules it loaded as the last line
# of stderr.
DRIVER = """
import json, sys
from service.cli.main import app
sys.argv = ["unlearn", *sys.argv[1:]]
code = 0
try:
    app()
except SystemExit as exc:
    code = exc.code if isinstance(exc.code, int) else 1
heavy = sorted({{m.split(".")[0] for m in sys.modules}} & {{{}}})
print("\\nMODULES " + json.dumps(heavy), file=sys.stderr)
sys.exit(code)
""".format(", ".join(repr(h) for h in HEAVY))


def run_command(home: Path, args: list[str]) -> tuple[int, str, list[str]]:
    """Run ``unlearn args`` in a fresh interpreter: (exit code, stdout, heavy modules)."""
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "CELERY_BROKER_URL")}
    env.update(UNLEARN_HOME=str(home), UNLEARN_SECRET=SECRET)
    done = subprocess.run(
        [sys.executable, "-c", DRIVER, *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    marker = [line for line in done.stderr.splitlines() if line.startswith("MODULES ")]
    assert marker, done.stderr
    return done.returncode, done.stdout, json.loads(marker[-1].removeprefix("MODULES "))


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, str]]:
    """(home, public id of a completed request that erased records of both models)."""
    home = tmp_path_factory.mktemp("model-free") / "data"
    svc = Service.open(
        Settings(home=home, database_url=f"sqlite:///{home / 'unlearn.db'}", secret_hex=SECRET)
    )
    svc.upgrade_schema()
    svc.import_dataset("synthetic", synthetic_dataset())
    svc.import_dataset("digits", image_dataset(60, 0, "digits", n_subjects=2))
    svc.import_dataset("digits-held-out", image_dataset(30, 1, "held"))
    svc.create_model("synthetic", SMALL)
    spec = ApproximateSpec(
        family="cnn-mnist", eval_dataset="digits-held-out", family_params={**CNN, "epochs": 1}
    )
    svc.create_approximate_model("digits", spec)
    LocalWorker(svc.db, svc.settings).drain()
    accepted = svc.accept(DeletionInput(subject_id="subject-1"))
    LocalWorker(svc.db, svc.settings).drain()
    svc.db.dispose()
    yield home, accepted.request.id


def test_model_free_commands_never_import_torch(
    deployment: tuple[Path, str], tmp_path: Path
) -> None:
    home, request_id = deployment
    certificate = tmp_path / "certificate.json"
    public_key = tmp_path / "signing.pub.pem"
    commands = [
        ["--help"],
        ["status"],
        ["status", "--json"],
        ["requests", "list"],
        ["requests", "show", request_id],
        ["lineage", "rec-0000"],
        ["placements", "--model", "1"],
        ["verify"],
        ["verify", "--erasure"],
        ["audit", "verify"],
        ["audit", "export", "--out", str(tmp_path / "audit.jsonl")],
        ["audit", "report", "--out", str(tmp_path / "report.html")],
        ["certificate", "show", request_id, "--out", str(certificate)],
        ["certificate", "verify", str(certificate), "--public-key", str(public_key)],
        ["keys", "create", "--name", "portal", "--scope", "deletions:create"],
        ["keys", "list"],
        ["db", "current"],
        ["db", "upgrade"],
        ["delete", "--subject", "subject-2"],
    ]
    loaded = {}
    for args in commands:
        code, out, heavy = run_command(home, args)
        assert code == 0, (args, out)
        loaded[" ".join(args[:2])] = heavy
        if args == ["audit", "verify"]:
            code, out, heavy = run_command(home, ["audit", "public-key"])
            public_key.write_text(out)
            loaded["audit public-key"] = heavy
    assert all(not heavy for heavy in loaded.values()), loaded


def test_the_check_would_see_torch(deployment: tuple[Path, str]) -> None:
    """The same driver on a command that does need a model reports torch: the check above
    can fail."""
    home, _ = deployment
    code, out, heavy = run_command(home, ["predict", "--model", "1", "a warm film"])
    assert code == 0, out
    assert "torch" in heavy
