"""indexes for the lookups a deletion makes: records by record id alone (a request that
names record ids without a dataset) and jobs by sequence (the retrain a cut joins)

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07 15:20:00

Without them both were table scans inside the accepting transaction, whose cost grew with the
data set and with the backlog of jobs.
"""

from __future__ import annotations

from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_records_record_id", "records", ["record_id"])
    op.create_index("ix_jobs_sequence_id", "jobs", ["sequence_id"])


def downgrade() -> None:
    op.drop_index("ix_jobs_sequence_id", table_name="jobs")
    op.drop_index("ix_records_record_id", table_name="records")
