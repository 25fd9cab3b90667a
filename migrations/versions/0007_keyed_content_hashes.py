"""keyed content hashes: records.content_sha256 becomes content_hmac, an HMAC-SHA256 under
the deployment secret of the old value, so a tombstone no longer lets whoever holds a text
confirm it was in the data

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02 00:55:00

The secret is handed in by ``unlearn db upgrade``; through the bare ``alembic`` command on a
database that holds records, the migration refuses. Audit events written before keep the
plain hashes they recorded (the chain is append-only).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import context, op

from service.lineage.datasets import keyed_content

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("records", schema=None) as batch_op:
        batch_op.alter_column(
            "content_sha256",
            new_column_name="content_hmac",
            existing_type=sa.String(length=64),
            existing_nullable=False,
        )
    records = sa.table("records", sa.column("id", sa.Integer), sa.column("content_hmac", sa.String))
    conn = op.get_bind()
    rows = conn.execute(sa.select(records.c.id, records.c.content_hmac)).all()
    if not rows:
        return
    secret = context.config.attributes.get("secret")
    if not isinstance(secret, bytes):
        raise RuntimeError(
            "migration 0007 keys the stored content hashes and needs the deployment secret: "
            "run `unlearn db upgrade`"
        )
    for pk, plain in rows:
        conn.execute(
            sa.update(records)
            .where(records.c.id == pk)
            .values(content_hmac=keyed_content(secret, plain))
        )


def downgrade() -> None:
    """Renames the column back; the keyed values stay keyed (the plain hashes are gone)."""
    with op.batch_alter_table("records", schema=None) as batch_op:
        batch_op.alter_column(
            "content_hmac",
            new_column_name="content_sha256",
            existing_type=sa.String(length=64),
            existing_nullable=False,
        )
