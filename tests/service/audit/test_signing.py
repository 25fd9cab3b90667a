"""Signed chain heads: when they are made, and every way of getting around them fails."""

from __future__ import annotations

import dataclasses
import json
import random
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from service.audit import log as audit
from service.audit.keys import Signer, key_id, load_keyring, private_pem, public_pem
from service.audit.verify import export_lines, load_chain, read_export, verify_chain
from service.core import Service
from service.db.engine import Database
from service.settings import Settings


def keyring(service: Service) -> dict[str, object]:
    return dict(load_keyring([service.settings.keyring_dir]))


@pytest.mark.parametrize("every", [1, 3, 7])
def test_signature_interval_bounds_every_unsigned_run(settings: Settings, every: int) -> None:
    svc = Service.open(dataclasses.replace(settings, sign_every=every))
    svc.upgrade_schema()
    rng = random.Random(every)
    for _ in range(15):  # transactions of 1-4 events, some of which seal at commit
        with svc.db.write() as s:
            for _ in range(rng.randint(1, 4)):
                audit.append(s, rng.choice(["x.happened", "request.completed"]), {})
    with svc.db.read() as s:
        chain = load_chain(s)
    run = longest = 0
    for _, _, kind, data, _, _ in chain:
        run = 0 if kind == "chain.signed" else run + 1
        longest = max(longest, run)
        if kind == "chain.signed":
            assert data["interval"] == every
    assert longest <= every
    assert chain[1][2] == "chain.signed"
    report = verify_chain(chain, keyring(svc))  # type: ignore[arg-type]
    assert report.ok, report.problem
    # Cutting the last signature off leaves a tail the verifier knows was never signed,
    # unless it is shorter than the interval.
    last_sig = max(i for i, e in enumerate(chain) if e[2] == "chain.signed")
    tail = verify_chain(chain[:last_sig], keyring(svc))  # type: ignore[arg-type]
    unsigned = (
        last_sig - max(i for i, e in enumerate(chain[:last_sig]) if e[2] == "chain.signed") - 1
    )
    assert tail.ok == (unsigned < every)
    svc.db.dispose()


def _forger(service: Service, tmp_path: Path) -> Database:
    """The same database, written through by someone holding another key."""
    db = Database.from_url(service.settings.database_url)
    key = tmp_path / "attacker.pem"
    key.write_bytes(private_pem(Ed25519PrivateKey.generate()))
    audit.install(db, Signer.from_settings(None, key, tmp_path / "attacker-ring"), 1)
    return db


def test_a_signature_by_another_key_is_named(flowed: Service, tmp_path: Path) -> None:
    service = flowed
    forger = _forger(service, tmp_path)
    with forger.write() as s:
        audit.append(s, "request.completed", {"request": "forged"})
    with service.db.read() as s:
        chain = load_chain(s)
    report = verify_chain(chain, keyring(service))  # type: ignore[arg-type]
    assert not report.ok
    assert report.broken_at == chain[-1][0]
    assert "not trusted" in (report.problem or "")
    forger.dispose()


def test_a_forged_signature_claiming_the_real_key_is_named(flowed: Service) -> None:
    service = flowed
    with service.db.read() as s:
        chain = load_chain(s)
    seq, _, _, _, _, head = chain[-1]
    other = Ed25519PrivateKey.generate()
    data = {
        "head_seq": seq,
        "head_hash": head,
        "key_id": service.signer.key_id,  # lies about who signed
        "interval": 100,
        "signature": other.sign(audit.head_message(seq, head)).hex(),
    }
    at = chain[-1][1]
    forged = (
        seq + 1,
        at,
        "chain.signed",
        data,
        head,
        audit.event_hash(head, seq + 1, at, "chain.signed", data),
    )
    report = verify_chain([*chain, forged], keyring(service))  # type: ignore[arg-type]
    assert not report.ok and report.broken_at == seq + 1
    assert "does not verify" in (report.problem or "")


def test_rewriting_the_chain_without_the_key_is_caught(flowed: Service) -> None:
    """Someone drops an event and re-hashes everything after it: the hash chain is whole
    again, but the signatures no longer cover the events (or are gone)."""
    service = flowed
    with service.db.read() as s:
        chain = load_chain(s)
    victim = next(i for i, e in enumerate(chain) if e[2] == "records.erased")
    kept = [e for i, e in enumerate(chain) if i != victim and e[2] != "chain.signed"]
    rewritten, prev = [], audit.GENESIS
    for n, (_, at, kind, data, _, _) in enumerate(kept, 1):
        digest = audit.event_hash(prev, n, at, kind, data)
        rewritten.append((n, at, kind, data, prev, digest))
        prev = digest
    assert verify_chain(rewritten).ok  # the bare hash chain cannot tell
    report = verify_chain(rewritten, keyring(service))  # type: ignore[arg-type]
    assert not report.ok
    assert report.broken_at == 1


def test_rotation_keeps_old_signatures_valid_and_teaches_the_new_key(
    flowed: Service, tmp_path: Path
) -> None:
    service = flowed
    old_pub = service.signer.public
    old_file = tmp_path / "old.pub"
    old_file.write_bytes(public_pem(old_pub))
    new_id, new = service.signer.rotate()
    with service.db.write() as s:
        audit.append(
            s,
            "key.rotated",
            {
                "old_key_id": key_id(old_pub),
                "new_key_id": new_id,
                "public_key": new.public_key().public_bytes_raw().hex(),
            },
        )
    service.signer.install(new)
    with service.db.write() as s:
        audit.sign_now(s)
        audit.append(s, "request.failed", {"request": "after-rotation"})
    with service.db.read() as s:
        chain = load_chain(s)
    assert chain[-1][3]["key_id"] == new_id
    # An auditor who only ever received the first public key still verifies everything.
    report = verify_chain(chain, load_keyring([old_file]))
    assert report.ok, report.problem
    assert set(report.key_ids) == {key_id(old_pub), new_id}
    # Both public keys stay in the deployment's keyring.
    assert set(keyring(service)) == {key_id(old_pub), new_id}


def test_export_round_trips_and_an_edited_export_is_named(flowed: Service, tmp_path: Path) -> None:
    service = flowed
    with service.db.read() as s:
        chain = load_chain(s)
    path = tmp_path / "chain.jsonl"
    path.write_bytes(b"".join(export_lines(chain)))
    assert list(read_export(path)) == chain
    ring = keyring(service)
    assert verify_chain(read_export(path), ring).ok  # type: ignore[arg-type]
    lines = path.read_text().splitlines()
    event = json.loads(lines[4])
    event["data"]["n_records"] = 0 if event["data"].get("n_records") else 7
    lines[4] = json.dumps(event)
    path.write_text("\n".join(lines) + "\n")
    report = verify_chain(read_export(path), ring)  # type: ignore[arg-type]
    assert not report.ok and report.broken_at == 5
