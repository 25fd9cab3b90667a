"""Sealed payloads in the service's database, and erasure as the destruction of data keys
(``service.erasure.vault``), on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import threading
from typing import Any

import pytest
from sqlalchemy import select, text

from models.data import Dataset, Record
from service.approximate.registry import ApproximateSpec
from service.core import Service
from service.db.tables import (
    AuditEventRow,
    DataKeyRow,
    DeletionRequestRow,
    ForgetPayloadRow,
    RecordRow,
)
from service.erasure import crypto, vault
from service.lineage.deletion import DeletionInput
from service.usecases.accept_deletion import accept_deletion
from sharding import subject_key
from tests.service.api.conftest import drain
from tests.service.approximate.conftest import image_dataset

# alpha: ann x3, bob x2, dan x3, four records without a subject; beta: ann x2, cid x1, one
# without a subject. Every text carries a marker word no other text has.
ALPHA = [("a-ann", "ann", 3), ("a-bob", "bob", 2), ("a-dan", "dan", 3), ("a-none", None, 4)]
BETA = [("b-ann", "ann", 2), ("b-cid", "cid", 1), ("b-none", None, 1)]


def _text(record_id: str) -> str:
    return f"the story of {record_id} was moving platypus{record_id.replace('-', '')}"


def _dataset(name: str, groups: list[tuple[str, str | None, int]]) -> Dataset:
    records = []
    for prefix, subject, n in groups:
        for i in range(n):
            rid = f"{prefix}-{i}"
            records.append(Record(rid, subject, i % 2, text=_text(rid)))
    return Dataset(name=name, records=tuple(records), label_names=("neg", "pos"))


ALL_IDS = [r.record_id for r in _dataset("x", ALPHA + BETA).records]


@pytest.fixture
def two(service: Service) -> Service:
    service.import_dataset("alpha", _dataset("alpha", ALPHA))
    service.import_dataset("beta", _dataset("beta", BETA))
    return service


def _rows(svc: Service) -> dict[str, RecordRow]:
    with svc.db.read() as s:
        return {r.record_id: r for r in s.scalars(select(RecordRow))}


def _keys(svc: Service) -> dict[str, str | None]:
    with svc.db.read() as s:
        return {k: o for k, o in s.execute(select(DataKeyRow.id, DataKeyRow.owner))}


def _owner(svc: Service, subject: str) -> str:
    return subject_key(svc.settings.secret(), subject)


def _open(svc: Service, envelope: dict[str, Any]) -> dict[str, Any]:
    with svc.db.read() as s:
        return vault.open_payload(s, envelope)


def _assert_destroyed(svc: Service, envelope: dict[str, Any]) -> None:
    with svc.db.read() as s, pytest.raises(vault.KeyDestroyed):
        vault.open_payload(s, envelope)


def _effective(svc: Service, public_id: str) -> dict[str, Any]:
    with svc.db.read() as s:
        (data,) = [
            e.data
            for e in s.scalars(
                select(AuditEventRow).where(AuditEventRow.kind == "request.effective")
            )
            if e.data["request"] == public_id
        ]
        req = s.scalar(select(DeletionRequestRow).where(DeletionRequestRow.public_id == public_id))
        assert req is not None
        assert req.data_keys_destroyed == data["data_keys_destroyed"]
        return data


def test_every_stored_payload_is_sealed_and_the_column_holds_no_text(two: Service) -> None:
    with two.db.read() as s:
        raw = [str(v) for v in s.scalars(text("SELECT CAST(payload AS TEXT) FROM records"))]
    assert len(raw) == len(ALL_IDS) == 16
    joined = "\n".join(raw)
    assert "platypus" not in joined and "moving" not in joined
    for r in ALL_IDS:
        assert _text(r) not in joined
    assert all(crypto.is_sealed(json.loads(v)) for v in raw)
    with two.db.read() as s:
        rows = list(s.scalars(select(RecordRow)))
        assert {r.record_id for r in rows} == set(ALL_IDS)
        for row in rows:
            assert row.payload is not None and crypto.is_sealed(row.payload)
            assert row.data_key_id == crypto.envelope_key(row.payload)
            assert vault.open_payload(s, row.payload) == {"text": _text(row.record_id)}


def test_one_data_key_per_subject_across_datasets_and_one_per_subjectless_record(
    two: Service,
) -> None:
    rows, keys = _rows(two), _keys(two)
    by_prefix: dict[str, set[str | None]] = {}
    for rid, row in rows.items():
        by_prefix.setdefault(rid.rsplit("-", 1)[0], set()).add(row.data_key_id)
    (ann,) = by_prefix["a-ann"]
    assert by_prefix["b-ann"] == {ann}  # one key for ann, in both datasets
    for prefix in ("a-bob", "a-dan", "b-cid"):
        assert len(by_prefix[prefix]) == 1
    own = [rows[r].data_key_id for r in ALL_IDS if "none" in r]
    assert len(set(own)) == len(own) == 5  # a key of its own for each record without subject
    assert all(keys[k] is None for k in own if k is not None)
    groups = {"ann": "a-ann", "bob": "a-bob", "dan": "a-dan", "cid": "b-cid"}
    for subject, prefix in groups.items():
        (key_id,) = by_prefix[prefix]
        assert [k for k, o in keys.items() if o == _owner(two, subject)] == [key_id]
    assert len(keys) == 4 + 5
    # A later dataset of a known subject reuses the subject's key.
    two.import_dataset("gamma", _dataset("gamma", [("g-ann", "ann", 1)]))
    assert _rows(two)["g-ann-0"].data_key_id == ann
    assert len(_keys(two)) == 9


def test_deleting_a_subject_from_one_dataset_moves_its_other_records_to_a_new_key(
    two: Service,
) -> None:
    before, keys_before = _rows(two), _keys(two)
    old = before["a-ann-0"].data_key_id
    assert old is not None
    envelopes = {r: before[r].payload for r in before if "ann" in r}

    view, _, _ = two.delete(DeletionInput(subject_id="ann", dataset="alpha"))
    assert view["n_records"] == 3 and view["state"] == "completed"  # no model holds them
    after, keys_after = _rows(two), _keys(two)
    assert old not in keys_after
    for r in ("a-ann-0", "a-ann-1", "a-ann-2"):
        assert after[r].state == "erased" and after[r].payload is None
        assert after[r].data_key_id is None
    (new,) = {after[r].data_key_id for r in ("b-ann-0", "b-ann-1")}
    assert new is not None and new != old and new not in keys_before
    assert keys_after[new] == _owner(two, "ann")
    for r in ("b-ann-0", "b-ann-1"):
        assert after[r].state == "active"
        payload = after[r].payload
        assert payload is not None and crypto.envelope_key(payload) == new
        assert _open(two, payload) == {"text": _text(r)}
    # Every envelope sealed under the old key is unreadable now, the ones that stayed too.
    for envelope in envelopes.values():
        assert envelope is not None
        _assert_destroyed(two, envelope)
    # Nobody else's key was touched.
    assert set(keys_before) - {old} == set(keys_after) - {new}
    assert _effective(two, view["id"])["data_keys_destroyed"] == 1


def test_deleting_one_record_of_a_subject_leaves_its_other_two_readable(two: Service) -> None:
    before = _rows(two)
    old = before["a-dan-1"].data_key_id
    assert old is not None and {before[f"a-dan-{i}"].data_key_id for i in range(3)} == {old}
    erased_envelope = before["a-dan-1"].payload
    assert erased_envelope is not None

    view, _, _ = two.delete(DeletionInput(record_ids=("a-dan-1",)))
    assert view["n_records"] == 1
    after, keys = _rows(two), _keys(two)
    assert old not in keys and after["a-dan-1"].payload is None
    (new,) = {after[r].data_key_id for r in ("a-dan-0", "a-dan-2")}
    assert new is not None and new != old and keys[new] == _owner(two, "dan")
    for r in ("a-dan-0", "a-dan-2"):
        payload = after[r].payload
        assert after[r].state == "active" and payload is not None
        assert _open(two, payload) == {"text": _text(r)}
    _assert_destroyed(two, erased_envelope)
    assert _effective(two, view["id"])["data_keys_destroyed"] == 1
    # The subject's key is found again by a later import.
    two.import_dataset("gamma", _dataset("gamma", [("g-dan", "dan", 1)]))
    assert _rows(two)["g-dan-0"].data_key_id == new


def test_data_keys_destroyed_counts_the_keys(two: Service) -> None:
    n_keys = len(_keys(two))
    four = ("a-none-0", "a-none-1", "b-none-0", "a-bob-0")
    view, _, _ = two.delete(DeletionInput(record_ids=four))
    assert view["n_records"] == 4
    assert _effective(two, view["id"])["data_keys_destroyed"] == 4
    assert len(_keys(two)) == n_keys - 4 + 1  # bob's other record got a new key

    # ann everywhere: her one key goes and no new one is made (nothing of hers stays).
    view, _, _ = two.delete(DeletionInput(subject_id="ann"))
    assert view["n_records"] == 5
    assert _effective(two, view["id"])["data_keys_destroyed"] == 1
    keys = _keys(two)
    assert len(keys) == n_keys - 4
    assert _owner(two, "ann") not in keys.values()

    # Records already erased: nothing left to destroy.
    view, _, _ = two.delete(DeletionInput(record_ids=("a-none-0",)))
    assert view["outcome"] == "already_erased"
    assert _effective(two, view["id"])["data_keys_destroyed"] == 0
    assert len(_keys(two)) == n_keys - 4


def test_an_erased_records_old_envelope_raises_key_destroyed(two: Service) -> None:
    before = _rows(two)
    envelope, kept = before["b-cid-0"].payload, before["a-none-3"].payload
    assert envelope is not None and kept is not None
    assert _open(two, envelope) == {"text": _text("b-cid-0")}
    two.delete(DeletionInput(subject_id="cid"))
    _assert_destroyed(two, envelope)
    assert _open(two, kept) == {"text": _text("a-none-3")}  # the vault itself still works
    with two.db.write() as s:  # nor in a write transaction (nothing cached survives)
        with pytest.raises(vault.KeyDestroyed):
            vault.open_payload(s, envelope)
        assert s.get(DataKeyRow, crypto.envelope_key(envelope)) is None


# Approximate models: the quarantined forget payloads.

TINY_CNN = {"width": 4, "epochs": 2, "batch_size": 16, "lr": 0.003}


def test_quarantined_payloads_are_sealed_under_the_requests_key_destroyed_at_close(
    service: Service,
) -> None:
    svc = service
    svc.import_dataset("digits", image_dataset(200, 0, "digits", n_subjects=4))
    svc.import_dataset("digits-held-out", image_dataset(60, 1, "held"))
    spec = ApproximateSpec(
        family="cnn-mnist",
        eval_dataset="digits-held-out",
        family_params=TINY_CNN,
        method="l1-sparse",
        auc_margin=0.5,
        max_test_drop=100.0,
    )
    svc.create_approximate_model("digits", spec)
    drain(svc)
    before = _rows(svc)
    subject = [r for r in before.values() if r.subject_key == _owner(svc, "subject-1")]
    assert len(subject) == 3
    plain = {}
    for r in subject:
        assert r.payload is not None
        plain[r.id] = _open(svc, r.payload)
    record_key = subject[0].data_key_id

    view, _, _ = svc.delete(DeletionInput(subject_id="subject-1"))
    assert view["state"] == "unlearning"
    with svc.db.read() as s:
        req = s.scalar(select(DeletionRequestRow).where(DeletionRequestRow.public_id == view["id"]))
        assert req is not None
        owner = vault.quarantine_owner(req.id)
        assert owner == f"request:{req.id}"
        held = list(
            s.scalars(select(ForgetPayloadRow).where(ForgetPayloadRow.request_id == req.id))
        )
        assert {f.record_pk for f in held} == set(plain)
        (key_id,) = {crypto.envelope_key(f.payload) for f in held}
        key = s.get(DataKeyRow, key_id)
        assert key is not None and key.owner == owner
        assert key_id != record_key and s.get(DataKeyRow, record_key) is None
        for f in held:
            assert crypto.is_sealed(f.payload)
            assert vault.open_payload(s, f.payload) == plain[f.record_pk]
        quarantined = [f.payload for f in held]

    drain(svc)
    with svc.db.read() as s:
        req = s.get(DeletionRequestRow, req.id)
        assert req is not None and req.state == "completed"
        assert not s.scalars(select(ForgetPayloadRow)).all()
        assert s.get(DataKeyRow, key_id) is None
        assert not s.scalars(select(DataKeyRow).where(DataKeyRow.owner == owner)).all()
    for envelope in quarantined:
        _assert_destroyed(svc, envelope)


@pytest.mark.postgres
def test_concurrent_deletions_of_one_subject_destroy_every_key_its_erased_records_had(
    pg_service: Service,
) -> None:
    """Deletion A (ann in alpha) re-seals ann's beta records under a new key K2; deletion B
    of one of those records, accepted while A is in flight, matched the record before A
    committed, so it still believes the record is under the old key and destroys nothing:
    the copy of the record sealed under K2 (a dead tuple of ``records``, the WAL) stays
    readable although the record is erased."""
    svc = pg_service
    svc.import_dataset("alpha", _dataset("alpha", ALPHA))
    svc.import_dataset("beta", _dataset("beta", BETA))
    done: dict[str, Any] = {}
    with svc.db.write() as a:
        accept_deletion(
            a,
            DeletionInput(subject_id="ann", dataset="alpha"),
            secret=svc.settings.secret(),
            principal=svc.principal,
        )
        moved = a.scalar(select(RecordRow).where(RecordRow.record_id == "b-ann-0"))
        assert moved is not None and moved.payload is not None
        envelope = dict(moved.payload)  # what A's commit writes: b-ann-0 under K2

        def delete_b() -> None:
            done["view"] = svc.delete(DeletionInput(record_ids=("b-ann-0",)))[0]

        other = threading.Thread(target=delete_b)
        other.start()
        other.join(timeout=2)  # B waits for A's transaction (the audit chain's lock)
        assert other.is_alive()
    other.join(timeout=60)
    assert not other.is_alive() and done["view"]["n_records"] == 1
    with svc.db.read() as s:
        row = s.scalar(select(RecordRow).where(RecordRow.record_id == "b-ann-0"))
        assert row is not None and row.state == "erased" and row.payload is None
    _assert_destroyed(svc, envelope)
