"""Dropping old raw payloads: the id and the content hash stay, the JSON goes.

The events table has no index but its primary key (ingest pays for every
index), so the payloads to drop are found by walking the table in physical
order, one bounded range per transaction: heap pages on PostgreSQL (a TID
range scan reads just those pages), rowids on SQLite (assigned in insertion
order). A pass covers the table as it was when the pass began; rows that come
later are younger than any horizon anyway.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import bindparam, text
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.base import UTCDateTime
from app.db.dialect import dialect_of

PG_PAGES_PER_RANGE = 128
"""1 MiB of heap (a few thousand events) per transaction on PostgreSQL."""

SQLITE_ROWS_PER_RANGE = 5000

_PG_EXTENT = text("SELECT pg_relation_size('events') / current_setting('block_size')::int")
_SQLITE_EXTENT = text("SELECT coalesce(max(rowid), 0) + 1 FROM events")

_HORIZON = bindparam("horizon", type_=UTCDateTime())
_PG_DROP = text(
    "UPDATE events SET payload = NULL "
    "WHERE ctid >= CAST(:lo AS tid) AND ctid < CAST(:hi AS tid) "
    "AND payload IS NOT NULL AND received_at < :horizon"
).bindparams(_HORIZON)
_SQLITE_DROP = text(
    "UPDATE events SET payload = NULL "
    "WHERE rowid >= :lo AND rowid < :hi AND payload IS NOT NULL AND received_at < :horizon"
).bindparams(_HORIZON)


async def table_extent(session: AsyncSession) -> tuple[int, int]:
    """Where a pass ends (heap pages or rowids) and the size of one range."""
    if dialect_of(session) == "postgresql":
        return int((await session.execute(_PG_EXTENT)).scalar_one()), PG_PAGES_PER_RANGE
    return int((await session.execute(_SQLITE_EXTENT)).scalar_one()), SQLITE_ROWS_PER_RANGE


async def drop_payloads(session: AsyncSession, horizon: datetime, start: int, stop: int) -> int:
    """Drop the payloads received before ``horizon`` in ``[start, stop)``; returns how many."""
    if dialect_of(session) == "postgresql":
        result = await session.execute(
            _PG_DROP, {"lo": (start, 0), "hi": (stop, 0), "horizon": horizon}
        )
    else:
        result = await session.execute(_SQLITE_DROP, {"lo": start, "hi": stop, "horizon": horizon})
    return int(getattr(result, "rowcount", 0) or 0)
