"""authenticators (sms, totp, webauthn), remembered browsers, passkey ceremonies; each enrolled phone moves in

Revision ID: 0004
Revises: 0002 (the lead re-chains it after the branches merge)
Create Date: 2026-11-30 01:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "authenticators",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("label", sa.String(length=64), nullable=False),
        sa.Column("phone_e164", sa.String(length=20), nullable=True),
        sa.Column("secret_enc", sa.String(length=255), nullable=True),
        sa.Column("totp_last_step", sa.BigInteger(), nullable=True),
        sa.Column("credential_id", sa.String(length=1400), nullable=True),
        sa.Column("public_key", sa.Text(), nullable=True),
        sa.Column("sign_count", sa.BigInteger(), nullable=False, server_default="0"),
        sa.Column("transports", sa.String(length=128), nullable=False, server_default=""),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("last_used_at", sa.DateTime(), nullable=True),
        sa.Column("flagged_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("credential_id"),
    )
    op.create_index("ix_authenticators_user_id", "authenticators", ["user_id"])
    op.create_table(
        "remembered_browsers",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("browser", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("last_used_at", sa.DateTime(), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
        sa.Column("revoked_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("token_hash"),
    )
    op.create_index("ix_remembered_browsers_user_id", "remembered_browsers", ["user_id"])
    op.create_table(
        "passkey_ceremonies",
        sa.Column("id_hash", sa.String(length=64), nullable=False),
        sa.Column("challenge", sa.String(length=128), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
        sa.Column("consumed_at", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id_hash"),
    )
    with op.batch_alter_table("mfa_challenges") as batch:
        batch.add_column(sa.Column("method", sa.String(length=16), nullable=False, server_default="sms"))
        batch.add_column(sa.Column("payload", sa.String(length=512), nullable=True))
    # Every enrolled phone becomes an authenticator: same number, enrolled when it was verified, nothing lost.
    op.execute(
        "INSERT INTO authenticators (user_id, kind, label, phone_e164, sign_count, transports, created_at) "
        "SELECT id, 'sms', 'Phone', phone_e164, 0, '', COALESCE(phone_verified_at, created_at) FROM users "
        "WHERE mfa_enabled = TRUE AND phone_e164 IS NOT NULL AND phone_e164 <> ''"
    )


def downgrade() -> None:
    with op.batch_alter_table("mfa_challenges") as batch:
        batch.drop_column("payload")
        batch.drop_column("method")
    op.drop_table("passkey_ceremonies")
    op.drop_index("ix_remembered_browsers_user_id", table_name="remembered_browsers")
    op.drop_table("remembered_browsers")
    op.drop_index("ix_authenticators_user_id", table_name="authenticators")
    op.drop_table("authenticators")
