"""access control: API keys, the principal and status token of each deletion request, the
principal that registered each model

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01 23:50:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "api_keys",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("key_id", sa.String(length=16), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("role", sa.String(length=32), nullable=True),
        sa.Column("scopes", sa.JSON(), nullable=False),
        sa.Column("secret_sha256", sa.String(length=64), nullable=False),
        sa.Column("created_by", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_keys")),
        sa.UniqueConstraint("key_id", name=op.f("uq_api_keys_key_id")),
    )
    with op.batch_alter_table("deletion_requests", schema=None) as batch_op:
        batch_op.add_column(sa.Column("requested_by", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("status_token_sha256", sa.String(length=64), nullable=True))
        batch_op.create_unique_constraint(
            batch_op.f("uq_deletion_requests_status_token_sha256"), ["status_token_sha256"]
        )
    with op.batch_alter_table("models", schema=None) as batch_op:
        batch_op.add_column(sa.Column("created_by", sa.String(length=80), nullable=True))
        batch_op.create_index(batch_op.f("ix_models_created_by"), ["created_by"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("models", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_models_created_by"))
        batch_op.drop_column("created_by")
    with op.batch_alter_table("deletion_requests", schema=None) as batch_op:
        batch_op.drop_constraint(
            batch_op.f("uq_deletion_requests_status_token_sha256"), type_="unique"
        )
        batch_op.drop_column("status_token_sha256")
        batch_op.drop_column("requested_by")
    op.drop_table("api_keys")
