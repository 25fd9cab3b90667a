"""Issue 13's acceptance test: after a deletion completes, no file the service controls holds
the erased records in readable form, and a backup taken before the deletion holds only
ciphertext that no longer opens.

SQLite: every byte of every file under ``UNLEARN_HOME`` (database, WAL, shm, activation
caches, checkpoints, keys) is searched. PostgreSQL: a ``pg_dump`` taken before the deletion,
and every heap page of every table after it (``pageinspect``)."""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, select, text

from models.data import Dataset, Record
from service.core import Service
from service.db.tables import DataKeyRow, DeletionRequestRow, RecordRow
from service.erasure import crypto, vault
from service.lineage.deletion import DeletionInput
from service.settings import Settings
from tests.service.api.conftest import drain
from tests.service.conftest import SECRET, SMALL, synthetic_dataset

MARK = "zebracorn"
ERASED_SUBJECT = "subject-2"


def _marked(n: int = 48, n_subjects: int = 4) -> Dataset:
    """The synthetic snippets, each with a marker word no other record has; the first
    ``3 * n_subjects`` records belong to ``subject-0..`` (three each)."""
    base = synthetic_dataset(n, n_subjects)
    records = []
    for i, r in enumerate(base.records):
        who = "" if r.subject_id is None else r.subject_id.replace("-", "")
        marked = f"{r.text} {MARK}{who}x{i:03d}"
        records.append(Record(r.record_id, r.subject_id, r.label, text=marked))
    return Dataset(name="marked", records=tuple(records), label_names=base.label_names)


DATA = _marked()
TEXTS = {r.record_id: str(r.text) for r in DATA.records}
ERASED_IDS = sorted(r.record_id for r in DATA.records if r.subject_id == ERASED_SUBJECT)


def _files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file())


def _found(blobs: Iterable[tuple[str, bytes]], needles: dict[str, bytes]) -> list[str]:
    """``where: what`` for every needle found in a blob."""
    return [f"{where}: {what}" for where, blob in blobs for what, n in needles.items() if n in blob]


def _text_needles(record_ids: Iterable[str]) -> dict[str, bytes]:
    needles = {f"text of {r}": TEXTS[r].encode() for r in record_ids}
    needles[f"the marker {MARK!r}"] = MARK.encode()
    return needles


def _scan_home(home: Path, needles: dict[str, bytes]) -> list[str]:
    return _found(((str(p.relative_to(home)), p.read_bytes()) for p in _files(home)), needles)


def _erased_keys(svc: Service) -> dict[str, bytes]:
    """The data keys the erased subject's records are sealed under (id: wrapped bytes)."""
    with svc.db.read() as s:
        ids = set(
            s.scalars(select(RecordRow.data_key_id).where(RecordRow.record_id.in_(ERASED_IDS)))
        )
        assert len(ids) == 1 and None not in ids  # one key per subject
        return {
            k: bytes(w) for k, w in s.execute(select(DataKeyRow.id, DataKeyRow.wrapped)) if k in ids
        }


def _delete_and_complete(svc: Service) -> dict[str, Any]:
    view, _, _ = svc.delete(DeletionInput(subject_id=ERASED_SUBJECT), "erase-subject-2")
    assert view["state"] == "effective" and view["n_records"] == 3
    drain(svc)
    final, replayed, _ = svc.delete(DeletionInput(subject_id=ERASED_SUBJECT), "erase-subject-2")
    assert replayed and final["state"] == "completed", final["timeline"]
    with svc.db.read() as s:
        req = s.scalar(select(DeletionRequestRow).where(DeletionRequestRow.public_id == view["id"]))
        assert req is not None and req.data_keys_destroyed == 1
    return final


def _assert_shredded(svc: Service, envelopes: dict[str, Any], kept: dict[str, Any]) -> None:
    """``envelopes`` (the erased records', from a backup) hold ciphertext only and do not
    open with the live key store; ``kept`` (records still active, same backup) still do,
    so it is the erasure and not the backup that makes the difference."""
    assert set(envelopes) == set(ERASED_IDS)
    with svc.db.read() as s:
        for rid, envelope in envelopes.items():
            assert crypto.is_sealed(envelope), rid
            blob = json.dumps(envelope)
            assert TEXTS[rid] not in blob and MARK not in blob
            with pytest.raises(vault.KeyDestroyed):
                vault.open_payload(s, envelope)
        assert kept
        for rid, envelope in kept.items():
            assert vault.open_payload(s, envelope) == {"text": TEXTS[rid]}


def test_sqlite_nothing_under_unlearn_home_holds_erased_text_and_backups_do_not_open(
    tmp_path: Path,
) -> None:
    home = tmp_path / "home"
    svc = Service.open(
        Settings(home=home, database_url=f"sqlite:///{home / 'unlearn.db'}", secret_hex=SECRET)
    )
    try:
        svc.upgrade_schema()
        svc.import_dataset("marked", DATA)
        svc.create_model("marked", SMALL)
        drain(svc)
        files = {str(p.relative_to(home)) for p in _files(home)}
        assert "unlearn.db" in files and "keys/master.key" in files
        assert any(f.endswith(".f32") for f in files), files  # the activation caches
        assert any(f.startswith("checkpoints/") for f in files), files

        # (a) Before the deletion: no record's text in any file.
        assert _scan_home(home, _text_needles(TEXTS)) == []
        erased_keys = _erased_keys(svc)
        with svc.db.read() as s:
            live = {
                r.record_id: r.payload
                for r in s.scalars(select(RecordRow).where(RecordRow.record_id.in_(ERASED_IDS)))
            }

        backup = tmp_path / "backup"
        shutil.copytree(home, backup)  # the pre-deletion backup: every file, WAL included

        _delete_and_complete(svc)

        # (b) After completion: none of the erased texts, and none of the destroyed data
        # key's wrapped bytes (secure_delete; the WAL truncated by the scrub).
        needles = _text_needles(ERASED_IDS)
        needles.update({f"wrapped data key {k}": w for k, w in erased_keys.items()})
        assert _scan_home(home, needles) == []
        scan = svc.verify_erasure()  # the service's own scan agrees
        assert scan.ok and scan.erased_records == len(ERASED_IDS), scan
        with svc.db.read() as s:
            assert not s.scalars(select(DataKeyRow).where(DataKeyRow.id.in_(erased_keys))).all()

        # (c) The backup's database holds the erased records' envelopes, ciphertext only,
        # and they do not open with the current key store. (The backup still holds the
        # erased subject's wrapped data key too; with the KEK, which by default lives in
        # UNLEARN_HOME/keys/master.key and so is in this very backup, it opens: the README
        # says to keep the KEK out of the database's backups.)
        conn = sqlite3.connect(f"file:{backup / 'unlearn.db'}?mode=ro", uri=True)
        try:
            rows = dict(conn.execute("SELECT record_id, payload FROM records").fetchall())
        finally:
            conn.close()
        assert set(rows) == set(TEXTS)
        for rid, raw in rows.items():
            assert raw is not None and TEXTS[rid] not in raw and MARK not in raw
        envelopes = {rid: json.loads(rows[rid]) for rid in ERASED_IDS}
        assert envelopes == live  # the backup is from before the deletion
        kept = {rid: json.loads(rows[rid]) for rid in ("rec-0000", "rec-0030")}
        _assert_shredded(svc, envelopes, kept)
    finally:
        svc.db.dispose()


def _libpq(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://", 1)


def _copy_rows(dump: str, table: str) -> list[dict[str, str | None]]:
    """The rows of ``table`` in a plain-format ``pg_dump`` (COPY text format)."""
    lines = dump.splitlines()
    (start,) = [i for i, line in enumerate(lines) if line.startswith(f"COPY public.{table} (")]
    columns = lines[start].split("(", 1)[1].split(")", 1)[0].split(", ")
    out = []
    for line in lines[start + 1 :]:
        if line == "\\.":
            break
        values = [None if v == "\\N" else v.replace("\\\\", "\\") for v in line.split("\t")]
        out.append(dict(zip(columns, values, strict=True)))
    return out


def _heap_pages(url: str) -> list[tuple[str, bytes]]:
    """Every page of every table of the database (and of their TOAST tables), raw."""
    engine = create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.execute(text("CREATE EXTENSION IF NOT EXISTS pageinspect"))
            tables = list(
                conn.scalars(
                    text(
                        "SELECT c.oid::regclass::text FROM pg_class c "
                        "WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'm') "
                        "UNION SELECT t.oid::regclass::text FROM pg_class c "
                        "JOIN pg_class t ON t.oid = c.reltoastrelid "
                        "WHERE c.relnamespace = 'public'::regnamespace"
                    )
                )
            )
            assert {"records", "data_keys", "audit_events"} <= set(tables), tables
            pages = []
            for table in tables:
                n = conn.scalar(text("SELECT pg_relation_size(:t) / 8192"), {"t": table})
                for blk in range(int(n or 0)):
                    page = conn.scalar(text("SELECT get_raw_page(:t, :b)"), {"t": table, "b": blk})
                    pages.append((f"{table} block {blk}", bytes(page)))
            return pages
    finally:
        engine.dispose()


def _no_open_transactions(svc: Service) -> None:
    """A transaction left open would hold back VACUUM's horizon: the dead key rows would
    stay in the heap. The test keeps none open while the service works."""
    with svc.db.read() as s:
        idle = s.scalar(
            text(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND state LIKE 'idle in transaction%' AND pid <> pg_backend_pid()"
            )
        )
    assert idle == 0


@pytest.mark.postgres
def test_postgres_dump_before_deletion_does_not_open_and_heap_holds_no_erased_data(
    pg_service: Service, tmp_path_factory: pytest.TempPathFactory
) -> None:
    svc = pg_service
    url = svc.settings.database_url
    svc.import_dataset("marked", DATA)
    svc.create_model("marked", SMALL)
    drain(svc)
    erased_keys = _erased_keys(svc)

    dump_file = tmp_path_factory.mktemp("dump") / "before.sql"
    subprocess.run(
        ["pg_dump", "--no-owner", "--file", str(dump_file), _libpq(url)],
        check=True,
        capture_output=True,
        timeout=120,
    )
    dump = dump_file.read_text()
    _no_open_transactions(svc)
    _delete_and_complete(svc)
    _no_open_transactions(svc)

    # The dump: no plaintext of any record; the erased records' envelopes do not open.
    assert _found([("dump", dump.encode())], _text_needles(TEXTS)) == []
    rows = {r["record_id"]: r["payload"] for r in _copy_rows(dump, "records")}
    assert set(rows) == set(TEXTS) and all(v is not None for v in rows.values())
    envelopes = {rid: json.loads(str(rows[rid])) for rid in ERASED_IDS}
    kept = {rid: json.loads(str(rows[rid])) for rid in ("rec-0000", "rec-0030")}
    _assert_shredded(svc, envelopes, kept)

    # Every heap page, after the scrub: none of the erased texts (no plaintext of any
    # record, in fact) and no copy of a destroyed data key.
    svc.db.dispose()  # close every session of the service before reading the pages
    needles = _text_needles(TEXTS)
    needles.update({f"wrapped data key {k}": w for k, w in erased_keys.items()})
    assert _found(_heap_pages(url), needles) == []
    scan = svc.verify_erasure()  # the service's own scan, raw pages included, agrees
    assert scan.ok and scan.skipped == [] and scan.erased_records == len(ERASED_IDS), scan


@pytest.mark.postgres
def test_postgres_vacuum_leaves_no_copy_of_a_destroyed_key_in_the_heap(
    pg_service: Service,
) -> None:
    """The last record imported has the last data key inserted: the lowest tuple on the
    last page of ``data_keys``. Compaction after VACUUM moves no live tuple over it."""
    svc = pg_service
    svc.import_dataset("marked", DATA)
    last = DATA.records[-1]
    assert last.subject_id is None
    with svc.db.read() as s:
        key_id = s.scalar(
            select(RecordRow.data_key_id).where(RecordRow.record_id == last.record_id)
        )
        key = s.get(DataKeyRow, key_id)
        assert key is not None
        wrapped = bytes(key.wrapped)
        # (page, line pointer) of every key row; a tuple's place in the page goes down
        # as its line pointer goes up.
        where = {
            k: tuple(int(float(x)) for x in str(c).strip("()").split(","))
            for k, c in s.execute(text("SELECT id, ctid::text FROM data_keys"))
        }
        page, lp = where[key_id]
        on_page = [p_lp[1] for p_lp in where.values() if p_lp[0] == page]
        assert lp == max(on_page) and len(on_page) > 1  # lowest on its page, not alone
    view, _, _ = svc.delete(DeletionInput(record_ids=(last.record_id,)))
    assert view["state"] == "completed"
    _no_open_transactions(svc)
    svc.db.dispose()
    found = _found(_heap_pages(svc.settings.database_url), {"wrapped data key": wrapped})
    assert found == []
