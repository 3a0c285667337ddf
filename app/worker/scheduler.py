"""The worker: APScheduler for periodic jobs, and the webhook relay loop.

`refundwatch serve` runs it inside the API process (one command is enough on
SQLite); `refundwatch worker` runs it alone and `serve --no-worker` runs the
API alone, for scale-out on PostgreSQL.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from datetime import UTC, datetime

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from app.clock import Clock, SystemClock
from app.config import Settings
from app.connectors.pdd.sync import Syncer
from app.db.engine import Database, create_engine
from app.webhooks.relay import Relay
from app.worker.jobs import run_time_based

log = logging.getLogger("refundwatch.worker")


class Worker:
    def __init__(self, db: Database, settings: Settings, clock: Clock) -> None:
        self.db = db
        self.settings = settings
        self.clock = clock
        self.scheduler = AsyncIOScheduler(timezone=UTC)
        self.relay = Relay(db, settings, clock)
        self.syncer = Syncer(db, settings, clock, on_deliveries=self.relay.wake)
        self._relay_task: asyncio.Task[None] | None = None
        self._sync_task: asyncio.Task[None] | None = None

    async def _time_based(self) -> None:
        try:
            await run_time_based(self.db, self.clock.now())
        except Exception:
            log.exception("time-based evaluation failed; retrying next round")

    async def start(self) -> None:
        self.scheduler.add_job(
            self._time_based,
            "interval",
            seconds=self.settings.evaluation_interval_seconds,
            id="time-based-evaluation",
            max_instances=1,
            coalesce=True,
            next_run_time=datetime.now(UTC),
        )
        self.scheduler.start()
        self._relay_task = asyncio.create_task(self.relay.run_forever(), name="webhook-relay")
        self._sync_task = asyncio.create_task(self.syncer.run_forever(), name="connector-sync")

    def wake_relay(self) -> None:
        self.relay.wake()

    async def stop(self) -> None:
        self.scheduler.shutdown(wait=False)
        await self.syncer.close()
        if self._sync_task is not None:
            self._sync_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sync_task
        await self.relay.stop()
        if self._relay_task is not None:
            self._relay_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._relay_task


async def run_worker_forever(settings: Settings) -> None:
    """`refundwatch worker`: the jobs and the relay, until SIGINT/SIGTERM."""
    logging.basicConfig(level=settings.log_level.upper())
    db = Database(create_engine(settings))
    worker = Worker(db, settings, SystemClock())
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await worker.start()
    log.info("worker running")
    try:
        await stop.wait()
    finally:
        await worker.stop()
        await db.dispose()
