"""operations: disabled accounts, audit rows pruned by age

Revision ID: 0005
Revises: 0002
Create Date: 2026-11-30 01:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
# Other branches add 0003/0004; whoever merges them re-chains this one after the last.
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.add_column(sa.Column("disabled_at", sa.DateTime(), nullable=True))
    op.create_index("ix_security_events_ts", "security_events", ["ts"])


def downgrade() -> None:
    op.drop_index("ix_security_events_ts", table_name="security_events")
    with op.batch_alter_table("users") as batch:
        batch.drop_column("disabled_at")
