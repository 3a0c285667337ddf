"""events: drop the (store_id, occurred_at) index no query uses

Raw events are read only by event_id (idempotency checks, the primary key).
Figures are rebuilt from the folded refund and order state, never by scanning a
store's raw events, so this index only cost every ingest a second B-tree
insert per event: dropping it made a 1000-event ingest transaction 13% faster
(scripts/bench_statements.py, A/B twice: 5.7k → 6.4–6.6k ev/s). A future tool
that scans a store's raw events can create it again (CONCURRENTLY).

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26 07:40:00
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.drop_index(op.f("ix_events_store_id_occurred_at"), table_name="events")


def downgrade() -> None:
    op.create_index(
        op.f("ix_events_store_id_occurred_at"), "events", ["store_id", "occurred_at"], unique=False
    )
