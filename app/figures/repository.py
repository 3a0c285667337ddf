"""The daily buckets: upsert deltas, and window sums that touch at most window_days rows."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from functools import lru_cache
from typing import Any

from sqlalchemy import and_, bindparam, case, column, delete, func, or_, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.dialect import is_postgres, upsert_rows
from app.events.fold import RefundState
from app.events.models import OrderRecord, RefundRecord
from app.events.repository import refund_state_columns
from app.events.vocabulary import OUTCOME_BY_STAGE
from app.figures.models import (
    STORE_SCOPE,
    DailyBreakdown,
    DailyFigures,
    DailySkuFigures,
    PlatformFigures,
)
from app.figures.rules import (
    BucketDeltas,
    WindowFigures,
    counted_quality_refund_sql,
    pending_refund_sql,
    quality_refund_sql,
)
from app.stores.rules import StoreContext

# A bucket delta's counts, in the order of the delta lists (app.figures.rules).
_BUCKET_COUNTS = ("orders", "applied_quality_refunds", "quality_refunds", "pending_quality_refunds")


_SKU_COUNTS = _BUCKET_COUNTS
_BREAKDOWN_COUNTS = ("orders", "quality_refunds")


async def apply_bucket_deltas(
    session: AsyncSession, deltas: BucketDeltas, *, ordered: bool = True
) -> None:
    """One upsert per bucket table for all the deltas, in key order (no deadlocks).

    ``ordered=False`` skips the sort (over a second of a 200,000-event import)
    for a caller holding its stores' locks exclusively: nobody else writes those rows.
    """
    for table, keys, counts, rows in (
        (DailyFigures.__table__, ("store_id", "product_id", "day"), _BUCKET_COUNTS, deltas.figures),
        (
            DailySkuFigures.__table__,
            ("store_id", "product_id", "sku_id", "day"),
            _SKU_COUNTS,
            deltas.skus,
        ),
        (
            DailyBreakdown.__table__,
            ("store_id", "product_id", "dimension", "key", "day"),
            _BREAKDOWN_COUNTS,
            deltas.breakdowns,
        ),
    ):
        items = sorted(rows.items()) if ordered else rows.items()
        values = [(*key, *d) for key, d in items if any(d)]
        if values:
            await upsert_rows(session, table, keys, counts, [*keys, *counts], values, mode="add")


async def clear_store_buckets(session: AsyncSession, store_id: str) -> None:
    """Every bucket row of a store (a rebuild writes them again)."""
    for model in (DailyFigures, DailySkuFigures, DailyBreakdown):
        await session.execute(delete(model).where(model.store_id == store_id))


# The windows of many scopes as one fixed-shape relation (PostgreSQL arrays).
_WINDOWS = text(
    "SELECT * FROM unnest(CAST(:w_store AS varchar[]), CAST(:w_scope AS varchar[]), "
    "CAST(:w_start AS date[]), CAST(:w_end AS date[])) "
    "AS t(store_id, product_id, start_day, end_day)"
).columns(column("store_id"), column("product_id"), column("start_day"), column("end_day"))

_SUMS = (
    func.sum(DailyFigures.orders),
    func.sum(DailyFigures.applied_quality_refunds),
    func.sum(DailyFigures.quality_refunds),
    func.sum(DailyFigures.pending_quality_refunds),
)


def _figures(row: Any) -> WindowFigures:
    return WindowFigures(*(int(v or 0) for v in row))


async def window_figures(
    session: AsyncSession,
    store_id: str,
    start: date,
    end: date,
    scopes: Sequence[str] | None = None,
) -> dict[str, WindowFigures]:
    """Window sums per scope ("" = the store); all scopes with rows when scopes is None."""
    query = (
        select(DailyFigures.product_id, *_SUMS)
        .where(
            DailyFigures.store_id == store_id,
            DailyFigures.day >= start,
            DailyFigures.day <= end,
        )
        .group_by(DailyFigures.product_id)
    )
    if scopes is not None:
        if not scopes:
            return {}
        query = query.where(DailyFigures.product_id.in_(scopes))
    rows = await session.execute(query)
    return {row[0]: _figures(row[1:]) for row in rows}


_STORE_WINDOW = select(*_SUMS).where(
    DailyFigures.store_id == bindparam("store_id"),
    DailyFigures.product_id == STORE_SCOPE,
    DailyFigures.day >= bindparam("start"),
    DailyFigures.day <= bindparam("end"),
)


async def store_window(session: AsyncSession, ctx: StoreContext, as_of: date) -> WindowFigures:
    """The store's figures for the window ending on ``as_of`` (a statement built once)."""
    start, end = ctx.window(as_of)
    row = (
        await session.execute(_STORE_WINDOW, {"store_id": ctx.store_id, "start": start, "end": end})
    ).one()
    return _figures(row)


@lru_cache(maxsize=1)
def _windows_query() -> Any:
    """PostgreSQL: the windows of many scopes joined as one array relation (built once)."""
    w = _WINDOWS.subquery("w")
    on = and_(
        DailyFigures.store_id == w.c.store_id,
        DailyFigures.product_id == w.c.product_id,
        DailyFigures.day >= w.c.start_day,
        DailyFigures.day <= w.c.end_day,
    )
    return (
        select(DailyFigures.store_id, DailyFigures.product_id, *_SUMS)
        .join(w, on)
        .group_by(DailyFigures.store_id, DailyFigures.product_id)
    )


async def window_figures_many(
    session: AsyncSession, windows: Sequence[tuple[str, Sequence[str], date, date]]
) -> dict[tuple[str, str], WindowFigures]:
    """Window sums for several (store, scopes, start, end) at once: one statement."""
    flat = [
        (store_id, scope, start, end)
        for store_id, scopes, start, end in windows
        for scope in scopes
    ]
    if not flat:
        return {}
    if is_postgres(session):
        query = _windows_query()
        params: dict[str, Any] = {
            "w_store": [f[0] for f in flat],
            "w_scope": [f[1] for f in flat],
            "w_start": [f[2] for f in flat],
            "w_end": [f[3] for f in flat],
        }
    else:
        params = {}
        query = (
            select(DailyFigures.store_id, DailyFigures.product_id, *_SUMS)
            .where(
                or_(
                    *(
                        and_(
                            DailyFigures.store_id == store_id,
                            DailyFigures.product_id.in_(scopes),
                            DailyFigures.day >= start,
                            DailyFigures.day <= end,
                        )
                        for store_id, scopes, start, end in windows
                        if scopes
                    )
                )
            )
            .group_by(DailyFigures.store_id, DailyFigures.product_id)
        )
    rows = await session.execute(query, params)
    return {(row[0], row[1]): _figures(row[2:]) for row in rows}


async def daily_series(
    session: AsyncSession, store_id: str, scope: str, start: date, end: date
) -> dict[date, WindowFigures]:
    rows = await session.execute(
        select(
            DailyFigures.day,
            DailyFigures.orders,
            DailyFigures.applied_quality_refunds,
            DailyFigures.quality_refunds,
            DailyFigures.pending_quality_refunds,
        ).where(
            DailyFigures.store_id == store_id,
            DailyFigures.product_id == scope,
            DailyFigures.day >= start,
            DailyFigures.day <= end,
        )
    )
    return {row[0]: _figures(row[1:]) for row in rows}


async def top_products(
    session: AsyncSession, store_id: str, start: date, end: date, limit: int
) -> list[tuple[str, int]]:
    """The products with the most quality refunds in the window (ties: product id)."""
    total = func.sum(DailyFigures.quality_refunds)
    rows = await session.execute(
        select(DailyFigures.product_id, total)
        .where(
            DailyFigures.store_id == store_id,
            DailyFigures.product_id != STORE_SCOPE,
            DailyFigures.day >= start,
            DailyFigures.day <= end,
        )
        .group_by(DailyFigures.product_id)
        .having(total > 0)
        .order_by(total.desc(), DailyFigures.product_id)
        .limit(limit)
    )
    return [(r[0], int(r[1])) for r in rows]


async def counted_quality_refunds(
    session: AsyncSession, ctx: StoreContext, product_id: str | None, start: date, end: date
) -> list[tuple[RefundState, bool]]:
    """The counted quality refunds of the orders behind the window's count, each with
    whether its order is pending; a refund's product is its order's (DESIGN §3)."""
    conditions = [
        OrderRecord.store_id == ctx.store_id,
        OrderRecord.c_quality_day >= start,
        OrderRecord.c_quality_day <= end,
        counted_quality_refund_sql(ctx.policy),
    ]
    if product_id is not None:
        conditions.append(OrderRecord.c_product_id == product_id)
    rows = await session.execute(
        select(*refund_state_columns(), OrderRecord.c_product_id, OrderRecord.c_pending)
        .join(
            OrderRecord,
            and_(
                OrderRecord.store_id == RefundRecord.store_id,
                OrderRecord.order_id == RefundRecord.order_id,
            ),
        )
        .where(*conditions)
    )
    found: list[tuple[RefundState, bool]] = []
    for row in rows:
        state = RefundState(*row[:-2])
        order_product_id, order_pending = row[-2], row[-1]
        state.product_id = order_product_id or state.product_id
        found.append((state, bool(order_pending)))
    return found


@dataclass(frozen=True, slots=True)
class RefundRow:
    """A refund with what its order contributes (its product, quality day, pending)."""

    refund: RefundState
    order_product_id: str | None
    order_quality_day: date | None
    order_pending: bool | None


async def refunds_requested(
    session: AsyncSession,
    ctx: StoreContext,
    lower: datetime,
    upper: datetime,
    *,
    start: date,
    end: date,
    quality: bool | None,
    outcome: str | None,
    pending: bool | None,
    after: tuple[datetime, str] | None,
    limit: int,
) -> list[RefundRow]:
    """Refunds requested in [lower, upper), in (requested_at, refund_id) order."""
    conditions: list[Any] = [
        RefundRecord.store_id == ctx.store_id,
        RefundRecord.requested_at >= lower,
        RefundRecord.requested_at < upper,
    ]
    if quality is not None:
        in_quality = quality_refund_sql(ctx.policy)
        conditions.append(in_quality if quality else ~in_quality)
    if outcome is not None:
        conditions.append(
            RefundRecord.stage.in_(
                [rank for rank, name in OUTCOME_BY_STAGE.items() if name == outcome]
            )
        )
    if pending is not None:
        is_pending = and_(
            pending_refund_sql(ctx.policy),
            OrderRecord.c_pending.is_(True),
            OrderRecord.c_quality_day >= start,
            OrderRecord.c_quality_day <= end,
        )
        conditions.append(is_pending if pending else ~is_pending)
    if after is not None:
        at, refund_id = after
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
            .limit(limit)
        )
    ).all()
    return [RefundRow(RefundState(*row[:-3]), row[-3], row[-2], row[-1]) for row in rows]


# --------------------------------------------------------------------------- two windows at once


def _two_window_sums(model: Any, now: tuple[date, date], before: tuple[date, date]) -> list[Any]:
    """The four sums over each of two windows, as conditional sums of one scan."""
    columns = (
        model.orders,
        model.applied_quality_refunds,
        model.quality_refunds,
        model.pending_quality_refunds,
    )
    sums: list[Any] = []
    for start, end in (now, before):
        inside = and_(model.day >= start, model.day <= end)
        sums.extend(func.sum(case((inside, c), else_=0)) for c in columns)
    return sums


def _split(row: Sequence[Any]) -> tuple[WindowFigures, WindowFigures]:
    return _figures(row[:4]), _figures(row[4:8])


async def scope_windows(
    session: AsyncSession,
    store_id: str,
    now: tuple[date, date],
    before: tuple[date, date],
    *,
    product_id: str | None = None,
) -> dict[str, tuple[WindowFigures, WindowFigures]]:
    """Per scope: the window ending today and the one ending 7 days earlier, in one scan.

    All products with rows in either window, or one product (and the store with
    ``product_id=""``).
    """
    low = min(now[0], before[0])
    query = (
        select(DailyFigures.product_id, *_two_window_sums(DailyFigures, now, before))
        .where(
            DailyFigures.store_id == store_id,
            DailyFigures.day >= low,
            DailyFigures.day <= now[1],
        )
        .group_by(DailyFigures.product_id)
    )
    if product_id is not None:
        query = query.where(DailyFigures.product_id == product_id)
    return {row[0]: _split(row[1:]) for row in await session.execute(query)}


async def sku_windows(
    session: AsyncSession,
    store_id: str,
    product_id: str,
    now: tuple[date, date],
    before: tuple[date, date],
) -> dict[str, tuple[WindowFigures, WindowFigures]]:
    """Per SKU of a product: the window ending today and the one 7 days earlier."""
    low = min(now[0], before[0])
    query = (
        select(DailySkuFigures.sku_id, *_two_window_sums(DailySkuFigures, now, before))
        .where(
            DailySkuFigures.store_id == store_id,
            DailySkuFigures.product_id == product_id,
            DailySkuFigures.day >= low,
            DailySkuFigures.day <= now[1],
        )
        .group_by(DailySkuFigures.sku_id)
    )
    return {row[0]: _split(row[1:]) for row in await session.execute(query)}


async def scope_days(
    session: AsyncSession, store_id: str, scopes: Sequence[str], start: date, end: date
) -> dict[str, dict[date, WindowFigures]]:
    """The daily rows of some scopes over a span (what ``count_clears_on`` walks)."""
    if not scopes:
        return {}
    rows = await session.execute(
        select(
            DailyFigures.product_id,
            DailyFigures.day,
            DailyFigures.orders,
            DailyFigures.applied_quality_refunds,
            DailyFigures.quality_refunds,
            DailyFigures.pending_quality_refunds,
        ).where(
            DailyFigures.store_id == store_id,
            DailyFigures.product_id.in_(list(scopes)),
            DailyFigures.day >= start,
            DailyFigures.day <= end,
        )
    )
    series: dict[str, dict[date, WindowFigures]] = {}
    for row in rows:
        series.setdefault(row[0], {})[row[1]] = _figures(row[2:])
    return series


async def breakdown_sums(
    session: AsyncSession, store_id: str, scope: str, dimension: str, start: date, end: date
) -> list[tuple[str, int, int]]:
    """(key, orders, quality_refunds) of a dimension over a window; key '' is null."""
    rows = await session.execute(
        select(
            DailyBreakdown.key,
            func.sum(DailyBreakdown.orders),
            func.sum(DailyBreakdown.quality_refunds),
        )
        .where(
            DailyBreakdown.store_id == store_id,
            DailyBreakdown.product_id == scope,
            DailyBreakdown.dimension == dimension,
            DailyBreakdown.day >= start,
            DailyBreakdown.day <= end,
        )
        .group_by(DailyBreakdown.key)
    )
    return [(row[0], int(row[1] or 0), int(row[2] or 0)) for row in rows]


# --------------------------------------------------------------------------- platform figures


async def put_platform_figures(
    session: AsyncSession, store_id: str, day: date, values: dict[str, Any], now: datetime
) -> None:
    """Store (or replace) what the platform showed for the day."""
    await upsert_rows(
        session,
        PlatformFigures.__table__,
        ["store_id", "day"],
        ["quality_refund_rate", "quality_refunds", "orders", "updated_at"],
        ["store_id", "day", "quality_refund_rate", "quality_refunds", "orders", "updated_at"],
        [
            (
                store_id,
                day,
                values.get("quality_refund_rate"),
                values.get("quality_refunds"),
                values.get("orders"),
                now,
            )
        ],
    )


async def platform_figures_between(
    session: AsyncSession, store_id: str, first: date, last: date
) -> list[PlatformFigures]:
    return list(
        await session.scalars(
            select(PlatformFigures)
            .where(
                PlatformFigures.store_id == store_id,
                PlatformFigures.day >= first,
                PlatformFigures.day <= last,
            )
            .order_by(PlatformFigures.day)
        )
    )
