"""Deletion certificates: what they state, offline verification, the CLI and the API."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from service.audit.certificates import certificate_document, check_certificate
from service.audit.keys import load_keyring, public_pem
from service.audit.verify import load_chain
from service.cli.main import app
from service.core import Service
from service.db.tables import CheckpointRow, DeletionEventRow, DeletionRequestRow, RecordRow
from service.jobs.runner import LocalWorker
from service.lineage.deletion import DeletionInput
from tests.service.clients import api_client
from tests.service.conftest import SECRET, synthetic_dataset

runner = CliRunner()


def _completed(service: Service) -> tuple[DeletionRequestRow, str]:
    with service.db.read() as s:
        req = s.scalar(select(DeletionRequestRow).where(DeletionRequestRow.state == "completed"))
        assert req is not None
        return req, certificate_document(s, req.public_id)


def test_certificate_states_what_was_erased_cut_and_replaced(flowed: Service) -> None:
    req, document = _completed(flowed)
    cert = json.loads(document)
    with flowed.db.read() as s:
        hashes = sorted(
            s.scalars(select(RecordRow.content_hmac).where(RecordRow.erased_by == req.id))
        )
        retired = s.scalar(
            select(DeletionEventRow.detail).where(
                DeletionEventRow.request_id == req.id, DeletionEventRow.state == "effective"
            )
        )
        live = set(s.scalars(select(CheckpointRow.sha256).where(CheckpointRow.state == "live")))
        chain = load_chain(s)
    assert cert["request"] == req.public_id and cert["subject_key"] == req.subject_key
    assert cert["records"] == {"n": 3, "content_hmac": hashes}
    assert cert["method"] == "exact" and cert["deadline_met"] is True
    assert cert["received_at"] <= cert["effective_at"] <= cert["completed_at"] < cert["due_at"]
    completed = next(e for e in chain if e[2] == "request.completed")
    assert cert["chain"] == {"seq": completed[0], "hash": completed[5]}
    (model,) = cert["models"]
    assert model["routing_version_before"] == 2  # one publication per trained shard
    # Signed when the erasure finished (the cache purge), before any retrain republished.
    assert model["routing_version_after"] == model["routing_version_before"] + 1
    assert model["checkpoints_cut"] == sorted(retired["retired"]) and model["checkpoints_cut"]
    assert not set(model["checkpoints_cut"]) & live
    (purge,) = model["activation_cache_purge"]
    assert purge["cache_rows_removed"] >= 3
    work = {w["job"]: w for w in model["model_work"]}
    assert work and all(w["kind"] == "retrain" for w in work.values())
    for seq in model["sequences"]:
        assert seq["depth_now"] == seq["cut_to_depth"] < 3 and seq["replaced_by"] == []
        assert work[seq["restored_by_job"]]["state_at_signing"] == "queued"
    # The model work it names finished later, with its own evidence in the audit chain:
    # every retrain equals training from scratch, and its checkpoints are the live ones.
    finished = {e[3]["job"]: e[3] for e in chain if e[2] == "job.finished"}
    evidence = [finished[j]["evidence"] for j in work if j in finished]
    assert evidence and all(e["check"] == "from_scratch" and e["match"] for e in evidence)
    assert {sha for e in evidence for sha in e["from_scratch"]} & live


def test_any_changed_byte_or_another_key_fails(flowed: Service, tmp_path: Path) -> None:
    _, document = _completed(flowed)
    ring = load_keyring([flowed.settings.keyring_dir])
    raw = document.encode()
    assert check_certificate(raw, ring).ok
    assert check_certificate(raw + b"\n", ring).ok  # as a text editor may save it
    for i in range(len(raw)):
        for delta in (1, 0x20):
            changed = raw[:i] + bytes([raw[i] ^ delta]) + raw[i + 1 :]
            assert not check_certificate(changed, ring).ok, f"byte {i} ^ {delta}"
    assert not check_certificate(raw.replace(b",", b", ", 1), ring).ok  # re-spaced
    other = load_keyring([_other_key(tmp_path)])
    check = check_certificate(raw, other)
    assert not check.ok and "not a given public key" in (check.problem or "")


def _other_key(tmp_path: Path) -> Path:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    path = tmp_path / "other.pub"
    path.write_bytes(public_pem(Ed25519PrivateKey.generate().public_key()))
    return path


@pytest.fixture
def cli_env(flowed: Service, monkeypatch: pytest.MonkeyPatch) -> Service:
    monkeypatch.setenv("UNLEARN_HOME", str(flowed.settings.home))
    monkeypatch.setenv("UNLEARN_SECRET", SECRET)
    for name in ("DATABASE_URL", "CELERY_BROKER_URL", "UNLEARN_SIGNING_KEY"):
        monkeypatch.delenv(name, raising=False)
    return flowed


def run(args: list[str], code: int = 0) -> str:
    result = runner.invoke(app, args)
    assert result.exit_code == code, result.output
    return result.output


def test_cli_show_verify_export_rotate(cli_env: Service, tmp_path: Path) -> None:
    req, document = _completed(cli_env)
    cert, pub = tmp_path / "cert.json", tmp_path / "key.pub"
    run(["certificate", "show", req.public_id, "--out", str(cert)])
    assert cert.read_bytes() == document.encode()
    pub.write_text(run(["audit", "public-key"]))
    assert "certificate OK" in run(["certificate", "verify", str(cert), "--public-key", str(pub)])
    cert.write_bytes(cert.read_bytes().replace(b'"n":3', b'"n":2'))
    out = run(["certificate", "verify", str(cert), "--public-key", str(pub)], code=1)
    assert "signature does not match" in out

    assert "audit chain OK" in run(["audit", "verify"])
    export = tmp_path / "chain.jsonl"
    run(["audit", "export", "--out", str(export)])
    assert "audit chain OK" in run(
        ["audit", "verify", "--chain", str(export), "--public-key", str(pub)]
    )
    assert "rotated" in run(["audit", "rotate-key"])
    new_pub = tmp_path / "new.pub"
    new_pub.write_text(run(["audit", "public-key"]))
    assert new_pub.read_text() != pub.read_text()
    old_id, new_id = (next(iter(load_keyring([p]))) for p in (pub, new_pub))
    verified = run(["audit", "verify"])
    assert "audit chain OK" in verified and old_id in verified and new_id in verified
    run(["audit", "export", "--out", str(export)])
    # The old key alone still verifies: the rotation event taught it the new one.
    assert "audit chain OK" in run(
        ["audit", "verify", "--chain", str(export), "--public-key", str(pub)]
    )
    lines = export.read_text().splitlines()
    lines[2] = lines[2].replace('"kind":"', '"kind":"x', 1)
    export.write_text("\n".join(lines) + "\n")
    out = run(["audit", "verify", "--chain", str(export), "--public-key", str(pub)], code=1)
    assert "event 3" in out


def test_certificate_show_redirected_is_the_api_document_byte_for_byte(cli_env: Service) -> None:
    req, _ = _completed(cli_env)
    shown = runner.invoke(app, ["certificate", "show", req.public_id])  # stdout is no terminal
    assert shown.exit_code == 0, shown.output
    with api_client(cli_env) as client:
        served = client.get(f"/v1/deletions/{req.public_id}/certificate").content
    assert shown.stdout_bytes == served and not served.endswith(b"\n")


def test_view_report_and_certificate_state_one_outcome_on_every_path(flowed: Service) -> None:
    # Completed by its cache purge (a worker job), at once with nothing left to erase, and at
    # once with no model holding the records.
    flowed.delete(DeletionInput(subject_id="subject-1"))
    flowed.import_dataset("spare", synthetic_dataset(6, n_subjects=0, seed=5))
    flowed.delete(DeletionInput(record_ids=("rec-0001",), dataset="spare"))
    report = {r["id"]: r for r in flowed.audit_report()["requests"]["items"]}
    outcomes = []
    with flowed.db.read() as s:
        done = s.scalars(select(DeletionRequestRow).where(DeletionRequestRow.state == "completed"))
        for req in list(done):
            stated = json.loads(certificate_document(s, req.public_id))["outcome"]
            assert flowed.request(req.public_id).outcome == report[req.public_id]["outcome"]
            assert report[req.public_id]["outcome"] == stated
            outcomes.append(stated)
    assert sorted(outcomes) == ["already_erased", "erased", "no_model_affected"]


def test_api_serves_the_certificate_and_refuses_unfinished_ones(flowed: Service) -> None:
    req, document = _completed(flowed)
    with api_client(flowed) as client:
        r = client.get(f"/v1/deletions/{req.public_id}/certificate")
        assert r.status_code == 200 and r.content == document.encode()
        assert r.headers["content-type"] == "application/json"
        missing = client.get("/v1/deletions/00000000-0000-0000-0000-000000000000/certificate")
        assert missing.status_code == 404
        assert missing.headers["content-type"] == "application/problem+json"
        pending = client.post("/v1/deletions", json={"subject_id": "subject-2"}).json()
        r = client.get(f"/v1/deletions/{pending['id']}/certificate")
        assert r.status_code == 409 and "effective" in r.json()["detail"]


def test_no_raw_subject_id_or_text_in_logs_or_outputs(
    cli_env: Service, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    cli_env.delete(DeletionInput(subject_id="subject-3"))
    LocalWorker(cli_env.db, cli_env.settings).drain()
    outputs = [
        run(["requests", "list", "--json"]),
        run(["audit", "verify"]),
        caplog.text,
    ]
    with cli_env.db.read() as s:
        for req in s.scalars(select(DeletionRequestRow)):
            outputs.append(run(["requests", "show", req.public_id]))
            outputs.append(run(["certificate", "show", req.public_id]))
    erased = [r for r in synthetic_dataset().records if r.subject_id in ("subject-1", "subject-3")]
    blob = "\n".join(outputs)
    for r in erased:
        assert r.subject_id not in blob and r.text not in blob


def test_a_certificate_catches_a_chain_cut_back_past_it(cli_env: Service, tmp_path: Path) -> None:
    _, document = _completed(cli_env)
    cert, pub, export = tmp_path / "cert.json", tmp_path / "key.pub", tmp_path / "chain.jsonl"
    cert.write_text(document)
    pub.write_text(run(["audit", "public-key"]))
    run(["audit", "export", "--out", str(export)])
    verify = ["audit", "verify", "--chain", str(export), "--public-key", str(pub)]
    assert "audit chain OK" in run([*verify, "--certificate", str(cert)])
    pinned = json.loads(document)["chain"]["seq"]
    lines = export.read_text().splitlines()
    export.write_text("\n".join(lines[: pinned - 1]) + "\n")  # the completion and all after: gone
    # Fewer unsigned events than the interval are left: the signatures alone cannot tell ...
    assert "audit chain OK" in run(verify)
    # ... the certificate can.
    out = run([*verify, "--certificate", str(cert)], code=1)
    assert f"pins event {pinned}" in out and "missing" in out
