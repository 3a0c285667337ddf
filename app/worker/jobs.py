"""What time alone changes: the window slides at each store's midnight, reminders fall due.

Each job is a plain async function of (database, now), so tests drive it with
a frozen clock instead of sleeping. One transaction per store.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime, timedelta

from sqlalchemy import text

from app.alerts.repository import states_at_risk
from app.alerts.rules import reminder_due
from app.db.dialect import lock_key
from app.db.engine import Database
from app.ingest.road import lock_stores_for_reading, reevaluate, reevaluate_store
from app.stores.repository import load_context, load_contexts, mark_evaluated, store_days
from app.stores.rules import zone

log = logging.getLogger("refundwatch.worker")


@asynccontextmanager
async def singleton(db: Database, name: str) -> AsyncIterator[bool]:
    """Run a periodic job once across replicas: a PostgreSQL session advisory lock.

    Yields False when another replica holds it (skip this round). SQLite has one
    process by design, so it always yields True.
    """
    if db.dialect != "postgresql":
        yield True
        return
    key = lock_key("job", name)
    async with db.engine.connect() as conn:
        acquired = bool(
            (await conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": key})).scalar()
        )
        await conn.commit()
        try:
            yield acquired
        finally:
            if acquired:
                await conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": key})
                await conn.commit()


async def slide_windows(db: Database, now: datetime) -> int:
    """Re-evaluate every store whose local day changed since its last full evaluation."""
    async with db.transaction() as session:
        rows = await store_days(session)
    due = [
        r.store_id
        for r in rows
        if r.evaluated_on is None or r.evaluated_on < now.astimezone(zone(r.timezone)).date()
    ]
    for store_id in due:
        async with db.transaction() as session:
            await lock_stores_for_reading(session, [store_id])
            ctx = await load_context(session, store_id)
            if ctx is None:
                continue
            await reevaluate_store(session, ctx, now)
            await mark_evaluated(session, store_id, ctx.today(now))
    return len(due)


async def send_reminders(db: Database, now: datetime) -> int:
    """Re-evaluate scopes at risk whose reminder interval has passed (a reminder or a change)."""
    async with db.transaction() as session:
        states = await states_at_risk(session, alerted_before=now - timedelta(seconds=60))
        contexts = await load_contexts(session, sorted({s.store_id for s in states}))
    due: dict[str, set[tuple[str, str]]] = defaultdict(set)
    for state in states:
        ctx = contexts.get(state.store_id)
        if ctx is None:
            continue
        interval = timedelta(seconds=ctx.policy.reminder_interval_seconds)
        if reminder_due(state.state, state.last_alert_at, now, interval):
            due[state.store_id].add((state.store_id, state.product_id))
    for store_id, scopes in sorted(due.items()):
        async with db.transaction() as session:
            await lock_stores_for_reading(session, [store_id])
            ctx = await load_context(session, store_id)
            if ctx is not None:
                await reevaluate(session, {store_id: ctx}, scopes, now=now)
    return sum(len(s) for s in due.values())


async def run_time_based(db: Database, now: datetime) -> None:
    async with singleton(db, "time-based-evaluation") as mine:
        if not mine:
            return
        slid = await slide_windows(db, now)
        reminded = await send_reminders(db, now)
        if slid or reminded:
            log.info("time-based evaluation: %d stores slid, %d scopes reminded", slid, reminded)
