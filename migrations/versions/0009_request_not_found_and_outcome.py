"""deletion requests keep the record ids they named that matched nothing (``not_found``), and
every completed request states its outcome

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-03 08:50:00

Requests filed before this revision have no ``not_found`` (null: not kept then). Requests that
completed before it with no outcome set completed by erasing: their certificates already said
``erased``, and from now on their rows say it too.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

_requests = sa.table(
    "deletion_requests",
    sa.column("state", sa.String()),
    sa.column("outcome", sa.String()),
)


def upgrade() -> None:
    with op.batch_alter_table("deletion_requests", schema=None) as batch_op:
        batch_op.add_column(sa.Column("not_found", sa.JSON(), nullable=True))
    op.execute(
        _requests.update()
        .where(_requests.c.state == "completed", _requests.c.outcome.is_(None))
        .values(outcome="erased")
    )


def downgrade() -> None:
    # The outcomes filled in stay: the certificates of those requests state them.
    with op.batch_alter_table("deletion_requests", schema=None) as batch_op:
        batch_op.drop_column("not_found")
