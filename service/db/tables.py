"""The lineage schema: from every training record to every checkpoint it shaped.

A record's place in a model (shard, slice) lives in ``placements`` because it depends on the
model's layout. Erasure is versioned per model: a deletion that touches a model bumps its
``routing_version`` to ``v`` and stamps ``placements.erased_version = v`` on the erased
records, and every checkpoint carries the ``data_version`` whose active records it was trained
on. So record ``r`` shaped checkpoint ``c`` exactly when ``r`` sits in one of ``c``'s slices and
``r`` was still active at ``c.data_version`` (``erased_version`` null or greater).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from service.db.base import Base, UTCDateTime, utcnow

SHA = String(64)


class DatasetRow(Base):
    __tablename__ = "datasets"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    kind: Mapped[str] = mapped_column(String(16))
    label_names: Mapped[list[str]] = mapped_column(JSON)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class DataKeyRow(Base):
    """A data key, wrapped by the key-encryption key: one per data subject (``owner`` is the
    subject key), one per record without a subject (``owner`` null), one per request whose
    forget payloads wait in quarantine (``owner`` is ``request:<id>``). Erasure deletes the
    row; the database overwrites deleted content (SQLite ``secure_delete``; PostgreSQL: the
    table is vacuumed after each erasure)."""

    __tablename__ = "data_keys"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    owner: Mapped[str | None] = mapped_column(String(80), index=True)
    kek_id: Mapped[str] = mapped_column(String(16))
    wrapped: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class DestroyedKeyRow(Base):
    """What is left of a destroyed data key: when, for which request, and the probe
    (``service.erasure.probes.key_probe``) a scan finds a stale copy of its wrapped bytes by."""

    __tablename__ = "destroyed_keys"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    request_id: Mapped[int | None] = mapped_column(ForeignKey("deletion_requests.id"), index=True)
    destroyed_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    anchor: Mapped[str] = mapped_column(String(16))
    wrapped_sha256: Mapped[str] = mapped_column(SHA)


class RecordRow(Base):
    """One training record. After erasure only the tombstone stays: ids, hashes and label."""

    __tablename__ = "records"
    __table_args__ = (UniqueConstraint("dataset_id", "record_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    dataset_id: Mapped[int] = mapped_column(ForeignKey("datasets.id"), index=True)
    record_id: Mapped[str] = mapped_column(String(200), index=True)
    subject_key: Mapped[str | None] = mapped_column(SHA, index=True)
    # HMAC-SHA256 of the content under the deployment secret (``lineage.datasets``).
    content_hmac: Mapped[str] = mapped_column(SHA)
    label: Mapped[int] = mapped_column(Integer)
    # The sealed envelope (``service.erasure.crypto``), never plaintext; null once erased.
    payload: Mapped[dict[str, Any] | None] = mapped_column(JSON(none_as_null=True))
    # The data key the payload is sealed under (the subject's, or the record's own); null
    # once erased: the key itself is destroyed in the erasing transaction.
    data_key_id: Mapped[str | None] = mapped_column(ForeignKey("data_keys.id"), index=True)
    state: Mapped[str] = mapped_column(String(16), default="active")
    # Once erased: keyed digests of the text's shingles (``service.erasure.probes``), which
    # ``unlearn verify --erasure`` looks for; null while active or for a feature vector.
    probes: Mapped[dict[str, Any] | None] = mapped_column(JSON(none_as_null=True))
    erased_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    erased_by: Mapped[int | None] = mapped_column(ForeignKey("deletion_requests.id"))


class ModelRow(Base):
    __tablename__ = "models"

    id: Mapped[int] = mapped_column(primary_key=True)
    dataset_id: Mapped[int] = mapped_column(ForeignKey("datasets.id"), index=True)
    # "s3t" (exact: shards, slices, sequences) or "approximate" (one network trained on all
    # the data, unlearned by ``method``; see ModelVersionRow).
    kind: Mapped[str] = mapped_column(String(16), default="s3t", server_default=text("'s3t'"))
    family: Mapped[str | None] = mapped_column(String(32))
    method: Mapped[str | None] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16), default="pending")
    error: Mapped[str | None] = mapped_column(Text)
    n_shards: Mapped[int] = mapped_column(Integer)
    budget: Mapped[int] = mapped_column(Integer)
    selection: Mapped[str] = mapped_column(String(16))
    config: Mapped[dict[str, Any]] = mapped_column(JSON)
    config_hash: Mapped[str] = mapped_column(SHA)
    backbone_sha256: Mapped[str | None] = mapped_column(SHA)
    routing_version: Mapped[int] = mapped_column(Integer, default=0)
    # Held-out records scored after training and after every retrain (audit report).
    eval_dataset_id: Mapped[int | None] = mapped_column(ForeignKey("datasets.id"))
    # Who registered it (``Principal.ref``, e.g. ``key:<key id>``): the per-key model cap.
    created_by: Mapped[str | None] = mapped_column(String(80), index=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class PlacementRow(Base):
    __tablename__ = "placements"
    __table_args__ = (Index("ix_placements_slice", "model_id", "shard", "slice"),)

    model_id: Mapped[int] = mapped_column(ForeignKey("models.id"), primary_key=True)
    record_pk: Mapped[int] = mapped_column(ForeignKey("records.id"), primary_key=True, index=True)
    shard: Mapped[int] = mapped_column(Integer)
    slice: Mapped[int] = mapped_column(Integer)
    erased_version: Mapped[int | None] = mapped_column(Integer)


class SliceRow(Base):
    """A slice of a shard, with the digest of its records when the model was trained."""

    __tablename__ = "slices"

    model_id: Mapped[int] = mapped_column(ForeignKey("models.id"), primary_key=True)
    shard: Mapped[int] = mapped_column(Integer, primary_key=True)
    slice: Mapped[int] = mapped_column(Integer, primary_key=True)
    n_records: Mapped[int] = mapped_column(Integer)
    n_erased: Mapped[int] = mapped_column(Integer, default=0)


class SequenceRow(Base):
    """One slice order of a shard; steps ``1..valid_depth`` hold no erased record."""

    __tablename__ = "sequences"
    __table_args__ = (UniqueConstraint("model_id", "shard", "position"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    model_id: Mapped[int] = mapped_column(ForeignKey("models.id"), index=True)
    shard: Mapped[int] = mapped_column(Integer)
    position: Mapped[int] = mapped_column(Integer)
    permutation: Mapped[list[int]] = mapped_column(JSON)
    valid_depth: Mapped[int] = mapped_column(Integer, default=0)


class CheckpointRow(Base):
    """Every checkpoint ever trained (cut ones stay as lineage, state ``retired``)."""

    __tablename__ = "checkpoints"
    __table_args__ = (UniqueConstraint("model_id", "sha256"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    model_id: Mapped[int] = mapped_column(ForeignKey("models.id"), index=True)
    sha256: Mapped[str] = mapped_column(SHA)
    shard: Mapped[int] = mapped_column(Integer)
    step: Mapped[int] = mapped_column(Integer)
    slice_ids: Mapped[list[int]] = mapped_column(JSON)
    records_digest: Mapped[str] = mapped_column(SHA)
    n_records: Mapped[int] = mapped_column(Integer)
    data_version: Mapped[int] = mapped_column(Integer)
    parent_sha256: Mapped[str | None] = mapped_column(SHA)
    state: Mapped[str] = mapped_column(String(16), default="live")
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    retired_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)


class SequenceStepRow(Base):
    __tablename__ = "sequence_steps"

    sequence_id: Mapped[int] = mapped_column(ForeignKey("sequences.id"), primary_key=True)
    step: Mapped[int] = mapped_column(Integer, primary_key=True)
    checkpoint_id: Mapped[int] = mapped_column(ForeignKey("checkpoints.id"), index=True)


class RoutingRow(Base):
    """What a shard serves: ``depth`` 0 means the shard is dead (no clean step left)."""

    __tablename__ = "routing"

    model_id: Mapped[int] = mapped_column(ForeignKey("models.id"), primary_key=True)
    shard: Mapped[int] = mapped_column(Integer, primary_key=True)
    sequence_id: Mapped[int | None] = mapped_column(ForeignKey("sequences.id"))
    depth: Mapped[int] = mapped_column(Integer, default=0)


class DeletionRequestRow(Base):
    __tablename__ = "deletion_requests"

    id: Mapped[int] = mapped_column(primary_key=True)
    public_id: Mapped[str] = mapped_column(String(36), unique=True)
    idempotency_key: Mapped[str | None] = mapped_column(String(200), unique=True)
    body_sha256: Mapped[str] = mapped_column(SHA)
    subject_key: Mapped[str | None] = mapped_column(SHA)
    dataset: Mapped[str | None] = mapped_column(String(200))
    record_ids: Mapped[list[str] | None] = mapped_column(JSON)
    # The record ids it named that matched no record (null: none, or filed before 0009).
    not_found: Mapped[list[str] | None] = mapped_column(JSON(none_as_null=True))
    reason: Mapped[str | None] = mapped_column(Text)
    state: Mapped[str] = mapped_column(String(16), index=True)
    outcome: Mapped[str | None] = mapped_column(String(32))
    n_records: Mapped[int] = mapped_column(Integer, default=0)
    cut: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    received_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, index=True)
    effective_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    completed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    due_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    # The principal that filed it (``Principal.actor()``: type, key id, name; never a token).
    requested_by: Mapped[dict[str, str] | None] = mapped_column(JSON(none_as_null=True))
    # How many data keys the accepting transaction destroyed (crypto-shredding).
    data_keys_destroyed: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # SHA-256 of the data subject's status token (the token itself is shown once).
    status_token_sha256: Mapped[str | None] = mapped_column(SHA, unique=True)


class DeletionEventRow(Base):
    """The request's state timeline, one row per transition."""

    __tablename__ = "deletion_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    request_id: Mapped[int] = mapped_column(ForeignKey("deletion_requests.id"), index=True)
    state: Mapped[str] = mapped_column(String(16))
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    detail: Mapped[dict[str, Any] | None] = mapped_column(JSON)


class JobRow(Base):
    """Background work; the DB is the truth. ``kind`` (``service.states.JobKind``): ``train``
    an S3T model, ``retrain`` one of its cut sequences, ``fit`` an approximate model's first
    version, ``unlearn`` a request's records from an approximate model, ``purge`` the erased
    rows of an S3T model's activation caches. Created only in ``service.jobs.create``.

    ``enqueued_at`` null means the broker has not been told yet (the outbox); ``key`` makes a
    job idempotent, e.g. a retrain's names the sequence, the cut step and the erased-record
    set it cleans up.
    """

    __tablename__ = "jobs"

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    key: Mapped[str] = mapped_column(String(128), unique=True)
    model_id: Mapped[int] = mapped_column(ForeignKey("models.id"), index=True)
    sequence_id: Mapped[int | None] = mapped_column(ForeignKey("sequences.id"), index=True)
    from_step: Mapped[int | None] = mapped_column(Integer)
    state: Mapped[str] = mapped_column(String(16), default="queued", index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    progress_done: Mapped[int] = mapped_column(Integer, default=0)
    progress_total: Mapped[int] = mapped_column(Integer, default=0)
    superseded_by: Mapped[int | None] = mapped_column(ForeignKey("jobs.id"))
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    enqueued_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    started_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    heartbeat_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    # What the finished job proved, e.g. a retrain's from-scratch hash comparison.
    evidence: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    # What an ``unlearn`` job runs: method name and hyperparameter overrides.
    params: Mapped[dict[str, Any] | None] = mapped_column(JSON)


class DeletionJobRow(Base):
    """Which jobs a deletion request waits for (merged requests share jobs)."""

    __tablename__ = "deletion_jobs"

    request_id: Mapped[int] = mapped_column(ForeignKey("deletion_requests.id"), primary_key=True)
    job_id: Mapped[int] = mapped_column(ForeignKey("jobs.id"), primary_key=True, index=True)


class AuditEventRow(Base):
    """One link of the audit chain (append-only: the database rejects UPDATE and DELETE).

    ``id`` is the physical insertion order; ``seq`` the position the hash covers, so a
    reordering shows up as a mismatch between the two."""

    __tablename__ = "audit_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    seq: Mapped[int] = mapped_column(Integer, unique=True)
    at: Mapped[str] = mapped_column(String(40))
    kind: Mapped[str] = mapped_column(String(40), index=True)
    data: Mapped[dict[str, Any]] = mapped_column(JSON)
    prev_hash: Mapped[str] = mapped_column(SHA)
    hash: Mapped[str] = mapped_column(SHA, unique=True)


class CertificateRow(Base):
    """The signed deletion certificate of a completed request (append-only, like the chain).

    ``document`` is the exact canonical JSON text that was signed and is served."""

    __tablename__ = "certificates"

    id: Mapped[int] = mapped_column(primary_key=True)
    request_id: Mapped[int] = mapped_column(ForeignKey("deletion_requests.id"), unique=True)
    key_id: Mapped[str] = mapped_column(String(16))
    sha256: Mapped[str] = mapped_column(SHA)
    document: Mapped[str] = mapped_column(Text)
    issued_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class ModelVersionRow(Base):
    """One set of weights of an approximate model: trained (version 1), unlearned or
    retrained. ``state``: ``live`` (served; one per model), ``candidate`` (flagged, waits for
    review), ``retired`` (replaced) or ``rejected``. ``data_version`` is the model's routing
    version whose erasures the weights account for (exactly when ``exact``)."""

    __tablename__ = "model_versions"
    __table_args__ = (UniqueConstraint("model_id", "version"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    model_id: Mapped[int] = mapped_column(ForeignKey("models.id"), index=True)
    version: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(SHA)
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("model_versions.id"))
    job_id: Mapped[int | None] = mapped_column(ForeignKey("jobs.id"))
    method: Mapped[str] = mapped_column(String(32))
    exact: Mapped[bool] = mapped_column(Boolean)
    state: Mapped[str] = mapped_column(String(16))
    data_version: Mapped[int] = mapped_column(Integer)
    evidence: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    # Held-out scores of these weights, computed once and reused by the next deletion.
    held_out: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    published_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    retired_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)


class ForgetPayloadRow(Base):
    """Quarantine: the payload of an erased record that an approximate model must unlearn.

    ``payload`` is sealed under the request's own data key (owner ``request:<id>``), which
    is destroyed with these rows. Written in the accepting transaction (which nulls
    ``records.payload``), read only by the
    request's ``unlearn`` jobs, deleted in the transaction that completes or fails it."""

    __tablename__ = "forget_payloads"

    request_id: Mapped[int] = mapped_column(ForeignKey("deletion_requests.id"), primary_key=True)
    record_pk: Mapped[int] = mapped_column(ForeignKey("records.id"), primary_key=True)
    label: Mapped[int] = mapped_column(Integer)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)


class ApiKeyRow(Base):
    """An API key: only the SHA-256 of its token is kept (``service.access.tokens``).

    A key is refused once ``revoked_at`` or ``expires_at`` has passed; the row stays, so the
    audit chain's ``key.*`` events and the requests it filed keep naming it."""

    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(primary_key=True)
    key_id: Mapped[str] = mapped_column(String(16), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    role: Mapped[str | None] = mapped_column(String(32))
    scopes: Mapped[list[str]] = mapped_column(JSON)
    secret_sha256: Mapped[str] = mapped_column(SHA)
    created_by: Mapped[dict[str, str]] = mapped_column(JSON)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    last_used_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    revoked_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
