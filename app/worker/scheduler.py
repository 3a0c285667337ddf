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
from datetime import UTC, datetime, timedelta

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from prometheus_client import start_http_server

from app.clock import Clock, SystemClock
from app.config import Settings
from app.connectors.pdd.push import MessageListener
from app.connectors.pdd.sync import Syncer
from app.db.engine import Database, check_pooling, create_engine
from app.ops.logs import configure_logging
from app.ops.metrics import PROCESS
from app.webhooks.relay import Relay
from app.worker.jobs import run_raw_retention, run_time_based

log = logging.getLogger("refundwatch.worker")

RETENTION_INTERVAL_SECONDS = 6 * 3600


class Worker:
    def __init__(self, db: Database, settings: Settings, clock: Clock) -> None:
        self.db = db
        self.settings = settings
        self.clock = clock
        self.scheduler = AsyncIOScheduler(timezone=UTC)
        self.relay = Relay(db, settings, clock)
        self.syncer = Syncer(db, settings, clock, on_deliveries=self.relay.wake)
        self.listener = MessageListener(db, settings, clock, on_poke=self.syncer.wake)
        self._relay_task: asyncio.Task[None] | None = None
        self._sync_task: asyncio.Task[None] | None = None
        self._listener_task: asyncio.Task[None] | None = None

    async def _time_based(self) -> None:
        try:
            await run_time_based(self.db, self.clock.now())
        except Exception:
            log.exception("time-based evaluation failed; retrying next round")

    async def _raw_retention(self) -> None:
        days = self.settings.raw_retention_days
        if days is None:
            return
        try:
            await run_raw_retention(self.db, self.clock.now(), days)
        except Exception:
            log.exception("raw retention failed; retrying next round")

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
        if self.settings.raw_retention_days is not None:
            # A pass reads the whole events table in small ranges: a few times a day
            # is plenty for a horizon counted in days.
            self.scheduler.add_job(
                self._raw_retention,
                "interval",
                seconds=RETENTION_INTERVAL_SECONDS,
                id="raw-retention",
                max_instances=1,
                coalesce=True,
                next_run_time=datetime.now(UTC) + timedelta(minutes=1),
            )
        self.scheduler.start()
        self._relay_task = asyncio.create_task(self.relay.run_forever(), name="webhook-relay")
        self._sync_task = asyncio.create_task(self.syncer.run_forever(), name="connector-sync")
        if self.settings.pdd_messages:
            self._listener_task = asyncio.create_task(
                self.listener.run_forever(), name="pdd-message-push"
            )

    def wake_relay(self) -> None:
        self.relay.wake()

    def connections_changed(self) -> None:
        """A connection was created or edited: sync it now, listen for its app."""
        self.syncer.wake()
        self.listener.wake()

    async def stop(self) -> None:
        self.scheduler.shutdown(wait=False)
        await self.listener.close()
        if self._listener_task is not None:
            self._listener_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._listener_task
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
    configure_logging(settings)
    db = Database(create_engine(settings))
    await check_pooling(db, settings)
    if settings.worker_metrics_address:
        host, _, port = settings.worker_metrics_address.rpartition(":")
        # The worker's own counters (relay, connector, clock): the database facts
        # are on the API's /metrics. Open, so bind it where only Prometheus reaches.
        start_http_server(int(port), addr=host.strip("[]") or "127.0.0.1", registry=PROCESS)
        log.info("worker metrics on http://%s/metrics", settings.worker_metrics_address)
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
