"""What time alone changes: the window slides at each store's midnight, reminders fall due.

Each job is a plain async function of (database, now), so tests drive it with
a frozen clock instead of sleeping. One transaction per store.
"""

from __future__ import annotations

import asyncio
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
from app.events import retention
from app.ingest.road import lock_stores_for_reading, reevaluate, reevaluate_store
from app.stores.repository import load_context, load_contexts, mark_evaluated, store_days
from app.stores.rules import zone
from app.webhooks.reports import due_subscriptions, report_days, write_report

log = logging.getLogger("refundwatch.worker")


@asynccontextmanager
async def singleton(db: Database, name: str) -> AsyncIterator[bool]:
    """Run a periodic job once across replicas: a PostgreSQL advisory lock.

    Yields False when another replica holds it (skip this round). The lock is
    transaction-scoped, in a transaction held open on its own connection for the
    whole job: a session-level lock would stay behind on whichever server
    connection PgBouncer (transaction pooling) lent that one statement, and its
    unlock would run on another. A process that dies drops its connection, and
    the lock with it. SQLite has one process by design, so it always yields True.
    """
    if db.dialect != "postgresql":
        yield True
        return
    key = lock_key("job", name)
    async with db.engine.connect() as conn, conn.begin():
        acquired = bool(
            (await conn.execute(text("SELECT pg_try_advisory_xact_lock(:k)"), {"k": key})).scalar()
        )
        yield acquired


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


async def send_daily_reports(db: Database, now: datetime) -> int:
    """Write the daily reports that fell due (each subscription in its own transaction)."""
    async with db.transaction() as session:
        ids = [sub.id for sub in await due_subscriptions(session) if report_days(sub, now)]
    sent = 0
    for subscription_id in ids:
        async with db.transaction() as session:
            sent += len(await write_report(session, subscription_id, now))
    return sent


async def run_time_based(db: Database, now: datetime) -> None:
    async with singleton(db, "time-based-evaluation") as mine:
        if not mine:
            return
        slid = await slide_windows(db, now)
        reminded = await send_reminders(db, now)
        reported = await send_daily_reports(db, now)
        if reported:
            log.info("daily reports: %d written", reported)
        if slid or reminded:
            log.info("time-based evaluation: %d stores slid, %d scopes reminded", slid, reminded)


RETENTION_PAUSE_SECONDS = 0.01
"""Between two ranges of a retention pass: ingest and the relay get the database first."""


async def drop_old_payloads(db: Database, now: datetime, retention_days: int) -> int:
    """Drop the raw payloads received more than ``retention_days`` ago; returns how many.

    One pass over the events table, one bounded range per short transaction
    (:mod:`app.events.retention`), each event keeping its id and content hash.
    """
    horizon = now - timedelta(days=retention_days)
    async with db.read() as session:
        end, step = await retention.table_extent(session)
    dropped = 0
    for start in range(0, end, step):
        async with db.transaction() as session:
            dropped += await retention.drop_payloads(session, horizon, start, start + step)
        await asyncio.sleep(RETENTION_PAUSE_SECONDS)
    return dropped


async def run_raw_retention(db: Database, now: datetime, retention_days: int) -> None:
    async with singleton(db, "raw-retention") as mine:
        if not mine:
            return
        dropped = await drop_old_payloads(db, now, retention_days)
        if dropped:
            log.info(
                "raw retention: dropped %d payloads received before %d days ago",
                dropped,
                retention_days,
            )
