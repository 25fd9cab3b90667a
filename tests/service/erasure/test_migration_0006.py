"""Migration 0006 seals the payloads a 0005 database stored in clear: one data key per data
subject (across datasets), one per record without a subject, one per request for the
quarantined forget payloads; without the KEK it refuses, and leaves the database as it was."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy import JSON, Engine, MetaData, inspect, null, select, text

from service.core import Service
from service.db import schema
from service.db.engine import Database, make_engine
from service.db.tables import DataKeyRow, RecordRow
from service.erasure import crypto, vault
from service.erasure.vault import Vault
from service.settings import Settings
from tests.service.conftest import SECRET

KEK = bytes(range(32))
NOW = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)
ANN, BOB = "a" * 64, "b" * 64  # subject keys (keyed hashes, as 0005 stored them)
MARK = "quokkamarker"

# record pk: (dataset id, record id, subject key, payload; None: erased before the upgrade)
RECORDS: dict[int, tuple[int, str, str | None, dict[str, Any] | None]] = {
    1: (1, "a-0", ANN, {"text": f"ann wrote {MARK}-one"}),
    2: (1, "a-1", ANN, {"text": f"ann wrote {MARK}-two"}),
    3: (1, "a-2", BOB, {"text": f"bob wrote {MARK}-three"}),
    4: (1, "a-3", None, {"text": f"nobody wrote {MARK}-four"}),
    5: (1, "a-4", None, {"text": f"nobody wrote {MARK}-five"}),
    6: (1, "a-5", BOB, None),
    7: (2, "f-0", ANN, {"features": [0.125, 0.5, 1.0]}),
    8: (2, "f-1", None, {"features": [0.25, 0.75, 0.0]}),
    9: (1, "a-6", None, None),
    10: (2, "f-2", ANN, None),
}
N_PAYLOADS = sum(p is not None for _, _, _, p in RECORDS.values())
# Quarantined for approximate models: request 1 erased records 6 and 9, request 2 record 10.
FORGET: dict[tuple[int, int], dict[str, Any]] = {
    (1, 6): {"text": f"bob wrote {MARK}-six"},
    (1, 9): {"text": f"nobody wrote {MARK}-nine"},
    (2, 10): {"features": [1.0, 0.0, 0.5]},
}

BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
BACKENDS_WITH_REFERENCES = [
    "sqlite",
    pytest.param("postgres", marks=pytest.mark.postgres),
]


def _url(request: pytest.FixtureRequest, backend: str, tmp_path: Path) -> str:
    if backend == "postgres":
        return str(request.getfixturevalue("pg_url"))
    return f"sqlite:///{tmp_path / 'unlearn.db'}"


@contextmanager
def _at_0005(url: str, **fill: bool) -> Iterator[Engine]:
    """A database at revision 0005 holding plaintext payloads, as 0005 stored them."""
    engine = make_engine(url)
    try:
        schema.upgrade(engine, "0005")
        _fill(engine, **fill)
        yield engine
    finally:
        engine.dispose()


def _fill(
    engine: Engine, *, payloads: bool = True, forget: bool = False, model: bool = False
) -> None:
    """Rows written with SQLAlchemy Core into the 0005 tables (reflected)."""
    meta = MetaData()
    meta.reflect(engine)
    t = meta.tables
    with engine.begin() as conn:
        conn.execute(
            t["datasets"].insert(),
            [
                {"id": i, "name": n, "kind": k, "label_names": ["0", "1"], "created_at": NOW}
                for i, n, k in ((1, "alpha", "text"), (2, "digits", "features"))
            ],
        )
        conn.execute(
            t["deletion_requests"].insert(),
            [
                {
                    "id": i,
                    "public_id": f"00000000-0000-0000-0000-00000000000{i}",
                    "body_sha256": "0" * 64,
                    "state": "unlearning",
                    "n_records": 1,
                    "cut": [],
                    "received_at": NOW,
                    "due_at": NOW,
                }
                for i in (1, 2)
            ],
        )
        rows = []
        for pk, (ds, rid, subject, payload) in RECORDS.items():
            kept = payloads and payload is not None
            rows.append(
                {
                    "id": pk,
                    "dataset_id": ds,
                    "record_id": rid,
                    "subject_key": subject,
                    "content_sha256": "c" * 64,
                    "label": 0,
                    # SQL NULL once erased (the ORM's JSON(none_as_null=True)), not JSON null
                    "payload": payload if kept else null(),
                    "state": "active" if kept else "erased",
                    "erased_by": None if kept else 1 + pk % 2,
                }
            )
        conn.execute(t["records"].insert(), rows)
        if forget:
            conn.execute(
                t["forget_payloads"].insert(),
                [
                    {"request_id": req, "record_pk": pk, "label": 0, "payload": payload}
                    for (req, pk), payload in FORGET.items()
                ],
            )
        if model:
            conn.execute(
                t["models"].insert(),
                [
                    {
                        "id": 1,
                        "dataset_id": 1,
                        "status": "ready",
                        "n_shards": 1,
                        "budget": 1,
                        "selection": "none",
                        "config": {},
                        "config_hash": "0" * 64,
                        "routing_version": 0,
                        "created_at": NOW,
                        "updated_at": NOW,
                        "kind": "s3t",
                    }
                ],
            )
            conn.execute(
                t["placements"].insert(),
                [
                    {"model_id": 1, "record_pk": pk, "shard": 0, "slice": 0}
                    for pk, (ds, _, _, _) in RECORDS.items()
                    if ds == 1
                ],
            )


# The tables as revision 0006 leaves them (the ORM follows head, which may be further on).
_RECORDS = sa.table(
    "records", sa.column("id"), sa.column("payload", JSON), sa.column("data_key_id")
)
_FORGET = sa.table(
    "forget_payloads", sa.column("request_id"), sa.column("record_pk"), sa.column("payload", JSON)
)


def _upgrade_to_0006(engine: Engine, vault: object | None = None) -> None:
    schema.upgrade(engine, "0006", vault=vault)
    assert schema.current_revision(engine) == "0006"


def _raw_payloads(engine: Engine) -> list[str]:
    """The payload columns as the database stores them (text)."""
    with engine.connect() as conn:
        return [
            str(v)
            for table in ("records", "forget_payloads")
            for v in conn.scalars(
                text(f"SELECT CAST(payload AS TEXT) FROM {table} WHERE payload IS NOT NULL")
            )
        ]


def _vault_db(engine: Engine, kek: bytes = KEK) -> Database:
    db = Database(engine)
    vault.install(db, Vault(kek))
    return db


def _assert_records_sealed(engine: Engine) -> dict[str, DataKeyRow]:
    """Every record payload sealed and opening to what 0005 held; returns the data keys."""
    with _vault_db(engine).read() as s:
        rows = {pk: (payload, key) for pk, payload, key in s.execute(select(_RECORDS))}
        keys = {k.id: k for k in s.scalars(select(DataKeyRow))}
        assert set(rows) == set(RECORDS)
        for pk, (_, _, _, payload) in RECORDS.items():
            sealed, key_id = rows[pk]
            if payload is None:
                assert sealed is None and key_id is None
                continue
            assert crypto.is_sealed(sealed) and key_id == crypto.envelope_key(sealed)
            assert vault.open_payload(s, sealed) == payload
        # One key per subject, across datasets; one per record without a subject.
        ann = rows[1][1]
        assert {rows[pk][1] for pk in (1, 2, 7)} == {ann}
        assert keys[ann].owner == ANN and keys[rows[3][1]].owner == BOB
        own = {rows[pk][1] for pk in (4, 5, 8)}
        assert len(own) == 3 and all(keys[k].owner is None for k in own)
        assert all(k.kek_id == Vault(KEK).kek_id for k in keys.values())
        return keys


@pytest.mark.parametrize("backend", BACKENDS)
def test_upgrade_seals_every_record_payload_under_its_subjects_key(
    backend: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    with _at_0005(_url(request, backend, tmp_path)) as engine:
        assert sum(MARK in v for v in _raw_payloads(engine)) == 5  # in clear at 0005
        _upgrade_to_0006(engine, Vault(KEK))
        raw = _raw_payloads(engine)
        assert len(raw) == N_PAYLOADS
        assert not any(MARK in v or "wrote" in v or "0.125" in v for v in raw)
        keys = _assert_records_sealed(engine)
        assert len(keys) == 2 + 3  # ann, bob; three records without a subject
        # Wrapped by this KEK: another one opens nothing.
        with _vault_db(engine, bytes(32)).read() as s:
            sealed = s.scalar(select(_RECORDS.c.payload).where(_RECORDS.c.id == 1))
            assert sealed is not None and crypto.is_sealed(sealed)
            with pytest.raises(crypto.SealError):
                vault.open_payload(s, sealed)


@pytest.mark.parametrize("backend", BACKENDS_WITH_REFERENCES)
def test_upgrade_seals_forget_payloads_under_one_key_per_request(
    backend: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    with _at_0005(_url(request, backend, tmp_path), forget=True) as engine:
        _upgrade_to_0006(engine, Vault(KEK))
        assert not any(MARK in v for v in _raw_payloads(engine))
        keys = _assert_records_sealed(engine)
        with _vault_db(engine).read() as s:
            forget = s.execute(select(_FORGET)).all()
            assert len(forget) == len(FORGET)
            by_request: dict[int, set[str]] = {}
            for request_id, record_pk, sealed in forget:
                assert crypto.is_sealed(sealed)
                by_request.setdefault(request_id, set()).add(crypto.envelope_key(sealed))
                assert vault.open_payload(s, sealed) == FORGET[(request_id, record_pk)]
        assert set(by_request) == {1, 2}
        for request_id, (key_id,) in by_request.items():
            assert keys[key_id].owner == vault.quarantine_owner(request_id)
        assert len(keys) == 2 + 3 + 2


@pytest.mark.parametrize("backend", BACKENDS_WITH_REFERENCES)
def test_upgrade_of_a_database_where_a_model_holds_the_records(
    backend: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    with _at_0005(_url(request, backend, tmp_path), model=True) as engine:
        _upgrade_to_0006(engine, Vault(KEK))
        _assert_records_sealed(engine)
        with engine.connect() as conn:
            assert conn.scalar(text("SELECT count(*) FROM placements")) == 7


@pytest.mark.parametrize("backend", BACKENDS)
def test_upgrade_without_a_vault_refuses_and_leaves_the_database_at_0005(
    backend: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    with _at_0005(_url(request, backend, tmp_path)) as engine:
        before = sorted(_raw_payloads(engine))
        with pytest.raises(RuntimeError, match=r"0006.*run `unlearn db upgrade`"):
            schema.upgrade(engine, "0006")
        assert schema.current_revision(engine) == "0005"
        assert "data_keys" not in inspect(engine).get_table_names()
        assert "data_key_id" not in {c["name"] for c in inspect(engine).get_columns("records")}
        assert sorted(_raw_payloads(engine)) == before
        with pytest.raises(RuntimeError, match=r"0006.*run `unlearn db upgrade`"):
            schema.upgrade(engine, vault=object())  # to head, with what is not a vault
        assert schema.current_revision(engine) == "0005"
        assert sorted(_raw_payloads(engine)) == before
        _upgrade_to_0006(engine, Vault(KEK))  # the right way still works afterwards
        _assert_records_sealed(engine)


@pytest.mark.parametrize("backend", BACKENDS)
def test_an_empty_database_upgrades_without_a_vault(
    backend: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    engine = make_engine(_url(request, backend, tmp_path))
    try:
        schema.upgrade(engine)
        assert schema.at_head(engine)
        assert "data_keys" in inspect(engine).get_table_names()
    finally:
        engine.dispose()


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_database_holding_only_erased_records_upgrades_without_a_vault(
    backend: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    with _at_0005(_url(request, backend, tmp_path), payloads=False) as engine:
        _upgrade_to_0006(engine)
        with engine.connect() as conn:
            assert conn.scalar(text("SELECT count(*) FROM data_keys")) == 0
            assert conn.scalar(text("SELECT count(*) FROM records")) == len(RECORDS)


def _service_at_0005(home: Path) -> Service:
    url = f"sqlite:///{home / 'unlearn.db'}"
    with _at_0005(url):
        pass
    return Service.open(Settings(home=home, database_url=url, secret_hex=SECRET))


def test_service_upgrade_schema_seals_with_the_settings_kek(tmp_path: Path) -> None:
    """``Service.upgrade_schema`` (what ``unlearn db upgrade`` runs) hands in the settings'
    KEK (generated into ``$UNLEARN_HOME/keys/master.key``); the service then opens the
    payloads through its vault."""
    home = tmp_path / "home"
    svc = _service_at_0005(home)
    try:
        svc.upgrade_schema()
        assert svc.schema_at_head()
        assert (home / "keys" / "master.key").exists()
        with svc.db.read() as s:
            for pk, (_, _, _, payload) in RECORDS.items():
                row = s.get(RecordRow, pk)
                assert row is not None
                if payload is None:
                    assert row.payload is None
                else:
                    assert row.payload is not None and crypto.is_sealed(row.payload)
                    assert vault.open_payload(s, row.payload) == payload
    finally:
        svc.db.dispose()


def test_sqlite_files_hold_no_plaintext_once_upgrade_schema_returns(tmp_path: Path) -> None:
    """The embedded CLI migrates on the fly and then goes on working (``open_service``)."""
    home = tmp_path / "home"
    svc = _service_at_0005(home)
    try:
        assert MARK.encode() in (home / "unlearn.db").read_bytes()
        svc.upgrade_schema()
        found = [
            str(p.relative_to(home))
            for p in sorted(home.rglob("*"))
            if p.is_file() and MARK.encode() in p.read_bytes()
        ]
        assert found == []
    finally:
        svc.db.dispose()
