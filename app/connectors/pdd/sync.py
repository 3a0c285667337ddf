"""The sync job: each connection's windows pulled from the gateway and sent down the road.

A loop in the worker (like the webhook relay): it leases the connections that
are due (``FOR UPDATE SKIP LOCKED``, so each runs in one replica only) and runs
each one's sync:

1. plan the windows from ``synced_through`` (``windows.plan_windows``: at most
   30 minutes each, never past the platform's clock − 3 minutes, then an early
   read of the newest minutes once caught up);
2. per window, read every page of both increment APIs (last page first), map
   the records to events (``mapping``), and, in one transaction, take them down
   the road (:func:`app.ingest.road.ingest`), count them and move
   ``synced_through`` — after the events, never before. A crash repeats the
   window; the derived event ids make the repeat harmless;
3. between windows the lease is renewed; at the end the connection is due again
   after ``REFUNDWATCH_SYNC_INTERVAL_SECONDS``.

Faults: throttling, network trouble and malformed answers are retried by the
gateway, then the connection backs off (with jitter) and keeps its state; a
bad signature or an expired token marks it ``failing`` with the platform's
message and sends a ``connection.failing`` webhook, and it stays so until new
credentials come (``PATCH /v1/connections/{id}``). Credentials are decrypted
only here, only for the call, and appear in no log line or error.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import socket
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

import httpx

from app.clock import Clock
from app.config import Settings
from app.connectors import repository
from app.connectors.models import Connection
from app.connectors.pdd.gateway import (
    EXPIRED_TOKEN_CODE,
    PddApiError,
    PddAuthError,
    PddCredentials,
    PddGateway,
    PddGatewayError,
    RateLimiter,
    backoff_delay,
)
from app.connectors.pdd.mapping import MappedRecords, map_orders, map_refunds
from app.connectors.pdd.windows import (
    MAX_WINDOW,
    Window,
    advance_synced_through,
    plan_windows,
    settled_horizon,
)
from app.connectors.secrets import SecretUnreadable, secret_box
from app.db.engine import Database
from app.events.validation import validate_batch
from app.ingest import road
from app.ops import metrics
from app.stores.repository import load_context
from app.webhooks.outbox import enqueue_notice

log = logging.getLogger("refundwatch.connectors")

MAX_PARALLEL = 16
"""Connections synced at once by one worker (each waits on the gateway, not the CPU)."""

IDLE_POLL_SECONDS = 5.0
"""The longest the loop sleeps with nothing due (a new connection wakes it sooner)."""

FAILURE_BACKOFF_CAP = timedelta(minutes=10)

Sleep = Callable[[float], Awaitable[None]]


class MalformedWindow(Exception):
    """A window whose records could not all be mapped: applied not at all, read again later."""


@dataclass(frozen=True, slots=True)
class SyncError:
    code: str
    message: str


@dataclass(frozen=True, slots=True)
class RefreshFailed:
    """A token refresh that did not give a new token: ``refused`` by the platform (the
    connection is failing) or not answered (throttled, network: tried again later)."""

    error: SyncError
    refused: bool


class Syncer:
    """The connector's loop in one worker process."""

    def __init__(
        self,
        db: Database,
        settings: Settings,
        clock: Clock,
        *,
        http: httpx.AsyncClient | None = None,
        sleep: Sleep = asyncio.sleep,
        on_deliveries: Callable[[], None] | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.db = db
        self.settings = settings
        self.clock = clock
        self.owner = f"{socket.gethostname()[:30]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._http = http
        self._own_http = http is None
        self._sleep = sleep
        self._on_deliveries = on_deliveries
        self._rng = rng
        self._limiters: dict[str, RateLimiter] = {}
        self._offsets: dict[int, timedelta] = {}
        self._wake = asyncio.Event()
        self._stopping = False
        self._running: set[asyncio.Task[None]] = set()
        self._started: dict[int, datetime] = {}  # when each running sync began (pokes)

    def wake(self) -> None:
        """Look for due connections now (one was just created or re-authorised)."""
        self._wake.set()

    def _client(self) -> httpx.AsyncClient:
        if self._http is None:
            self._http = httpx.AsyncClient(
                timeout=30.0, limits=httpx.Limits(max_connections=MAX_PARALLEL * 2)
            )
        return self._http

    async def close(self) -> None:
        self._stopping = True
        self._wake.set()
        for task in list(self._running):
            task.cancel()
        if self._running:
            await asyncio.wait(list(self._running), timeout=10)
        if self._own_http and self._http is not None:
            await self._http.aclose()

    async def run_forever(self) -> None:
        while not self._stopping:
            try:
                await self._start_due()
            except Exception:
                log.exception("connector round failed; retrying")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=IDLE_POLL_SECONDS)
            self._wake.clear()

    async def _start_due(self) -> None:
        free = MAX_PARALLEL - len(self._running)
        if free <= 0:
            return
        for connection_id in await self._claim(free):
            task = asyncio.create_task(self.sync(connection_id), name=f"sync-{connection_id}")
            self._running.add(task)
            task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._running.discard(task)
        self._wake.set()  # a slot is free: look again

    async def run_once(self) -> int:
        """Sync every due connection to the end, one round; returns how many (tests)."""
        ids = await self._claim(MAX_PARALLEL)
        await asyncio.gather(*(self.sync(i) for i in ids))
        return len(ids)

    async def _claim(self, limit: int) -> list[int]:
        now = self.clock.now()
        async with self.db.transaction() as session:
            return await repository.claim_due(
                session, owner=self.owner, now=now, lease_until=self._lease(now), limit=limit
            )

    def _lease(self, now: datetime) -> datetime:
        return now + timedelta(seconds=self.settings.sync_lease_seconds)

    def _limiter(self, client_id: str) -> RateLimiter:
        # The platform counts calls per app: every store of one app shares its budget.
        limiter = self._limiters.get(client_id)
        if limiter is None:
            limiter = self._limiters[client_id] = RateLimiter(self.settings.pdd_calls_per_minute)
        return limiter

    # ------------------------------------------------------------------ one connection

    async def sync(self, connection_id: int) -> None:
        """Sync one leased connection as far as it goes; never raises."""
        self._started[connection_id] = self.clock.now()
        try:
            gateway, record = await self._open(connection_id)
        except SecretUnreadable as exc:
            await self._finish(connection_id, auth_error=SyncError("secret_unreadable", str(exc)))
            return
        except Exception:
            log.exception("connection %s could not be opened", connection_id)
            await self._finish(connection_id, error=SyncError("internal", "could not start"))
            return
        if gateway is None or record is None:
            return
        refreshed = False
        while True:
            try:
                caught_up = await self._walk(gateway, record)
            except PddAuthError as exc:
                if exc.error_code == EXPIRED_TOKEN_CODE and gateway.can_refresh and not refreshed:
                    refreshed = True  # once per run: a token refused right after its renewal fails
                    failure = await self._refresh(connection_id, gateway)
                    if failure is None:
                        continue  # the same windows again, with the new token
                    if failure.refused:
                        await self._finish(connection_id, auth_error=failure.error, gateway=gateway)
                    else:
                        await self._finish(connection_id, error=failure.error, gateway=gateway)
                    return
                await self._finish(connection_id, auth_error=_platform_error(exc), gateway=gateway)
            except (PddGatewayError, MalformedWindow) as exc:
                log.warning(
                    "connection %s: %s (request %s)",
                    connection_id,
                    exc,
                    getattr(exc, "request_id", None),
                )
                await self._finish(connection_id, error=_sync_error(exc), gateway=gateway)
            except asyncio.CancelledError:
                self._started.pop(connection_id, None)
                with contextlib.suppress(Exception):
                    await asyncio.shield(self._release(connection_id))
                raise
            except Exception:
                log.exception("connection %s failed", connection_id)
                await self._finish(
                    connection_id, error=SyncError("internal", "unexpected error"), gateway=gateway
                )
            else:
                await self._finish(connection_id, gateway=gateway, again_now=not caught_up)
            return

    async def _refresh(self, connection_id: int, gateway: PddGateway) -> RefreshFailed | None:
        """Renew the expired access_token with the stored refresh_token, and store the new
        pair at once (the platform may retire the old refresh_token with this call)."""
        try:
            grant = await gateway.refresh_access_token()
        except PddAuthError as exc:
            return RefreshFailed(_platform_error(exc), refused=True)
        except PddApiError as exc:
            refused = not exc.retryable  # a refusal in the platform's words; throttling is not
            return RefreshFailed(_platform_error(exc), refused=refused)
        except PddGatewayError as exc:
            return RefreshFailed(_sync_error(exc), refused=False)
        box = secret_box(self.settings)
        now = self.clock.now()
        async with self.db.transaction() as session:
            record = await repository.get_connection(session, connection_id, lock=True)
            if record is None or record.lease_owner != self.owner:
                return RefreshFailed(SyncError("lease_lost", "another worker took over"), False)
            record.access_token_encrypted = box.encrypt(grant.access_token)
            if grant.refresh_token is not None:
                record.refresh_token_encrypted = box.encrypt(grant.refresh_token)
            record.token_refreshed_at = now
            record.updated_at = now
        log.info(
            "connection %s: access_token renewed with the refresh_token (request %s)",
            connection_id,
            grant.request_id,
        )
        return None

    async def _open(self, connection_id: int) -> tuple[PddGateway | None, Connection | None]:
        async with self.db.read() as session:
            record = await repository.get_connection(session, connection_id)
        if record is None or record.lease_owner != self.owner:
            return None, None
        box = secret_box(self.settings)
        credentials = PddCredentials(
            client_id=record.client_id,
            client_secret=box.decrypt(record.client_secret_encrypted),
            access_token=box.decrypt(record.access_token_encrypted),
            refresh_token=box.decrypt(record.refresh_token_encrypted)
            if record.refresh_token_encrypted
            else None,
        )
        gateway = PddGateway(
            self._client(),
            credentials,
            clock=self.clock,
            url=self.settings.pdd_gateway_url,
            limiter=self._limiter(record.client_id),
            sleep=self._sleep,
            rng=self._rng,
            clock_offset=self._offsets.get(connection_id, timedelta(0)),
        )
        return gateway, record

    async def _walk(self, gateway: PddGateway, record: Connection) -> bool:
        """Read and commit the planned windows in order; True when caught up."""
        async with self.db.read() as session:
            ctx = await load_context(session, record.store_id)
        aliases = ctx.policy.reason_aliases if ctx is not None else None
        windows = plan_windows(
            record.synced_through, gateway.platform_now(), limit=self.settings.sync_windows_per_run
        )
        for window in windows:
            orders = await gateway.read_orders(window)
            refunds = await gateway.read_refunds(window)
            mapped = MappedRecords()
            mapped.extend(map_orders(record.store_id, orders.records))
            mapped.extend(map_refunds(record.store_id, refunds.records, reason_aliases=aliases))
            if mapped.malformed:
                problem = mapped.malformed[0]
                raise MalformedWindow(
                    f"{len(mapped.malformed)} malformed record(s), e.g. {problem.record} "
                    f"{problem.key}: {problem.field} {problem.message}"
                )
            stable = orders.stable and refunds.stable
            calls = orders.calls + refunds.calls
            kept = await self._commit(
                record.id, record.store_id, gateway, window, mapped, stable, calls
            )
            if not kept:
                return True  # the lease was lost: another replica carries on
            self._offsets[record.id] = gateway.clock_offset
            if not stable:
                return False  # the window grew while it was read: read it again at once
        # A backfill cut at the round's window limit carries on at once.
        return (
            not windows
            or not windows[-1].settled
            or len(windows) < self.settings.sync_windows_per_run
        )

    async def _commit(
        self,
        connection_id: int,
        store_id: str,
        gateway: PddGateway,
        window: Window,
        mapped: MappedRecords,
        stable: bool,
        calls: int,
    ) -> bool:
        """One window's events, counts and position, in one transaction."""
        now = self.clock.now()
        platform_now = gateway.platform_now()
        batch = validate_batch(
            mapped.events,
            # Platform times may run ahead of ours: judge "in the future" by the later clock.
            now=max(now, platform_now),
            max_future=timedelta(seconds=self.settings.max_future_skew_seconds),
        )
        async with self.db.transaction() as session:
            record = await repository.hold_lease(
                session, connection_id, self.owner, self._lease(now)
            )
            if record is None or not record.enabled or record.status not in repository.SYNCING:
                return False
            outcome = await road.ingest(
                session,
                batch,
                now=now,
                default_timezone=self.settings.default_timezone,
                lock_whole_stores=True,
            )
            for result in outcome.answer.results:
                if result.status == "accepted":
                    record.events_accepted += 1
                elif result.status == "duplicate" or (
                    # A record seen again with a moved update time: the first sighting stays.
                    result.error is not None and result.error.code == "event_id_conflict"
                ):
                    record.events_duplicate += 1
                else:
                    record.events_rejected += 1
                    log.warning(
                        "connection %s: event %s rejected: %s",
                        connection_id,
                        result.event_id,
                        result.error.code if result.error else "?",
                    )
            record.calls += calls
            record.windows += 1
            record.last_sync_at = now
            if stable:
                record.synced_through = advance_synced_through(
                    record.synced_through, window, platform_now
                )
            if record.synced_through >= settled_horizon(platform_now) - MAX_WINDOW:
                record.status = "live"
            record.consecutive_failures = 0
            record.last_error_code = record.last_error_message = None
            record.last_error_at = None
            record.updated_at = now
        metrics.ingest_committed("connector", outcome.answer, outcome.started)
        if outcome.deliveries_enqueued and self._on_deliveries is not None:
            self._on_deliveries()
        return True

    async def _finish(
        self,
        connection_id: int,
        *,
        error: SyncError | None = None,
        auth_error: SyncError | None = None,
        gateway: PddGateway | None = None,
        again_now: bool = False,
    ) -> None:
        """Record how the sync ended, schedule the next one, release the lease."""
        now = self.clock.now()
        started = self._started.pop(connection_id, None)
        interval = timedelta(seconds=self.settings.sync_interval_seconds)
        notified = 0
        async with self.db.transaction() as session:
            record = await repository.hold_lease(session, connection_id, self.owner, now)
            if record is None:
                return
            if auth_error is not None:
                notified = await self._mark_failing(session, record, auth_error, now)
            elif error is not None:
                record.consecutive_failures += 1
                record.last_error_code, record.last_error_message = error.code, error.message
                record.last_error_at = now
                delay = backoff_delay(
                    record.consecutive_failures,
                    base=timedelta(seconds=15),
                    cap=FAILURE_BACKOFF_CAP,
                    rng=self._rng,
                )
                record.next_sync_at = now + max(delay, interval / 4)
            else:
                # A change pushed after this sync began may have missed its reads: again now.
                poked = (
                    record.poked_at is not None
                    and started is not None
                    and record.poked_at > started
                )
                record.next_sync_at = now if again_now or poked else now + interval
            record.lease_owner = None
            record.lease_expires_at = None
            record.updated_at = now
        if gateway is not None:
            self._offsets[connection_id] = gateway.clock_offset
        if notified and self._on_deliveries is not None:
            self._on_deliveries()

    async def _mark_failing(
        self, session: object, record: Connection, error: SyncError, now: datetime
    ) -> int:
        first = record.status != "failing"
        record.status = "failing"
        record.last_error_code, record.last_error_message = error.code, error.message
        record.last_error_at = now
        record.failing_since = record.failing_since or now
        if not first:
            return 0
        return await enqueue_notice(
            session,  # type: ignore[arg-type]
            "connection.failing",
            record.store_id,
            {
                "connection_id": record.id,
                "store_id": record.store_id,
                "platform": record.platform,
                "status": "failing",
                "error": {"code": error.code, "message": error.message},
                "at": now.isoformat(),
                "advice": {
                    "zh": "请在拼多多开放平台为该店铺重新授权，然后在 refundwatch 中更新"
                    f" access_token（PATCH /v1/connections/{record.id}）",
                    "en": "re-authorise the app for this store on the Pinduoduo open platform, "
                    f"then give refundwatch the new access_token (PATCH /v1/connections/{record.id})",
                },
            },
            now=now,
        )

    async def _release(self, connection_id: int) -> None:
        async with self.db.transaction() as session:
            await repository.release(session, connection_id, self.owner)


def _platform_error(exc: PddApiError) -> SyncError:
    detail = exc.error_msg or ""
    if exc.sub_msg and exc.sub_msg != detail:
        detail = f"{detail} ({exc.sub_msg})" if detail else exc.sub_msg
    return SyncError(str(exc.error_code), detail[:500] or "refused by the platform")


def _sync_error(exc: Exception) -> SyncError:
    if isinstance(exc, PddApiError):
        return _platform_error(exc)
    if isinstance(exc, MalformedWindow):
        return SyncError("malformed_record", str(exc)[:500])
    kind = type(exc).__name__.removeprefix("Pdd")
    request_id = getattr(exc, "request_id", None)
    suffix = f" (request {request_id})" if request_id else ""
    return SyncError(kind.lower(), f"{exc}{suffix}"[:500])
