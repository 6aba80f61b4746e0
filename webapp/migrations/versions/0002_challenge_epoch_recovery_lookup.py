"""challenge epoch binding, recovery-code lookup key

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-30 00:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("mfa_challenges") as batch:
        batch.add_column(sa.Column("user_epoch", sa.Integer(), nullable=False, server_default="0"))
    with op.batch_alter_table("recovery_codes") as batch:
        batch.add_column(sa.Column("lookup", sa.String(length=16), nullable=True))
    op.create_index("ix_recovery_codes_user_lookup", "recovery_codes", ["user_id", "lookup"])
    # Challenges open during the upgrade are closed: they were not bound to an epoch.
    op.execute("UPDATE mfa_challenges SET invalidated_at = CURRENT_TIMESTAMP "
               "WHERE consumed_at IS NULL AND invalidated_at IS NULL")


def downgrade() -> None:
    op.drop_index("ix_recovery_codes_user_lookup", table_name="recovery_codes")
    with op.batch_alter_table("recovery_codes") as batch:
        batch.drop_column("lookup")
    with op.batch_alter_table("mfa_challenges") as batch:
        batch.drop_column("user_epoch")
