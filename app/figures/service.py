"""Reading the figures: a store's metrics, its history, its products, its refunds.

Every read touches at most ``window_days`` daily rows per scope (DESIGN §9),
except the refund list, which reads the refunds requested in the window.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from fractions import Fraction
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.api.pagination import decode_cursor, encode_cursor, invalid_cursor, offset_page
from app.errors import field_error
from app.events.fold import RefundState
from app.events.vocabulary import OUTCOME_BY_STAGE, STAGE_NAMES
from app.figures import repository
from app.figures.models import STORE_SCOPE, PlatformFigures
from app.figures.rules import (
    TREND_DAYS,
    WindowFigures,
    count_clears_on,
    figure_fields,
    is_counted_quality_refund,
    is_quality_refund,
    sliding_windows,
    trend,
    window_sum,
)
from app.figures.schemas import (
    Breakdown,
    HistoryPoint,
    MetricsHistory,
    OrderBreakdownItem,
    PlatformDay,
    PlatformFiguresOut,
    PlatformNumbers,
    ProductMetrics,
    ProductPage,
    RefundBreakdownItem,
    RefundItem,
    RefundPage,
    SkuMetrics,
    SkuPage,
    StoreMetrics,
    TierStatus,
)
from app.policies.tiers import STATE_SEVERITY, TierScope, quality_refund_rate
from app.stores.rules import StoreContext

MAX_HISTORY_DAYS = 400


def _week_before(ctx: StoreContext, as_of: date) -> tuple[date, date]:
    return ctx.window(as_of - timedelta(days=TREND_DAYS))


def tier_statuses(
    ctx: StoreContext,
    figures: WindowFigures,
    scope: TierScope,
    as_of: date,
    series: Mapping[date, WindowFigures] | None,
) -> list[TierStatus]:
    """The scope's tiers, each breached one with the day its count clears by itself."""
    statuses = []
    for verdict in ctx.policy.judge(figures, scope):
        clears = None
        if verdict.state == "breached" and series is not None:
            counts = {day: ctx.policy.count(f) for day, f in series.items()}
            clears = count_clears_on(counts, as_of, ctx.window_days, verdict.min_count)
        statuses.append(TierStatus.of(verdict, clears))
    return statuses


async def store_metrics(session: AsyncSession, ctx: StoreContext, as_of: date) -> StoreMetrics:
    """The store's figures, tiers, trend and count_clears_on: one read of N + 7 daily rows."""
    start, end = ctx.window(as_of)
    week = _week_before(ctx, as_of)
    series = await repository.daily_series(session, ctx.store_id, STORE_SCOPE, week[0], end)
    figures = window_sum(series, start, end)
    return StoreMetrics(
        store_id=ctx.store_id,
        as_of=as_of,
        window_days=ctx.window_days,
        window_start=start,
        trend=trend(figures, window_sum(series, *week)),
        tiers=tier_statuses(ctx, figures, "store", as_of, series),
        **figure_fields(figures),
    )


async def metrics_history(
    session: AsyncSession, ctx: StoreContext, first: date | None, last: date
) -> MetricsHistory:
    first = first or last - timedelta(days=29)
    if first > last or (last - first).days >= MAX_HISTORY_DAYS:
        raise field_error(
            "query.from",
            "invalid_range",
            f"from must be on or before to, and the range at most {MAX_HISTORY_DAYS} days",
        )
    series = await repository.daily_series(
        session, ctx.store_id, STORE_SCOPE, first - timedelta(days=ctx.window_days - 1), last
    )
    return MetricsHistory(
        store_id=ctx.store_id,
        window_days=ctx.window_days,
        points=[
            HistoryPoint(day=day, **figure_fields(f))
            for day, f in sliding_windows(series, first, last, ctx.window_days)
        ],
    )


def product_metrics(
    ctx: StoreContext,
    product_id: str,
    f: WindowFigures,
    *,
    week_ago: WindowFigures | None = None,
    as_of: date | None = None,
    series: Mapping[date, WindowFigures] | None = None,
) -> ProductMetrics:
    return ProductMetrics(
        product_id=product_id,
        trend=trend(f, week_ago) if week_ago is not None else None,
        tiers=tier_statuses(ctx, f, "product", as_of, series)
        if as_of
        else [TierStatus.of(v) for v in ctx.policy.judge(f, "product")],
        **figure_fields(f),
    )


def worst_first(item: ProductMetrics) -> tuple[int, int, int, str]:
    """Breached, then approaching; then fewest refunds until breach; then most refunds."""
    severity = max((STATE_SEVERITY[t.state] for t in item.tiers), default=0)  # type: ignore[index]
    headroom = min(
        (t.refunds_until_breach for t in item.tiers if t.refunds_until_breach is not None),
        default=1 << 30,
    )
    return (-severity, headroom, -item.quality_refunds, item.product_id)


async def product_list(
    session: AsyncSession, ctx: StoreContext, as_of: date, *, limit: int, cursor: str | None
) -> ProductPage:
    """Every product with data in the window, worst first, each with trend and tiers.

    Two reads: both windows of every product in one scan, then the daily rows of
    the breached products only (for ``count_clears_on``).
    """
    start, end = ctx.window(as_of)
    scopes = await repository.scope_windows(
        session, ctx.store_id, (start, end), _week_before(ctx, as_of)
    )
    products = {p: w for p, w in scopes.items() if p != STORE_SCOPE and w[0].has_data}
    breached = [
        p
        for p, (f, _week) in products.items()
        if any(v.state == "breached" for v in ctx.policy.judge(f, "product"))
    ]
    series = await repository.scope_days(session, ctx.store_id, breached, start, end)
    items = [
        product_metrics(ctx, p, f, week_ago=week, as_of=as_of, series=series.get(p, {}))
        for p, (f, week) in products.items()
    ]
    items.sort(key=worst_first)
    page, next_cursor = offset_page(items, cursor, limit)
    return ProductPage(
        store_id=ctx.store_id,
        as_of=as_of,
        window_days=ctx.window_days,
        items=page,
        next_cursor=next_cursor,
    )


def _sku_order(item: SkuMetrics) -> tuple[int, Fraction, str]:
    rate = Fraction(item.quality_refunds, item.orders) if item.orders else Fraction(0)
    return (-item.quality_refunds, -rate, item.sku_id)


async def sku_list(
    session: AsyncSession,
    ctx: StoreContext,
    product_id: str,
    as_of: date,
    *,
    limit: int,
    cursor: str | None,
) -> SkuPage:
    """A product's SKUs with data in the window: most quality refunds first, then rate."""
    start, end = ctx.window(as_of)
    skus = await repository.sku_windows(
        session, ctx.store_id, product_id, (start, end), _week_before(ctx, as_of)
    )
    items = [
        SkuMetrics(sku_id=sku, trend=trend(f, week), **figure_fields(f))
        for sku, (f, week) in skus.items()
        if f.has_data
    ]
    items.sort(key=_sku_order)
    page, next_cursor = offset_page(items, cursor, limit)
    return SkuPage(
        store_id=ctx.store_id,
        product_id=product_id,
        as_of=as_of,
        window_days=ctx.window_days,
        items=page,
        next_cursor=next_cursor,
    )


def _key_order(key: str | None) -> tuple[bool, str]:
    return (key is None, key or "")


async def breakdown(
    session: AsyncSession, ctx: StoreContext, as_of: date, by: str, product_id: str | None
) -> Breakdown:
    """The window's orders or quality refunds split by courier, ship_hours, reason or kind."""
    start, end = ctx.window(as_of)
    sums = await repository.breakdown_sums(
        session, ctx.store_id, product_id or STORE_SCOPE, by, start, end
    )
    items: list[OrderBreakdownItem] | list[RefundBreakdownItem]
    if by in ("courier", "ship_hours"):
        orders_items = [
            OrderBreakdownItem(
                key=key or None,
                orders=orders,
                quality_refunds=quality,
                quality_refund_rate=quality_refund_rate(quality, orders),
            )
            for key, orders, quality in sums
            if orders or quality
        ]
        orders_items.sort(key=lambda i: (-i.quality_refunds, *_key_order(i.key)))
        items = orders_items
    else:
        refund_items = [
            RefundBreakdownItem(key=key or None, quality_refunds=quality)
            for key, _orders, quality in sums
            if quality
        ]
        refund_items.sort(key=lambda i: (-i.quality_refunds, *_key_order(i.key)))
        items = refund_items
    return Breakdown(
        store_id=ctx.store_id,
        product_id=product_id,
        by=by,
        as_of=as_of,
        window_days=ctx.window_days,
        window_start=start,
        items=items,
    )


def _refund_position(cursor: str | None) -> tuple[datetime, str] | None:
    """(requested_at, refund_id) of the last refund of the previous page."""
    position = decode_cursor(cursor, list)
    if position is None:
        return None
    match position:
        case [str(at_text), str(refund_id)]:
            try:
                at = datetime.fromisoformat(at_text)
            except ValueError:
                raise invalid_cursor() from None
            if at.tzinfo is not None:
                return at, refund_id
    raise invalid_cursor()


async def refund_list(
    session: AsyncSession,
    ctx: StoreContext,
    as_of: date,
    *,
    quality: bool | None,
    outcome: str | None,
    pending: bool | None,
    limit: int,
    cursor: str | None,
) -> RefundPage:
    start, end = ctx.window(as_of)
    lower = datetime.combine(start, time(), ctx.tz).astimezone(UTC)
    upper = datetime.combine(end + timedelta(days=1), time(), ctx.tz).astimezone(UTC)
    rows = await repository.refunds_requested(
        session,
        ctx,
        lower,
        upper,
        start=start,
        end=end,
        quality=quality,
        outcome=outcome,
        pending=pending,
        after=_refund_position(cursor),
        limit=limit + 1,
    )
    items = [refund_item(ctx, row, start, end) for row in rows[:limit]]
    last = rows[limit - 1].refund if len(rows) > limit else None
    return RefundPage(
        store_id=ctx.store_id,
        as_of=as_of,
        items=items,
        next_cursor=encode_cursor([last.requested_at.isoformat(), last.refund_id])
        if last is not None and last.requested_at is not None
        else None,
    )


def refund_item(ctx: StoreContext, row: repository.RefundRow, start: date, end: date) -> RefundItem:
    """One refund with what it does to the figures, and why, in one line."""
    refund: RefundState = row.refund
    reason = refund.reason(ctx.policy.reason_basis)
    is_quality = is_quality_refund(refund, ctx.policy)
    counted = is_counted_quality_refund(refund, ctx.policy)
    requested_on = refund.requested_at.astimezone(ctx.tz).date() if refund.requested_at else None
    order_in_window = row.order_quality_day is not None and start <= row.order_quality_day <= end
    counts_for_order = counted and order_in_window and requested_on == row.order_quality_day
    pending = bool(counted and refund.is_open and row.order_pending and order_in_window)
    outcome = OUTCOME_BY_STAGE.get(refund.stage, "open") if refund.stage is not None else "open"
    if not is_quality:
        why = f"not a quality refund (reason {reason})"
    elif refund.appeal == "upheld":
        why = "excluded: the seller's appeal was upheld"
    elif outcome in ("rejected", "withdrawn"):
        why = f"excluded: {outcome}"
    elif counts_for_order:
        why = "counts: the order's earliest counted quality refund" + (
            "; still open, can be turned" if pending else ""
        )
    elif order_in_window:
        why = "counted, but its order already counts through an earlier refund"
    else:
        why = "counted, but its order counts on a day outside this window"
    return RefundItem(
        refund_id=refund.refund_id,
        order_id=refund.order_id,
        product_id=row.order_product_id or refund.product_id,
        kind=refund.kind,
        reason=reason,
        requested_at=refund.requested_at.isoformat() if refund.requested_at else None,
        requested_on=requested_on,
        outcome=outcome,
        stage=STAGE_NAMES.get(refund.stage) if refund.stage is not None else None,
        appeal=refund.appeal,
        quality=is_quality,
        counted=counted,
        counts_for_order=counts_for_order,
        pending=pending,
        why=why,
    )


# --------------------------------------------------------------------------- the platform's number

RATE_PLACES = 6


def _signed_rate(value: Fraction) -> str:
    """A signed decimal string rounded half-even to 6 places (a drift of rates)."""
    scaled = round(value * 10**RATE_PLACES)
    sign = "-" if scaled < 0 else ""
    whole, part = divmod(abs(scaled), 10**RATE_PLACES)
    return f"{sign}{whole}.{part:0{RATE_PLACES}d}"


def platform_day(record: PlatformFigures, ours: WindowFigures) -> PlatformDay:
    """One day: the platform's numbers, ours for the window ending that day, the drift."""
    theirs_rate = (
        Decimal(record.quality_refund_rate) if record.quality_refund_rate is not None else None
    )
    our_rate = Fraction(ours.quality_refunds, ours.orders) if ours.orders else None
    return PlatformDay(
        day=record.day,
        platform=PlatformNumbers(
            quality_refund_rate=_plain(theirs_rate),
            quality_refunds=record.quality_refunds,
            orders=record.orders,
        ),
        ours=PlatformNumbers(
            quality_refund_rate=quality_refund_rate(ours.quality_refunds, ours.orders),
            quality_refunds=ours.quality_refunds,
            orders=ours.orders,
        ),
        drift=PlatformNumbers(
            quality_refund_rate=_signed_rate(our_rate - Fraction(theirs_rate))
            if our_rate is not None and theirs_rate is not None
            else None,
            quality_refunds=ours.quality_refunds - record.quality_refunds
            if record.quality_refunds is not None
            else None,
            orders=ours.orders - record.orders if record.orders is not None else None,
        ),
    )


def _plain(value: Decimal | None) -> str | None:
    return None if value is None else format(value.normalize(), "f")


async def put_platform_figures(
    session: AsyncSession, ctx: StoreContext, day: date, values: dict[str, Any], now: datetime
) -> PlatformDay:
    """Keep what the merchant backend showed for ``day``; answer it beside ours."""
    await repository.put_platform_figures(session, ctx.store_id, day, values, now)
    (answer,) = (await platform_figures(session, ctx, day, day)).days
    return answer


async def platform_figures(
    session: AsyncSession, ctx: StoreContext, first: date, last: date
) -> PlatformFiguresOut:
    """Each day with the platform's figures in [first, last], ours beside it, the drift."""
    records = await repository.platform_figures_between(session, ctx.store_id, first, last)
    days = []
    if records:
        series = await repository.daily_series(
            session,
            ctx.store_id,
            STORE_SCOPE,
            records[0].day - timedelta(days=ctx.window_days - 1),
            records[-1].day,
        )
        ours = dict(sliding_windows(series, records[0].day, records[-1].day, ctx.window_days))
        days = [platform_day(r, ours[r.day]) for r in records]
    return PlatformFiguresOut(store_id=ctx.store_id, window_days=ctx.window_days, days=days)
