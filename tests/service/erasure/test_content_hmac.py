"""Tombstones keep a keyed content hash: holding a text is not enough to confirm it was in
the data; migration 0007 keys the plain hashes stored before."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
import sqlalchemy as sa

from models.config import canonical_json
from service.core import Service
from service.db import schema
from service.db.engine import make_engine
from service.db.tables import RecordRow
from service.lineage.datasets import content_hmac, keyed_content
from tests.service.conftest import SECRET, synthetic_dataset


def _plain(text: str, label: int) -> str:
    return hashlib.sha256(canonical_json({"label": label, "text": text}).encode()).hexdigest()


def test_stored_hashes_are_keyed(service: Service) -> None:
    data = synthetic_dataset(6, n_subjects=1)
    service.import_dataset("synthetic", data)
    secret = service.settings.secret()
    with service.db.read() as s:
        stored = dict(s.execute(sa.select(RecordRow.record_id, RecordRow.content_hmac)).all())
    for r in data.records:
        assert r.text is not None
        plain = _plain(r.text, r.label)
        assert stored[r.record_id] == content_hmac(secret, {"text": r.text}, r.label)
        assert stored[r.record_id] == keyed_content(secret, plain)
        assert stored[r.record_id] != plain, "the plain sha256 would confirm the text"
    other = content_hmac(b"\x01" * 32, {"text": data.records[0].text}, data.records[0].label)
    assert other != stored[data.records[0].record_id], "another secret, another hash"


def test_migration_0007_keys_the_plain_hashes(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'old.db'}")
    try:
        schema.upgrade(engine, "0006")
        plain = _plain("an old snippet", 1)
        with engine.begin() as conn:
            conn.execute(
                sa.text(
                    "INSERT INTO datasets (id, name, kind, label_names, created_at) "
                    "VALUES (1, 'old', 'text', '[\"neg\", \"pos\"]', '2026-11-01 00:00:00')"
                )
            )
            conn.execute(
                sa.text(
                    "INSERT INTO records (id, dataset_id, record_id, content_sha256, label, "
                    "state) VALUES (1, 1, 'r1', :h, 1, 'erased')"
                ),
                {"h": plain},
            )
        with pytest.raises(RuntimeError, match="unlearn db upgrade"):
            schema.upgrade(engine)
        secret = bytes.fromhex(SECRET)
        schema.upgrade(engine, secret=secret)
        with engine.connect() as conn:
            value = conn.execute(sa.text("SELECT content_hmac FROM records")).scalar_one()
        assert value == keyed_content(secret, plain) != plain
        assert schema.at_head(engine)
    finally:
        engine.dispose()
