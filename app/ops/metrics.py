"""Prometheus metrics: what committed, counted at the doors; facts of the database, read at scrape.

Counters and histograms move only after a commit, by exactly what it made
durable:

- ``refundwatch_events_total{status}`` and ``refundwatch_ingest_seconds{door}``:
  :func:`ingest_committed`, called by each door after its transaction (HTTP
  group commit, file imports, the PDD connector);
- ``refundwatch_alerts_total{type,tier}``: the road's evaluation registers its
  alerts on the session (:func:`count_alerts_on_commit`) and they are counted
  when that session commits — whatever committed them: an ingest, the clock's
  jobs, a store or policy edit. A rolled-back transaction counts nothing;
- ``refundwatch_deliveries_total{format,outcome}`` and
  ``refundwatch_delivery_seconds{format}``: :func:`attempt_recorded`, after the
  relay recorded an attempt;
- ``refundwatch_http_requests_total{method,route,status}`` and
  ``refundwatch_http_request_seconds{route}``: the request middleware.

Gauges that are facts of the database — scopes by state, the outbox, the
connectors' lag — are read when ``/metrics`` is scraped (:class:`DatabaseFacts`):
one cheap query each, under a 2-second statement timeout, shared by concurrent
scrapes and reused for :data:`FACTS_TTL_SECONDS`, so several replicas each
scraped every few seconds cost the database a handful of index reads.

Several uvicorn workers: ``refundwatch serve --workers N`` sets
``PROMETHEUS_MULTIPROC_DIR`` (a fresh directory) before the workers start, each
process writes its counters there (prometheus-client's multiprocess mode) and
whichever worker answers a scrape sums all of them. With one process, or with
no such directory, each process serves its own.
"""

from __future__ import annotations

import asyncio
import logging
import os
import tempfile
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Literal, Protocol

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Histogram,
    disable_created_metrics,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector
from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from app.clock import Clock
from app.db.base import UTCDateTime
from app.db.engine import Database
from app.ops.logs import ALERT_ORIGINS, current_request_id

log = logging.getLogger("refundwatch.metrics")
relay_log = logging.getLogger("refundwatch.relay")
ingest_log = logging.getLogger("refundwatch.ingest")

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
# Decided once, as prometheus-client decides it when first imported.
MULTIPROCESS = bool(os.environ.get(MULTIPROC_ENV))
if MULTIPROCESS:  # each metric below opens its file there at once
    Path(os.environ[MULTIPROC_ENV]).mkdir(parents=True, exist_ok=True)

disable_created_metrics()  # type: ignore[no-untyped-call]  # *_created doubles every family

PROCESS = CollectorRegistry(auto_describe=True)
"""This process's counters and histograms (summed over processes in multiprocess mode)."""

Door = Literal["http", "import", "connector"]
EVENT_STATUSES = ("accepted", "duplicate", "rejected")
SCOPE_STATES = ("breached", "approaching", "unrated", "ok")

EVENTS = Counter(
    "refundwatch_events",
    "Events answered by committed ingest transactions, by status.",
    ["status"],
    registry=PROCESS,
)
INGEST_SECONDS = Histogram(
    "refundwatch_ingest_seconds",
    "Seconds one ingest transaction took, from the road's first statement to the commit.",
    ["door"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
    registry=PROCESS,
)
ALERTS = Counter(
    "refundwatch_alerts",
    "Alerts committed (a state change of a scope against a tier, or a reminder).",
    ["type", "tier"],
    registry=PROCESS,
)
DELIVERIES = Counter(
    "refundwatch_deliveries",
    "Webhook delivery attempts recorded, per delivery (a robot digest counts each one).",
    ["format", "outcome"],
    registry=PROCESS,
)
DELIVERY_SECONDS = Histogram(
    "refundwatch_delivery_seconds",
    "Seconds one webhook request took (a digest is one request).",
    ["format"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 15, 30),
    registry=PROCESS,
)
HTTP_REQUESTS = Counter(
    "refundwatch_http_requests",
    "HTTP requests answered, by route template and status.",
    ["method", "route", "status"],
    registry=PROCESS,
)
HTTP_SECONDS = Histogram(
    "refundwatch_http_request_seconds",
    "Seconds from a request's arrival to the end of its answer, by route template.",
    ["route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
    registry=PROCESS,
)

# Series that exist before their first count, so dashboards and rate() start from zero.
for _type in ("alert.breached", "alert.approaching", "alert.resolved", "alert.reminder"):
    for _tier in ("demotion", "listing_ban", "delisting"):
        ALERTS.labels(type=_type, tier=_tier)
for _format in ("standard", "dingtalk", "wecom", "feishu"):
    DELIVERY_SECONDS.labels(format=_format)
    for _outcome in ("delivered", "retry", "failed"):
        DELIVERIES.labels(format=_format, outcome=_outcome)

# Children bound once: a labels() lookup per event would cost more than the increment.
_EVENTS_BY_STATUS = {status: EVENTS.labels(status=status) for status in EVENT_STATUSES}
_INGEST_BY_DOOR = {
    door: INGEST_SECONDS.labels(door=door) for door in ("http", "import", "connector")
}


class Answered(Protocol):
    """What a transaction answered (an ``IngestAnswer`` is one)."""

    @property
    def accepted(self) -> int: ...
    @property
    def duplicates(self) -> int: ...
    @property
    def rejected(self) -> int: ...


@dataclass(frozen=True, slots=True)
class Counts:
    """An :class:`Answered` made of counts (a file import's transaction spans many answers)."""

    accepted: int = 0
    duplicates: int = 0
    rejected: int = 0


def ingest_committed(door: Door, answered: Answered, started: float) -> None:
    """A door's ingest transaction committed: count its events, time it, say so at debug.

    ``started`` is the ``time.perf_counter()`` of the transaction's start.
    """
    seconds = time.perf_counter() - started
    if answered.accepted:
        _EVENTS_BY_STATUS["accepted"].inc(answered.accepted)
    if answered.duplicates:
        _EVENTS_BY_STATUS["duplicate"].inc(answered.duplicates)
    if answered.rejected:
        _EVENTS_BY_STATUS["rejected"].inc(answered.rejected)
    _INGEST_BY_DOOR[door].observe(seconds)
    if ingest_log.isEnabledFor(logging.DEBUG):
        ingest_log.debug(
            "ingest transaction committed",
            extra={
                "door": door,
                "accepted": answered.accepted,
                "duplicates": answered.duplicates,
                "rejected": answered.rejected,
                "duration_ms": round(seconds * 1000, 2),
            },
        )


class AlertLike(Protocol):
    @property
    def alert_id(self) -> str: ...
    @property
    def type(self) -> str: ...
    @property
    def tier(self) -> str: ...


_ALERTS_KEY = "refundwatch_alerts_to_count"


def count_alerts_on_commit(session: AsyncSession, alerts: Sequence[AlertLike]) -> None:
    """Count these alerts (and remember which request raised them) if ``session`` commits."""
    if alerts:
        request_id = current_request_id()
        pending = session.sync_session.info.setdefault(_ALERTS_KEY, [])
        pending.extend((a.type, a.tier, a.alert_id, request_id) for a in alerts)


@event.listens_for(Session, "after_commit")
def _count_committed_alerts(session: Session) -> None:
    for type_, tier, alert_id, request_id in session.info.pop(_ALERTS_KEY, ()):
        ALERTS.labels(type=type_, tier=tier).inc()
        if request_id:
            ALERT_ORIGINS.remember(alert_id, request_id)


@event.listens_for(Session, "after_rollback")
def _forget_rolled_back_alerts(session: Session) -> None:
    session.info.pop(_ALERTS_KEY, None)


class DeliveryLike(Protocol):
    @property
    def id(self) -> int: ...
    @property
    def alert_id(self) -> str | None: ...


class SubscriptionLike(Protocol):
    @property
    def id(self) -> int: ...
    @property
    def format(self) -> str: ...


class AttemptLike(Protocol):
    @property
    def status_code(self) -> int | None: ...
    @property
    def duration_ms(self) -> int: ...


def attempt_recorded(
    sub: SubscriptionLike,
    deliveries: Sequence[DeliveryLike],
    outcome: str,
    attempt: AttemptLike,
) -> None:
    """The relay recorded one attempt (one HTTP request) for ``deliveries``: count it, log it.

    The line names the request that raised the alerts when this process ingested
    them (``request_id``), and never the URL (a robot URL carries its token).
    """
    DELIVERIES.labels(format=sub.format, outcome=outcome).inc(len(deliveries))
    DELIVERY_SECONDS.labels(format=sub.format).observe(attempt.duration_ms / 1000)
    relay_log.info(
        "webhook %s attempt: %s",
        sub.id,
        outcome,
        extra={
            "request_id": ALERT_ORIGINS.of(d.alert_id for d in deliveries),
            "webhook_id": sub.id,
            "format": sub.format,
            "deliveries": [d.id for d in deliveries],
            "alert_ids": [d.alert_id for d in deliveries if d.alert_id],
            "outcome": outcome,
            "status_code": attempt.status_code,
            "duration_ms": attempt.duration_ms,
        },
    )


_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
_HTTP_CHILDREN: dict[tuple[str, str, int], tuple[Counter, Histogram]] = {}


def request_answered(method: str, route: str, status: int, seconds: float) -> None:
    """The request middleware's count of one answered request."""
    if method not in _METHODS:  # a client chooses the method: keep the label bounded
        method = "OTHER"
    key = (method, route, status)
    children = _HTTP_CHILDREN.get(key)
    if children is None:  # bounded: methods × route templates × statuses
        children = (
            HTTP_REQUESTS.labels(method=method, route=route, status=str(status)),
            HTTP_SECONDS.labels(route=route),
        )
        _HTTP_CHILDREN[key] = children
    children[0].inc()
    children[1].observe(seconds)


# --- facts of the database ---------------------------------------------------

FACTS_TTL_SECONDS = 5.0
CONNECTIONS_SHOWN = 1000
"""At most this many connections get a lag series (the most behind first)."""

_SCOPES = text(
    "SELECT worst, count(*) AS scopes FROM ("
    " SELECT max(CASE state WHEN 'breached' THEN 3 WHEN 'approaching' THEN 2"
    " WHEN 'unrated' THEN 1 ELSE 0 END) AS worst"
    " FROM alert_states GROUP BY store_id, product_id) AS per_scope "
    "GROUP BY worst"
)
_WORST = {3: "breached", 2: "approaching", 1: "unrated", 0: "ok"}
_OUTBOX = text(
    "SELECT count(*) AS pending,"
    " min(CASE WHEN status = 'pending' THEN next_attempt_at END) AS oldest_due "
    "FROM deliveries WHERE status IN ('pending', 'delivering')"
).columns(oldest_due=UTCDateTime())
_LAG = text(
    "SELECT store_id, synced_through FROM connections WHERE enabled = :yes "
    "ORDER BY synced_through LIMIT :shown"
).columns(synced_through=UTCDateTime())


@dataclass(slots=True)
class Facts:
    """What the database says right now (``up`` False: it did not answer)."""

    up: bool
    scopes: dict[str, int] = field(default_factory=dict)
    outbox_pending: int = 0
    outbox_oldest_due_seconds: float = 0.0
    connection_lag: dict[str, float] = field(default_factory=dict)


class DatabaseFacts:
    """Reads :class:`Facts` for scrapes: one read at a time, reused for a few seconds."""

    def __init__(self, db: Database, clock: Clock, ttl: float = FACTS_TTL_SECONDS) -> None:
        self._db = db
        self._clock = clock
        self._ttl = ttl
        self._lock = asyncio.Lock()
        self._facts: Facts | None = None
        self._read_at = 0.0

    async def read(self) -> Facts:
        async with self._lock:  # concurrent scrapes share one read
            if self._facts is None or time.monotonic() - self._read_at >= self._ttl:
                self._facts = await self._query()
                self._read_at = time.monotonic()
            return self._facts

    async def _query(self) -> Facts:
        now = self._clock.now()
        try:
            async with self._db.read() as session:
                if self._db.dialect == "postgresql":
                    # Bounded whatever the tables hold; LOCAL ends with the transaction.
                    await session.execute(text("SET LOCAL statement_timeout = '2s'"))
                scopes = {state: 0 for state in SCOPE_STATES}
                for worst, count in await session.execute(_SCOPES):
                    scopes[_WORST.get(int(worst), "ok")] += int(count)
                pending, oldest_due = (await session.execute(_OUTBOX)).one()
                lag_rows = await session.execute(_LAG, {"yes": True, "shown": CONNECTIONS_SHOWN})
                lag = {
                    store_id: max(0.0, (now - synced_through).total_seconds())
                    for store_id, synced_through in lag_rows
                }
        except Exception:
            log.warning("metrics: the database did not answer", exc_info=True)
            return Facts(up=False)
        return Facts(
            up=True,
            scopes=scopes,
            outbox_pending=int(pending or 0),
            outbox_oldest_due_seconds=_age(now, oldest_due),
            connection_lag=lag,
        )


def _age(now: datetime, since: datetime | None) -> float:
    return max(0.0, (now - since).total_seconds()) if since is not None else 0.0


class _FactsCollector(Collector):
    """Facts already read, as gauge families (collect() runs synchronously)."""

    def __init__(self, facts: Facts) -> None:
        self._facts = facts

    def collect(self) -> Iterator[GaugeMetricFamily]:
        facts = self._facts
        yield GaugeMetricFamily(
            "refundwatch_database_up",
            "1 when the database answered this scrape's queries.",
            value=1.0 if facts.up else 0.0,
        )
        if not facts.up:
            return
        scopes = GaugeMetricFamily(
            "refundwatch_scopes",
            "Scopes (stores and products) with an alert state, by their worst tier's state.",
            labels=["state"],
        )
        for state in SCOPE_STATES:
            scopes.add_metric([state], facts.scopes.get(state, 0))
        yield scopes
        yield GaugeMetricFamily(
            "refundwatch_outbox_pending",
            "Webhook deliveries waiting or being sent.",
            value=facts.outbox_pending,
        )
        yield GaugeMetricFamily(
            "refundwatch_outbox_oldest_due_seconds",
            "How long the oldest due delivery has waited (0 when none is due).",
            value=facts.outbox_oldest_due_seconds,
        )
        lag = GaugeMetricFamily(
            "refundwatch_connection_lag_seconds",
            "How far each enabled marketplace connection's sync is behind now.",
            labels=["store_id"],
        )
        for store_id, seconds in sorted(facts.connection_lag.items()):
            lag.add_metric([store_id], seconds)
        yield lag


class _ProcessCollector(Collector):
    """This process's registry, as one collector of the scrape's registry."""

    def collect(self) -> Iterable[Metric]:
        return PROCESS.collect()


def exposition(facts: Facts) -> bytes:
    """The text exposition of this process (or of every worker) plus the database facts."""
    registry = CollectorRegistry(auto_describe=False)
    if MULTIPROCESS:
        multiprocess.MultiProcessCollector(  # type: ignore[no-untyped-call]
            registry, path=os.environ[MULTIPROC_ENV]
        )
    else:
        registry.register(_ProcessCollector())
    registry.register(_FactsCollector(facts))
    return generate_latest(registry)


def prepare_multiprocess_dir(existing: str | None) -> tuple[Path, bool]:
    """The directory for ``serve --workers N``: emptied if given, else a fresh temporary one.

    Returns it and whether it was created here (the caller removes it at exit).
    Left-over files would carry a previous run's counts into this one.
    """
    if existing:
        path = Path(existing)
        path.mkdir(parents=True, exist_ok=True)
        for stale in path.glob("*.db"):
            stale.unlink()
        return path, False
    return Path(tempfile.mkdtemp(prefix="refundwatch-metrics-")), True
