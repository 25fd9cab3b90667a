"""The audit chain: appended in the service's transactions, append-only in the database,
and every kind of tampering named by the verifier."""

from __future__ import annotations

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError, IntegrityError
from typer.testing import CliRunner

from service.audit.certificates import certificate_document, check_certificate
from service.audit.jcs import canonical
from service.audit.keys import load_keyring
from service.audit.verify import load_chain, verify_chain
from service.cli.main import app
from service.core import Service
from service.db.tables import DeletionRequestRow
from tests.service.audit.conftest import flow
from tests.service.conftest import SECRET, synthetic_dataset


def test_jcs_sorts_keys_by_utf16_and_refuses_floats() -> None:
    assert canonical({"b": 1, "a": [True, None, "é"]}) == '{"a":[true,null,"é"],"b":1}'.encode()
    # By code point U+E000 < U+1F600, but JCS compares UTF-16 units: 0xD83D (the emoji's
    # high surrogate) < 0xE000, so the emoji comes first.
    assert canonical({"\ue000": 2, "\U0001f600": 1}).startswith('{"\U0001f600"'.encode())
    with pytest.raises(TypeError):
        canonical({"x": 0.5})


def test_flow_writes_a_signed_chain_and_certificate_the_db_protects(service: Service) -> None:
    """One full flow per backend: every event kind, signed heads (first event, every N,
    completion), a certificate that verifies offline, no raw subject id or erased text in
    either, and the database refusing UPDATE/DELETE on both tables."""
    flow(service)
    with service.db.read() as s:
        chain = load_chain(s)
        req = s.scalar(select(DeletionRequestRow))
        assert req is not None and req.state == "completed"
        document = certificate_document(s, req.public_id)
    kinds = [kind for _, _, kind, _, _, _ in chain]
    for kind in (
        "dataset.imported",
        "model.registered",
        "model.trained",
        "request.received",
        "records.erased",
        "request.effective",
        "routing.published",
        "job.started",
        "job.finished",
        "request.completed",
        "certificate.issued",
    ):
        assert kind in kinds
    assert kinds[:2] == ["dataset.imported", "chain.signed"]
    done = kinds.index("request.completed")
    assert kinds[done + 1 : done + 3] == ["certificate.issued", "chain.signed"]
    ring = load_keyring([service.settings.keyring_dir])
    report = verify_chain(chain, ring)
    assert report.ok, report.problem
    assert report.key_ids == (service.signer.key_id,)
    assert check_certificate(document.encode(), ring).ok

    with service.db.read() as s:
        dump = " ".join(
            str(r) for r in s.execute(text("SELECT kind, data FROM audit_events")).all()
        )
    texts = [r.text for r in synthetic_dataset().records if r.subject_id == "subject-1"]
    for where in (dump, document):
        assert "subject-1" not in where
        assert not any(t and t in where for t in texts)

    for table, column in (("audit_events", "kind"), ("certificates", "document")):
        for statement in (f"UPDATE {table} SET {column} = 'x'", f"DELETE FROM {table}"):
            with pytest.raises((IntegrityError, DBAPIError)), service.db.write() as s:
                s.execute(text(statement))
    with service.db.read() as s:
        assert verify_chain(load_chain(s), ring).ok


@pytest.mark.parametrize("attack", ["edit", "delete", "reorder", "insert"])
def test_tampering_is_named(flowed: Service, attack: str, monkeypatch: pytest.MonkeyPatch) -> None:
    service = flowed
    with service.db.write() as s:  # an attacker with the database owner's rights
        s.execute(text("DROP TRIGGER audit_events_no_update"))
        s.execute(text("DROP TRIGGER audit_events_no_delete"))
        if attack == "edit":
            s.execute(text('UPDATE audit_events SET data = \'{"dataset":"x"}\' WHERE seq = 3'))
        elif attack == "delete":
            s.execute(text("DELETE FROM audit_events WHERE seq = 3"))
        elif attack == "reorder":
            s.execute(text("UPDATE audit_events SET seq = 999999 WHERE seq = 3"))
            s.execute(text("UPDATE audit_events SET seq = 3 WHERE seq = 4"))
            s.execute(text("UPDATE audit_events SET seq = 4 WHERE seq = 999999"))
        else:
            s.execute(
                text(
                    "INSERT INTO audit_events (id, seq, at, kind, data, prev_hash, hash) "
                    "SELECT 100000, 100000, at, kind, data, prev_hash, "
                    # event 2's hash with its first digit changed (so never equal to it)
                    "CASE WHEN substr(hash, 1, 1) = 'f' THEN 'e' ELSE 'f' END || substr(hash, 2) "
                    "FROM audit_events WHERE seq = 2"
                )
            )
    with service.db.read() as s:
        report = verify_chain(load_chain(s))
    assert not report.ok
    assert report.broken_at == (3 if attack != "insert" else report.n_events)
    assert report.problem
    # The operator's command says the same and exits 1.
    monkeypatch.setenv("UNLEARN_HOME", str(service.settings.home))
    monkeypatch.setenv("UNLEARN_SECRET", SECRET)
    monkeypatch.delenv("DATABASE_URL", raising=False)
    result = CliRunner().invoke(app, ["audit", "verify"])
    assert result.exit_code == 1, result.output
    assert f"event {report.broken_at}" in result.output
