"""signed deletion certificates; job evidence; held-out dataset of a model

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-28 09:20:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

MESSAGE = "certificates are append-only"


def upgrade() -> None:
    op.create_table(
        "certificates",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("request_id", sa.Integer(), nullable=False),
        sa.Column("key_id", sa.String(length=16), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("document", sa.Text(), nullable=False),
        sa.Column("issued_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["request_id"],
            ["deletion_requests.id"],
            name=op.f("fk_certificates_request_id_deletion_requests"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_certificates")),
        sa.UniqueConstraint("request_id", name=op.f("uq_certificates_request_id")),
    )
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("evidence", sa.JSON(), nullable=True))
    with op.batch_alter_table("models", schema=None) as batch_op:
        batch_op.add_column(sa.Column("eval_dataset_id", sa.Integer(), nullable=True))
        batch_op.create_foreign_key(
            batch_op.f("fk_models_eval_dataset_id_datasets"),
            "datasets",
            ["eval_dataset_id"],
            ["id"],
        )
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "CREATE FUNCTION certificates_append_only() RETURNS trigger LANGUAGE plpgsql AS "
            f"$$ BEGIN RAISE EXCEPTION '{MESSAGE}'; END $$"
        )
        op.execute(
            "CREATE TRIGGER certificates_append_only BEFORE UPDATE OR DELETE OR TRUNCATE "
            "ON certificates FOR EACH STATEMENT EXECUTE FUNCTION certificates_append_only()"
        )
    else:
        for action in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER certificates_no_{action.lower()} BEFORE {action} ON "
                f"certificates BEGIN SELECT RAISE(ABORT, '{MESSAGE}'); END"
            )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER certificates_append_only ON certificates")
        op.execute("DROP FUNCTION certificates_append_only()")
    else:
        op.execute("DROP TRIGGER certificates_no_update")
        op.execute("DROP TRIGGER certificates_no_delete")
    with op.batch_alter_table("models", schema=None) as batch_op:
        batch_op.drop_constraint(
            batch_op.f("fk_models_eval_dataset_id_datasets"), type_="foreignkey"
        )
        batch_op.drop_column("eval_dataset_id")
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.drop_column("evidence")
    op.drop_table("certificates")
