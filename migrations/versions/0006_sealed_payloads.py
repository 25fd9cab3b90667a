"""sealed payloads: data keys wrapped by the KEK, every stored payload sealed under one

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02 00:40:00

Payloads already in the database are sealed here: under one data key per data subject (one
per record without a subject), quarantined forget payloads under one key per request. That
needs the key-encryption key, which ``unlearn db upgrade`` hands in; run through the bare
``alembic`` command on a database that holds payloads, the migration refuses.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import sqlalchemy as sa
from alembic import context, op

from service.erasure import crypto

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

_records = sa.table(
    "records",
    sa.column("id", sa.Integer),
    sa.column("subject_key", sa.String),
    sa.column("payload", sa.JSON),
    sa.column("data_key_id", sa.String),
)
_forget = sa.table(
    "forget_payloads",
    sa.column("request_id", sa.Integer),
    sa.column("record_pk", sa.Integer),
    sa.column("payload", sa.JSON),
)
_keys = sa.table(
    "data_keys",
    sa.column("id", sa.String),
    sa.column("owner", sa.String),
    sa.column("kek_id", sa.String),
    sa.column("wrapped", sa.LargeBinary),
    sa.column("created_at", sa.DateTime(timezone=True)),
)


def upgrade() -> None:
    op.create_table(
        "data_keys",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("owner", sa.String(length=80), nullable=True),
        sa.Column("kek_id", sa.String(length=16), nullable=False),
        sa.Column("wrapped", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_data_keys")),
    )
    op.create_index(op.f("ix_data_keys_owner"), "data_keys", ["owner"], unique=False)
    with op.batch_alter_table("records", schema=None) as batch_op:
        batch_op.add_column(sa.Column("data_key_id", sa.String(length=32), nullable=True))
        batch_op.create_index(batch_op.f("ix_records_data_key_id"), ["data_key_id"], unique=False)
        batch_op.create_foreign_key(
            batch_op.f("fk_records_data_key_id_data_keys"), "data_keys", ["data_key_id"], ["id"]
        )
    with op.batch_alter_table("deletion_requests", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("data_keys_destroyed", sa.Integer(), server_default="0", nullable=False)
        )
    _seal_existing()


def _seal_existing() -> None:
    conn = op.get_bind()
    records = conn.execute(
        sa.select(_records.c.id, _records.c.subject_key, _records.c.payload).where(
            _records.c.payload.is_not(None)
        )
    ).all()
    forget = conn.execute(
        sa.select(_forget.c.request_id, _forget.c.record_pk, _forget.c.payload)
    ).all()
    if not records and not forget:
        return
    vault = context.config.attributes.get("vault")
    kek = getattr(vault, "kek", None)
    if not isinstance(kek, bytes):
        raise RuntimeError(
            "migration 0006 seals the stored payloads and needs the key-encryption key: "
            "run `unlearn db upgrade`"
        )
    import datetime as dt

    now = dt.datetime.now(dt.UTC)
    keys: dict[str, tuple[str, bytes]] = {}

    def key_for(owner: str | None) -> tuple[str, bytes]:
        if owner is not None and owner in keys:
            return keys[owner]
        key_id, key = crypto.new_key_id(), crypto.new_data_key()
        conn.execute(
            sa.insert(_keys).values(
                id=key_id,
                owner=owner,
                kek_id=crypto.kek_id(kek),
                wrapped=crypto.wrap(kek, key_id, key),
                created_at=now,
            )
        )
        if owner is not None:
            keys[owner] = (key_id, key)
        return key_id, key

    for pk, subject, payload in records:
        if crypto.is_sealed(payload):
            continue
        key_id, key = key_for(subject)
        conn.execute(
            sa.update(_records)
            .where(_records.c.id == pk)
            .values(payload=crypto.seal_payload(key_id, key, _plain(payload)), data_key_id=key_id)
        )
    by_request: dict[int, list[tuple[int, Any]]] = defaultdict(list)
    for request_id, record_pk, payload in forget:
        if not crypto.is_sealed(payload):
            by_request[request_id].append((record_pk, payload))
    for request_id, rows in by_request.items():
        key_id, key = key_for(f"request:{request_id}")
        for record_pk, payload in rows:
            conn.execute(
                sa.update(_forget)
                .where(_forget.c.request_id == request_id, _forget.c.record_pk == record_pk)
                .values(payload=crypto.seal_payload(key_id, key, _plain(payload)))
            )


def _plain(payload: Any) -> dict[str, Any]:
    if not isinstance(payload, dict):
        raise RuntimeError(f"a stored payload is not a JSON object: {type(payload).__name__}")
    return payload


def downgrade() -> None:
    """Drops the data keys: every sealed payload becomes unreadable (there is no unsealing
    downgrade: a plaintext copy is what this revision exists to remove)."""
    with op.batch_alter_table("deletion_requests", schema=None) as batch_op:
        batch_op.drop_column("data_keys_destroyed")
    with op.batch_alter_table("records", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_records_data_key_id_data_keys"), type_="foreignkey")
        batch_op.drop_index(batch_op.f("ix_records_data_key_id"))
        batch_op.drop_column("data_key_id")
    op.drop_index(op.f("ix_data_keys_owner"), table_name="data_keys")
    op.drop_table("data_keys")
