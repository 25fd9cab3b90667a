"""Datasets and records in the lineage DB: import (all or nothing) and read-back."""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session

from models.config import canonical_json
from models.data import Dataset, Record
from service.audit import log as audit
from service.db.tables import DatasetRow, RecordRow
from service.erasure import vault
from service.lineage.errors import Conflict, NotFound
from service.states import RecordState
from sharding import subject_key


def payload_of(record: Record) -> dict[str, Any]:
    if record.text is not None:
        return {"text": record.text}
    assert record.features is not None
    return {"features": [float(x) for x in record.features]}


def content_hmac(secret: bytes, payload: dict[str, Any], label: int) -> str:
    """A keyed hash of what the model reads (payload and label), never of the subject id:
    HMAC-SHA256 under the deployment secret of the content's sha256, so a tombstone proves
    which content went without letting anyone who holds a text confirm it was in the data
    (migration 0007 turns the plain hashes stored before into these)."""
    blob = canonical_json({"label": label, **payload})
    return keyed_content(secret, hashlib.sha256(blob.encode("utf-8")).hexdigest())


def keyed_content(secret: bytes, content_sha256: str) -> str:
    return hmac.new(
        secret, b"content\n" + content_sha256.encode("ascii"), hashlib.sha256
    ).hexdigest()


def store_dataset(session: Session, dataset: Dataset, name: str, secret: bytes) -> DatasetRow:
    """Insert a dataset and all its records; the raw subject ids are replaced by keyed hashes
    and every payload is sealed under its subject's data key (a record without a subject
    gets a key of its own), so no plaintext payload is ever written."""
    if session.scalar(select(DatasetRow.id).where(DatasetRow.name == name)) is not None:
        raise Conflict(f"dataset {name!r} already exists")
    row = DatasetRow(name=name, kind=dataset.kind, label_names=list(dataset.label_names))
    session.add(row)
    session.flush()
    subjects = [
        None if r.subject_id is None else subject_key(secret, r.subject_id) for r in dataset.records
    ]
    by_subject = vault.subject_keys(session, [k for k in subjects if k is not None])
    own = iter(vault.new_keys(session, [None] * sum(k is None for k in subjects)))
    values = []
    for r, subject in zip(dataset.records, subjects, strict=True):
        payload = payload_of(r)
        key_id = next(own) if subject is None else by_subject[subject]
        values.append(
            {
                "dataset_id": row.id,
                "record_id": r.record_id,
                "subject_key": subject,
                "content_hmac": content_hmac(secret, payload, r.label),
                "label": r.label,
                "payload": vault.seal(session, key_id, payload),
                "data_key_id": key_id,
                "state": RecordState.ACTIVE,
            }
        )
    for start in range(0, len(values), 5000):
        session.execute(insert(RecordRow), values[start : start + 5000])
    audit.append(
        session,
        "dataset.imported",
        {"dataset": name, "kind": row.kind, "n_records": len(values)},
    )
    return row


def get_dataset(session: Session, name: str) -> DatasetRow:
    row = session.scalar(select(DatasetRow).where(DatasetRow.name == name))
    if row is None:
        raise NotFound(f"no dataset named {name!r}")
    return row


@dataclass(frozen=True)
class DatasetSummary:
    name: str
    kind: str
    label_names: list[str]
    n_records: int
    n_erased: int


def summarize(session: Session, row: DatasetRow) -> DatasetSummary:
    query = (
        select(RecordRow.state, func.count())
        .where(RecordRow.dataset_id == row.id)
        .group_by(RecordRow.state)
    )
    counts: dict[str, int] = {state: n for state, n in session.execute(query)}
    return DatasetSummary(
        name=row.name,
        kind=row.kind,
        label_names=list(row.label_names),
        n_records=sum(counts.values()),
        n_erased=counts.get(RecordState.ERASED, 0),
    )
