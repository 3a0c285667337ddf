"""The figures of a store and its products: metrics, history, products, refunds."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated

from fastapi import APIRouter, Query
from sqlalchemy import and_, or_, select

from app.api.deps import ClockDep, ReadKey, ReadSessionDep
from app.api.pagination import (
    CursorQuery,
    LimitQuery,
    decode_cursor,
    decode_offset,
    encode_cursor,
    invalid_cursor,
)
from app.api.problems import field_error, problem_responses
from app.figures.models import STORE_SCOPE
from app.figures.schemas import (
    HistoryPoint,
    MetricsHistory,
    ProductMetrics,
    ProductPage,
    RefundItem,
    RefundPage,
    StoreMetrics,
    TierStatus,
)
from app.figures.service import (
    WindowFigures,
    daily_series,
    sliding_windows,
    store_window,
    verdicts,
    window_figures,
)
from app.ingest.fold import RefundState
from app.ingest.models import OrderRecord, RefundRecord
from app.ingest.service import refund_state_columns
from app.ingest.vocabulary import OUTCOME_BY_STAGE, STAGE_NAMES, STAGE_RANK
from app.risk.tiers import STATE_SEVERITY, quality_refund_rate
from app.stores.endpoints import StoreIdPath
from app.stores.service import StoreContext, get_store_or_404

router = APIRouter(prefix="/v1/stores", tags=["figures"])

AsOfQuery = Annotated[
    date | None,
    Query(description="The window's last day (YYYY-MM-DD); default today in the store's time zone"),
]
MAX_HISTORY_DAYS = 400


def figure_fields(figures: WindowFigures) -> dict[str, object]:
    return {
        "orders": figures.orders,
        "quality_refunds": figures.quality_refunds,
        "applied_quality_refunds": figures.applied_quality_refunds,
        "pending_quality_refunds": figures.pending_quality_refunds,
        "quality_refund_rate": quality_refund_rate(figures.quality_refunds, figures.orders),
    }


@router.get(
    "/{store_id}/metrics",
    summary="A store's figures and every tier's state",
    description=(
        "The rolling figures of DESIGN §3 for the window ending on `as_of`, and each "
        "store-scope tier's state with `refunds_until_breach` and `orders_to_recover`. "
        "Reads at most `window_days` daily rows. Needs the `read` scope."
    ),
    response_model=StoreMetrics,
    operation_id="get_store_metrics",
    responses=problem_responses(401, 403, 404, 422),
)
async def get_metrics(
    store_id: StoreIdPath,
    _key: ReadKey,
    session: ReadSessionDep,
    clock: ClockDep,
    as_of: AsOfQuery = None,
) -> StoreMetrics:
    ctx = await get_store_or_404(session, store_id)
    day = as_of or ctx.today(clock.now())
    figures = await store_window(session, ctx, day)
    return StoreMetrics(
        store_id=store_id,
        as_of=day,
        window_days=ctx.window_days,
        window_start=ctx.window(day)[0],
        tiers=[TierStatus.of(v) for v in verdicts(ctx, figures, "store")],
        **figure_fields(figures),
    )


@router.get(
    "/{store_id}/metrics/history",
    summary="One point a day: the window ending on each day",
    response_model=MetricsHistory,
    operation_id="get_store_metrics_history",
    responses=problem_responses(401, 403, 404, 422),
)
async def get_history(
    store_id: StoreIdPath,
    _key: ReadKey,
    session: ReadSessionDep,
    clock: ClockDep,
    from_: Annotated[
        date | None, Query(alias="from", description="First day (default: to − 29)")
    ] = None,
    to: Annotated[date | None, Query(description="Last day (default: today)")] = None,
) -> MetricsHistory:
    ctx = await get_store_or_404(session, store_id)
    last = to or ctx.today(clock.now())
    first = from_ or last - timedelta(days=29)
    if first > last or (last - first).days >= MAX_HISTORY_DAYS:
        raise field_error(
            "query.from",
            "invalid_range",
            f"from must be on or before to, and the range at most {MAX_HISTORY_DAYS} days",
        )
    series = await daily_series(
        session, store_id, STORE_SCOPE, first - timedelta(days=ctx.window_days - 1), last
    )
    return MetricsHistory(
        store_id=store_id,
        window_days=ctx.window_days,
        points=[
            HistoryPoint(day=day, **figure_fields(f))
            for day, f in sliding_windows(series, first, last, ctx.window_days)
        ],
    )


@router.get(
    "/{store_id}/products",
    summary="Every product with data in the window, worst first",
    description=(
        "Product-scope figures and tiers (delisting 下架). Worst first: breached, then "
        "approaching, then by fewest `refunds_until_breach`, then most quality refunds."
    ),
    response_model=ProductPage,
    operation_id="list_store_products",
    responses=problem_responses(401, 403, 404, 422),
)
async def list_products(
    store_id: StoreIdPath,
    _key: ReadKey,
    session: ReadSessionDep,
    clock: ClockDep,
    as_of: AsOfQuery = None,
    limit: LimitQuery = 100,
    cursor: CursorQuery = None,
) -> ProductPage:
    ctx = await get_store_or_404(session, store_id)
    day = as_of or ctx.today(clock.now())
    start, end = ctx.window(day)
    offset = decode_offset(cursor)
    scopes = await window_figures(session, store_id, start, end)
    items = [
        _product_metrics(ctx, product_id, f)
        for product_id, f in scopes.items()
        if product_id != STORE_SCOPE and f.has_data
    ]
    items.sort(key=_worst_first)
    page = items[offset : offset + limit]
    more = offset + limit < len(items)
    return ProductPage(
        store_id=store_id,
        as_of=day,
        window_days=ctx.window_days,
        items=page,
        next_cursor=encode_cursor(offset + limit) if more else None,
    )


def _product_metrics(ctx: StoreContext, product_id: str, f: WindowFigures) -> ProductMetrics:
    return ProductMetrics(
        product_id=product_id,
        tiers=[TierStatus.of(v) for v in verdicts(ctx, f, "product")],
        **figure_fields(f),
    )


def _worst_first(item: ProductMetrics) -> tuple[int, int, int, str]:
    severity = max((STATE_SEVERITY[t.state] for t in item.tiers), default=0)  # type: ignore[index]
    headroom = min(
        (t.refunds_until_breach for t in item.tiers if t.refunds_until_breach is not None),
        default=1 << 30,
    )
    return (-severity, headroom, -item.quality_refunds, item.product_id)


@router.get(
    "/{store_id}/refunds",
    summary="Which refunds count, and which are pending",
    description=(
        "Refunds requested in the window ending on `as_of`, each with its outcome, whether "
        "it is a quality refund, whether it counts, whether it is the one that puts its "
        "order in `quality_refunds`, and whether it can still be turned (`pending`)."
    ),
    response_model=RefundPage,
    operation_id="list_store_refunds",
    responses=problem_responses(401, 403, 404, 422),
)
async def list_refunds(
    store_id: StoreIdPath,
    _key: ReadKey,
    session: ReadSessionDep,
    clock: ClockDep,
    as_of: AsOfQuery = None,
    quality: Annotated[
        bool | None, Query(description="Only quality (true) or other (false) refunds")
    ] = None,
    outcome: Annotated[
        str | None,
        Query(
            description="open, succeeded, rejected or withdrawn",
            pattern="^(open|succeeded|rejected|withdrawn)$",
        ),
    ] = None,
    pending: Annotated[
        bool | None, Query(description="Only refunds that can still be turned")
    ] = None,
    limit: LimitQuery = 100,
    cursor: CursorQuery = None,
) -> RefundPage:
    ctx = await get_store_or_404(session, store_id)
    day = as_of or ctx.today(clock.now())
    start, end = ctx.window(day)
    lower = datetime.combine(start, time(), ctx.tz).astimezone(UTC)
    upper = datetime.combine(end + timedelta(days=1), time(), ctx.tz).astimezone(UTC)
    reason_column = (
        RefundRecord.latest_reason if ctx.reason_basis == "latest" else RefundRecord.first_reason
    )
    conditions = [
        RefundRecord.store_id == store_id,
        RefundRecord.requested_at >= lower,
        RefundRecord.requested_at < upper,
    ]
    if quality is not None:
        in_quality = reason_column.in_(sorted(ctx.quality_reasons))
        conditions.append(in_quality if quality else ~in_quality)
    if outcome is not None:
        conditions.append(
            RefundRecord.stage.in_(
                [rank for rank, name in OUTCOME_BY_STAGE.items() if name == outcome]
            )
        )
    if pending is not None:
        is_pending = and_(
            reason_column.in_(sorted(ctx.quality_reasons)),
            RefundRecord.stage <= STAGE_RANK["refund.return_received"],
            or_(RefundRecord.appeal.is_(None), RefundRecord.appeal != "upheld"),
            OrderRecord.c_pending.is_(True),
            OrderRecord.c_quality_day >= start,
            OrderRecord.c_quality_day <= end,
        )
        conditions.append(is_pending if pending else ~is_pending)
    position = decode_cursor(cursor, list)
    if position is not None:
        at, refund_id = _refund_position(position)
        conditions.append(
            or_(
                RefundRecord.requested_at > at,
                and_(RefundRecord.requested_at == at, RefundRecord.refund_id > refund_id),
            )
        )
    rows = (
        await session.execute(
            select(
                *refund_state_columns(),
                OrderRecord.c_product_id,
                OrderRecord.c_quality_day,
                OrderRecord.c_pending,
            )
            .outerjoin(
                OrderRecord,
                and_(
                    OrderRecord.store_id == RefundRecord.store_id,
                    OrderRecord.order_id == RefundRecord.order_id,
                ),
            )
            .where(*conditions)
            .order_by(RefundRecord.requested_at, RefundRecord.refund_id)
            .limit(limit + 1)
        )
    ).all()
    more = len(rows) > limit
    items = [
        _refund_item(ctx, RefundState(*row[:-3]), row[-3], row[-2], row[-1], start, end)
        for row in rows[:limit]
    ]
    last = rows[limit - 1] if more else None
    return RefundPage(
        store_id=store_id,
        as_of=day,
        items=items,
        next_cursor=encode_cursor([last.requested_at.isoformat(), last.refund_id])
        if last
        else None,
    )


def _refund_position(position: list[object]) -> tuple[datetime, str]:
    """(requested_at, refund_id) of the last refund of the previous page."""
    match position:
        case [str(at_text), str(refund_id)]:
            try:
                at = datetime.fromisoformat(at_text)
            except ValueError:
                raise invalid_cursor() from None
            if at.tzinfo is not None:
                return at, refund_id
    raise invalid_cursor()


def _refund_item(
    ctx: StoreContext,
    refund: RefundState,
    order_product_id: str | None,
    order_quality_day: date | None,
    order_pending: bool | None,
    start: date,
    end: date,
) -> RefundItem:
    reason = refund.reason(ctx.reason_basis)
    is_quality = reason in ctx.quality_reasons
    counted = is_quality and refund.is_counted
    requested_on = refund.requested_at.astimezone(ctx.tz).date() if refund.requested_at else None
    order_in_window = order_quality_day is not None and start <= order_quality_day <= end
    counts_for_order = counted and order_in_window and requested_on == order_quality_day
    pending = bool(counted and refund.is_open and order_pending and order_in_window)
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
        product_id=order_product_id or refund.product_id,
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
