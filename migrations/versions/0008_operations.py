"""operations: raw event payloads may be dropped after a retention horizon

`events.payload` becomes nullable. With `REFUNDWATCH_RAW_RETENTION_DAYS` set,
the worker sets the payloads of events received before the horizon to NULL and
keeps each event's id and content hash: a resend is still recognised as a
duplicate (same hash) or an `event_id_conflict` (another hash), and the
figures, folded into the refund and order state, stay exact.

No index is added for the job: the events table is read only by event_id, and
a second B-tree cost every ingest ~13% once already (0003). The job walks the
table in physical order instead (heap page ranges on PostgreSQL, rowid ranges
on SQLite).

The downgrade fills dropped payloads with `{}`: what they held is gone.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02 06:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("events") as batch:
        batch.alter_column("payload", existing_type=sa.Text(), nullable=True)


def downgrade() -> None:
    op.execute("UPDATE events SET payload = '{}' WHERE payload IS NULL")
    with op.batch_alter_table("events") as batch:
        batch.alter_column("payload", existing_type=sa.Text(), nullable=False)
