"""erasure probes: keyed shingle digests on erased records' tombstones and a row per destroyed
data key, so ``unlearn verify --erasure`` can recognise a remnant without keeping the data

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02 11:30:00

Records erased and keys destroyed before this revision have no probes: the scan says how many
it cannot check.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "destroyed_keys",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("request_id", sa.Integer(), nullable=True),
        sa.Column("destroyed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("anchor", sa.String(length=16), nullable=False),
        sa.Column("wrapped_sha256", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(
            ["request_id"],
            ["deletion_requests.id"],
            name=op.f("fk_destroyed_keys_request_id_deletion_requests"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_destroyed_keys")),
    )
    with op.batch_alter_table("destroyed_keys", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_destroyed_keys_request_id"), ["request_id"])
    with op.batch_alter_table("records", schema=None) as batch_op:
        batch_op.add_column(sa.Column("probes", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("records", schema=None) as batch_op:
        batch_op.drop_column("probes")
    with op.batch_alter_table("destroyed_keys", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_destroyed_keys_request_id"))
    op.drop_table("destroyed_keys")
