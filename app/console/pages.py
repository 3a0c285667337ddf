"""What each console page shows, read through the services and repositories the API uses.

One function per page; each returns a plain value the template renders, and reads with a
fixed number of statements (none per store, per alert or per delivery).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import exists, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.alerts import repository as alerts_repository
from app.alerts.models import Alert, Silence
from app.api.pagination import keyset, next_page
from app.config import Settings
from app.connectors import repository as connectors_repository
from app.connectors.models import Connection
from app.connectors.schemas import ConnectionOut
from app.connectors.service import connection_out
from app.console import queries
from app.console import repository as console_repository
from app.console.models import AlertAcknowledgement
from app.console.overview import (
    STATES,
    StoreRow,
    overview_rows,
    series_range,
    state_counts,
    tier_columns,
    worst_of,
    worst_state,
)
from app.figures import repository as figures_repository
from app.figures import service as figures_service
from app.figures.models import STORE_SCOPE
from app.figures.rules import EMPTY, TREND_DAYS, WindowFigures, sliding_windows, trend
from app.figures.schemas import PlatformDay, ProductMetrics, RefundItem, SkuMetrics
from app.imports import repository as imports_repository
from app.imports.models import Import, ImportRowError
from app.imports.service import status_of
from app.policies.tiers import TierVerdict
from app.stores.repository import load_contexts
from app.stores.rules import StoreContext, zone
from app.webhooks import repository as webhooks_repository
from app.webhooks.models import Delivery, DeliveryAttempt, WebhookSubscription

CHART_DAYS = 90
PRODUCTS_SHOWN = 100
# SKUs are read per product (one statement each), so only for the worst few at risk: the page
# costs a bounded number of statements however many products the store has.
SKU_PRODUCTS = 5
SKUS_SHOWN = 20
BREAKDOWNS = ("courier", "ship_hours", "reason", "kind")
PENDING_SHOWN = 100
STORE_ALERTS_SHOWN = 5
ALERTS_PER_PAGE = 50
DELIVERIES_SHOWN = 50
IMPORTS_SHOWN = 30
IMPORT_ERRORS_SHOWN = 100


# --------------------------------------------------------------------------- overview


@dataclass(frozen=True, slots=True)
class OverviewPage:
    rows: list[StoreRow]
    store_count: int
    counts: dict[str, int]
    tier_columns: list[str]
    state: str | None
    search: str
    window_days: int | None  # when every store has the same window


async def overview_page(
    session: AsyncSession, now: datetime, *, state: str | None, search: str
) -> OverviewPage:
    """Every store worst first (filtered by worst state and by id/name when asked).

    Three statements whatever the number of stores: the stores with their policies, their
    store-scope daily rows, and the count of products at risk per store.
    """
    contexts = await queries.all_store_contexts(session)
    span = series_range(contexts, now)
    series = (
        await queries.store_daily_series(session, [c.store_id for c in contexts], *span)
        if span is not None
        else {}
    )
    at_risk = await queries.products_at_risk(session)
    rows = overview_rows(contexts, series, at_risk, now)
    counts = state_counts(rows)
    shown = rows
    if state in STATES:
        shown = [r for r in shown if r.state == state]
    needle = search.strip().lower()
    if needle:
        shown = [
            r for r in shown if needle in r.store_id.lower() or needle in (r.ctx.name or "").lower()
        ]
    windows = {c.window_days for c in contexts}
    return OverviewPage(
        rows=shown,
        store_count=len(rows),
        counts=counts,
        tier_columns=tier_columns(rows),
        state=state if state in STATES else None,
        search=search.strip(),
        window_days=windows.pop() if len(windows) == 1 else None,
    )


# --------------------------------------------------------------------------- store


@dataclass(frozen=True, slots=True)
class ProductLine:
    metrics: ProductMetrics
    state: str
    trend: str | None


@dataclass(frozen=True, slots=True)
class PendingRefund:
    item: RefundItem
    requested_at: datetime | None


@dataclass(frozen=True, slots=True)
class SkuGroup:
    """The SKUs of one product at risk, worst first."""

    product_id: str
    state: str
    skus: list[SkuMetrics]
    more: bool


@dataclass(frozen=True, slots=True)
class StorePage:
    ctx: StoreContext
    as_of: date
    window: tuple[date, date]
    figures: WindowFigures
    tiers: list[TierVerdict]
    state: str
    trend: str | None
    history: list[tuple[date, WindowFigures]]
    chart: dict[str, Any]
    products: list[ProductLine]
    product_count: int
    pending: list[PendingRefund]
    pending_more: bool
    alerts: list[Alert]
    platform_figures: list[PlatformDay]
    skus: list[SkuGroup]
    breakdowns: dict[str, list[Any]]


def product_state(metrics: ProductMetrics) -> str:
    """A product's worst tier state (``ok`` for a policy without product tiers)."""
    return worst_of(t.state for t in metrics.tiers)


def chart_data(
    ctx: StoreContext,
    history: Sequence[tuple[date, WindowFigures]],
    labels: dict[str, str],
    tier_labels: dict[str, str],
    platform: Sequence[PlatformDay] = (),
) -> dict[str, Any]:
    """The 90-day chart's series, embedded in the page as JSON (no request fetches it).

    Rates are percentages rounded for drawing only; the page's numbers come from counts.
    The platform's own rate, on the days the seller typed it in, is drawn as points.
    """
    store_tiers = [rule for rule in ctx.policy.tiers if rule.scope == "store"]
    return {
        "days": [day.isoformat() for day, _ in history],
        "rate": [
            round(f.quality_refunds * 100 / f.orders, 4) if f.orders else None for _, f in history
        ],
        "count": [f.quality_refunds for _, f in history],
        "orders": [f.orders for _, f in history],
        "lines": [
            {
                "tier": rule.tier,
                "label": tier_labels.get(rule.tier, rule.tier),
                "rate": float(rule.rate_threshold * 100),
                "min_count": rule.min_count,
            }
            for rule in store_tiers
        ],
        "platform": [
            [p.day.isoformat(), round(float(Decimal(p.platform.quality_refund_rate)) * 100, 4)]
            for p in platform
            if p.platform.quality_refund_rate is not None
        ],
        "labels": labels,
    }


async def store_page(
    session: AsyncSession,
    ctx: StoreContext,
    now: datetime,
    *,
    labels: dict[str, str],
    tier_labels: dict[str, str],
) -> StorePage:
    """A store's figures, 90 days of its rolling window, its products, what can be turned."""
    as_of = ctx.today(now)
    first = as_of - timedelta(days=CHART_DAYS - 1)
    series = await figures_repository.daily_series(
        session, ctx.store_id, STORE_SCOPE, first - timedelta(days=ctx.window_days - 1), as_of
    )
    history = sliding_windows(series, first, as_of, ctx.window_days)
    by_day = dict(history)
    current = by_day.get(as_of, EMPTY)
    week_ago = by_day.get(as_of - timedelta(days=TREND_DAYS), EMPTY)
    tiers = ctx.policy.verdicts(current.orders, current.quality_refunds, "store")

    start, end = ctx.window(as_of)
    products_now = await figures_repository.window_figures(session, ctx.store_id, start, end)
    week_start, week_end = ctx.window(as_of - timedelta(days=TREND_DAYS))
    products_before = await figures_repository.window_figures(
        session, ctx.store_id, week_start, week_end
    )
    metrics = [
        figures_service.product_metrics(ctx, product_id, f)
        for product_id, f in products_now.items()
        if product_id != STORE_SCOPE and f.has_data
    ]
    metrics.sort(key=figures_service.worst_first)
    products = [
        ProductLine(
            metrics=m,
            state=product_state(m),
            trend=trend(products_now[m.product_id], products_before.get(m.product_id, EMPTY)),
        )
        for m in metrics[:PRODUCTS_SHOWN]
    ]

    refunds = await figures_service.refund_list(
        session,
        ctx,
        as_of,
        quality=True,
        outcome=None,
        pending=True,
        limit=PENDING_SHOWN,
        cursor=None,
    )
    pending = [
        PendingRefund(
            item=item,
            requested_at=datetime.fromisoformat(item.requested_at) if item.requested_at else None,
        )
        for item in refunds.items
    ]
    skus: list[SkuGroup] = []
    for line in products:
        if len(skus) == SKU_PRODUCTS or line.state not in ("breached", "approaching"):
            break  # worst first: the products at risk come first
        sku_page = await figures_service.sku_list(
            session, ctx, line.metrics.product_id, as_of, limit=SKUS_SHOWN, cursor=None
        )
        skus.append(
            SkuGroup(
                product_id=line.metrics.product_id,
                state=line.state,
                skus=sku_page.items,
                more=sku_page.next_cursor is not None,
            )
        )
    breakdowns: dict[str, list[Any]] = {}
    for by in BREAKDOWNS:
        breakdowns[by] = list(
            (await figures_service.breakdown(session, ctx, as_of, by, None)).items
        )
    platform = (await figures_service.platform_figures(session, ctx, first, as_of)).days
    alerts = list(
        await session.scalars(
            alerts_repository.alerts_query(
                store_id=ctx.store_id, product_id=None, tier=None, type=None, since=None
            )
            .order_by(Alert.id.desc())
            .limit(STORE_ALERTS_SHOWN)
        )
    )
    return StorePage(
        ctx=ctx,
        as_of=as_of,
        window=(start, end),
        figures=current,
        tiers=tiers,
        state=worst_state(tiers),
        trend=trend(current, week_ago),
        history=history,
        chart=chart_data(ctx, history, labels, tier_labels, platform),
        products=products,
        product_count=len(metrics),
        pending=pending,
        pending_more=refunds.next_cursor is not None,
        alerts=alerts,
        platform_figures=platform,
        skus=skus,
        breakdowns=breakdowns,
    )


# --------------------------------------------------------------------------- alerts


@dataclass(frozen=True, slots=True)
class AlertsPage:
    alerts: list[Alert]
    acknowledgements: dict[str, AlertAcknowledgement]
    zones: dict[str, ZoneInfo]
    silences: list[Silence]
    store_ids: list[str]
    next_cursor: str | None
    filters: dict[str, str]


async def alerts_page(
    session: AsyncSession,
    now: datetime,
    settings: Settings,
    *,
    store_id: str | None,
    tier: str | None,
    alert_type: str | None,
    unacknowledged: bool,
    cursor: str | None,
) -> AlertsPage:
    """The alert history newest first, a page at a time, with who acknowledged what."""
    query = alerts_repository.alerts_query(
        store_id=store_id, product_id=None, tier=tier, type=alert_type, since=None
    )
    if unacknowledged:
        query = query.where(
            ~exists(
                select(AlertAcknowledgement.alert_id).where(
                    AlertAcknowledgement.alert_id == Alert.alert_id
                )
            )
        )
    rows = list(
        await session.scalars(keyset(query, Alert.id, cursor, ALERTS_PER_PAGE, descending=True))
    )
    alerts, next_cursor = next_page(rows, ALERTS_PER_PAGE, lambda a: a.id)
    acks = await console_repository.acknowledgements(session, [a.alert_id for a in alerts])
    silences = list(
        await session.scalars(
            alerts_repository.silences_query(active_at=now).order_by(Silence.until)
        )
    )
    zone_ids = sorted({a.store_id for a in alerts} | {s.store_id for s in silences if s.store_id})
    contexts = await load_contexts(session, zone_ids)
    filters = {
        name: value
        for name, value in (
            ("store_id", store_id),
            ("tier", tier),
            ("type", alert_type),
            ("unacknowledged", "1" if unacknowledged else None),
        )
        if value
    }
    return AlertsPage(
        alerts=alerts,
        acknowledgements=acks,
        zones=zones_of(contexts, zone_ids, settings),
        silences=silences,
        store_ids=await queries.store_ids(session),
        next_cursor=next_cursor,
        filters=filters,
    )


def zones_of(
    contexts: dict[str, StoreContext], store_ids: Sequence[str], settings: Settings
) -> dict[str, ZoneInfo]:
    """Each store's zone; a store without a row (deleted, or not yet created) gets the
    default zone new stores get."""
    fallback = zone(settings.default_timezone)
    return {s: contexts[s].tz if s in contexts else fallback for s in store_ids}


# --------------------------------------------------------------------------- webhooks


@dataclass(frozen=True, slots=True)
class WebhooksPage:
    subscriptions: list[WebhookSubscription]
    counts: dict[int, dict[str, int]]
    deliveries: list[Delivery]
    attempts: dict[int, list[DeliveryAttempt]]
    webhook_id: int | None
    status: str | None
    zone: ZoneInfo


async def webhooks_page(
    session: AsyncSession, settings: Settings, *, webhook_id: int | None, status: str | None
) -> WebhooksPage:
    """Subscriptions with their delivery counts, the newest deliveries and their attempts."""
    subscriptions = list(
        await session.scalars(
            webhooks_repository.subscriptions_query().order_by(WebhookSubscription.id)
        )
    )
    deliveries = await queries.recent_deliveries(
        session, webhook_id=webhook_id, status=status, limit=DELIVERIES_SHOWN
    )
    return WebhooksPage(
        subscriptions=subscriptions,
        counts=await queries.delivery_counts(session),
        deliveries=deliveries,
        attempts=await webhooks_repository.attempts_of(session, deliveries),
        webhook_id=webhook_id,
        status=status,
        # Deliveries belong to no one store: they are shown in the zone new stores get.
        zone=zone(settings.default_timezone),
    )


# --------------------------------------------------------------------------- connections, imports


@dataclass(frozen=True, slots=True)
class ImportLine:
    record: Import
    status: str


@dataclass(frozen=True, slots=True)
class ConnectionsPage:
    connections: list[ConnectionOut]
    imports: list[ImportLine]
    zones: dict[str, ZoneInfo]
    default_zone: ZoneInfo
    store_ids: list[str]
    development_key: bool


async def connections_page(
    session: AsyncSession, settings: Settings, now: datetime
) -> ConnectionsPage:
    """The marketplace connections (status, lag, last error) and the latest imports."""
    connections = list(
        await session.scalars(
            connectors_repository.connections_query(None).order_by(
                Connection.store_id, Connection.id
            )
        )
    )
    imports = list(
        await session.scalars(
            imports_repository.imports_query(None).order_by(Import.id.desc()).limit(IMPORTS_SHOWN)
        )
    )
    zone_ids = sorted(
        {c.store_id for c in connections} | {i.store_id for i in imports if i.store_id}
    )
    contexts = await load_contexts(session, zone_ids)
    return ConnectionsPage(
        connections=[connection_out(c, now) for c in connections],
        imports=[ImportLine(record=i, status=status_of(i, now)) for i in imports],
        zones=zones_of(contexts, zone_ids, settings),
        default_zone=zone(settings.default_timezone),
        store_ids=await queries.store_ids(session),
        # Credentials are then encrypted with <data dir>/secret.key (app.connectors.secrets).
        development_key=bool(connections) and settings.secret_key is None,
    )


@dataclass(frozen=True, slots=True)
class ImportPage:
    record: Import
    status: str
    errors: list[ImportRowError]
    zone: ZoneInfo


async def import_page(
    session: AsyncSession, settings: Settings, import_id: int, now: datetime
) -> ImportPage | None:
    """One import with its first refused rows, or None when there is no such import."""
    record = await imports_repository.get_import(session, import_id)
    if record is None:
        return None
    errors = list(
        await session.scalars(
            imports_repository.errors_query(import_id)
            .order_by(ImportRowError.id)
            .limit(IMPORT_ERRORS_SHOWN)
        )
    )
    contexts = await load_contexts(session, [record.store_id] if record.store_id else [])
    tz = (
        contexts[record.store_id].tz
        if record.store_id in contexts
        else zone(settings.default_timezone)
    )
    return ImportPage(record=record, status=status_of(record, now), errors=errors, zone=tz)
