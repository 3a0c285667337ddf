"""message push: a connection may name its store's mall id, and remembers a push

The platform's message push (``wss://message-api.pinduoduo.com``) names the
store a change belongs to by its mall id (``mallID``). A connection that knows
its ``mall_id`` is woken by its own store's messages only; one that does not is
woken by every message of its app. ``poked_at`` is when a pushed message last
asked for a sync: one arriving while a sync runs makes the connection due again
the moment that sync ends.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-03 14:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("connections") as batch:
        batch.add_column(sa.Column("mall_id", sa.String(32), nullable=True))
        batch.add_column(sa.Column("poked_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("connections") as batch:
        batch.drop_column("poked_at")
        batch.drop_column("mall_id")
