"""console sign-in sessions, and acknowledgements of alerts

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02 06:00:00

``console_sessions`` keeps a hash of each session token (never the token), the key that
signed in (its id and the same SHA-256 ``api_keys`` keeps), its scopes and when the session
began, ends, or was ended. ``console_alert_acks`` records that an operator has seen an alert;
it lives beside ``alerts`` rather than in it so that the alert rows stay exactly what was
sent.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "console_sessions",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("token_hash", sa.LargeBinary(length=32), nullable=False),
        sa.Column("key_id", sa.Integer(), nullable=True),
        sa.Column("key_hash", sa.LargeBinary(length=32), nullable=False),
        sa.Column("key_name", sa.String(length=100), nullable=False),
        sa.Column("scopes", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["key_id"],
            ["api_keys.id"],
            name=op.f("fk_console_sessions_key_id_api_keys"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_console_sessions")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_console_sessions_token_hash")),
    )
    op.create_index(
        op.f("ix_console_sessions_key_id"), "console_sessions", ["key_id"], unique=False
    )
    op.create_table(
        "console_alert_acks",
        sa.Column("alert_id", sa.String(length=40), nullable=False),
        sa.Column("acknowledged_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("acknowledged_by", sa.String(length=100), nullable=False),
        sa.Column("key_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["alert_id"],
            ["alerts.alert_id"],
            name=op.f("fk_console_alert_acks_alert_id_alerts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("alert_id", name=op.f("pk_console_alert_acks")),
    )


def downgrade() -> None:
    op.drop_table("console_alert_acks")
    op.drop_index(op.f("ix_console_sessions_key_id"), table_name="console_sessions")
    op.drop_table("console_sessions")
