"""Reading the figures: a store's metrics, its history, its products, its refunds.

Every read touches at most ``window_days`` daily rows per scope (DESIGN §9),
except the refund list, which reads the refunds requested in the window.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from app.api.pagination import decode_cursor, encode_cursor, invalid_cursor, offset_page
from app.errors import field_error
from app.events.fold import RefundState
from app.events.vocabulary import OUTCOME_BY_STAGE, STAGE_NAMES
from app.figures import repository
from app.figures.models import STORE_SCOPE
from app.figures.rules import (
    WindowFigures,
    is_counted_quality_refund,
    is_quality_refund,
    sliding_windows,
)
from app.figures.schemas import (
    HistoryPoint,
    MetricsHistory,
    ProductMetrics,
    ProductPage,
    RefundItem,
    RefundPage,
    StoreMetrics,
    TierStatus,
    figure_fields,
)
from app.policies.tiers import STATE_SEVERITY
from app.stores.rules import StoreContext

MAX_HISTORY_DAYS = 400


async def store_metrics(session: AsyncSession, ctx: StoreContext, as_of: date) -> StoreMetrics:
    figures = await repository.store_window(session, ctx, as_of)
    return StoreMetrics(
        store_id=ctx.store_id,
        as_of=as_of,
        window_days=ctx.window_days,
        window_start=ctx.window(as_of)[0],
        tiers=[
            TierStatus.of(v)
            for v in ctx.policy.verdicts(figures.orders, figures.quality_refunds, "store")
        ],
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


def product_metrics(ctx: StoreContext, product_id: str, f: WindowFigures) -> ProductMetrics:
    return ProductMetrics(
        product_id=product_id,
        tiers=[
            TierStatus.of(v) for v in ctx.policy.verdicts(f.orders, f.quality_refunds, "product")
        ],
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
    start, end = ctx.window(as_of)
    scopes = await repository.window_figures(session, ctx.store_id, start, end)
    items = [
        product_metrics(ctx, product_id, f)
        for product_id, f in scopes.items()
        if product_id != STORE_SCOPE and f.has_data
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
