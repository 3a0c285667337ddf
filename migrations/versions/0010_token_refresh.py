"""token refresh: a connection may keep the store's refresh_token (encrypted)

With it, an access_token the platform reports expired (10019) is renewed by
`pdd.pop.auth.token.refresh` and the sync goes on; without it (or when the
platform refuses the refresh) the connection is `failing` as before.
`token_refreshed_at` says when that last happened.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-02 18:30:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("connections") as batch:
        batch.add_column(sa.Column("refresh_token_encrypted", sa.Text(), nullable=True))
        batch.add_column(sa.Column("token_refreshed_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("connections") as batch:
        batch.drop_column("token_refreshed_at")
        batch.drop_column("refresh_token_encrypted")
