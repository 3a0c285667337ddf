"""Reading the figures: a window sum touches at most window_days rows per scope."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from functools import lru_cache
from typing import Any

from sqlalchemy import and_, bindparam, column, func, or_, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.dialect import is_postgres
from app.figures.models import STORE_SCOPE, DailyFigures
from app.risk.tiers import TierRule, TierVerdict, WarnSettings, evaluate_tiers
from app.stores.service import StoreContext


@dataclass(frozen=True, slots=True)
class WindowFigures:
    orders: int = 0
    applied_quality_refunds: int = 0
    quality_refunds: int = 0
    pending_quality_refunds: int = 0

    @property
    def has_data(self) -> bool:
        return any((self.orders, self.applied_quality_refunds, self.quality_refunds))


EMPTY = WindowFigures()

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


def sliding_windows(
    series: dict[date, WindowFigures], first: date, last: date, window_days: int
) -> list[tuple[date, WindowFigures]]:
    """One window sum per day from first to last, from the daily series (pure)."""
    points: list[tuple[date, WindowFigures]] = []
    totals = [0, 0, 0, 0]
    day = first - timedelta(days=window_days - 1)
    while day < first:
        _add(totals, series.get(day), 1)
        day += timedelta(days=1)
    day = first
    while day <= last:
        _add(totals, series.get(day), 1)
        _add(totals, series.get(day - timedelta(days=window_days)), -1)
        points.append((day, WindowFigures(*totals)))
        day += timedelta(days=1)
    return points


def _add(totals: list[int], figures: WindowFigures | None, sign: int) -> None:
    if figures is None:
        return
    totals[0] += sign * figures.orders
    totals[1] += sign * figures.applied_quality_refunds
    totals[2] += sign * figures.quality_refunds
    totals[3] += sign * figures.pending_quality_refunds


def tier_rules(ctx: StoreContext) -> tuple[TierRule, ...]:
    """The policy's lines as rules (built once per distinct policy: this is on the hot path)."""
    return _rules(
        tuple(
            (t["tier"], t["scope"], str(t["rate_threshold"]), int(t["min_count"]))
            for t in ctx.tiers
        )
    )


@lru_cache(maxsize=256)
def _rules(spec: tuple[tuple[str, str, str, int], ...]) -> tuple[TierRule, ...]:
    return tuple(
        TierRule(
            tier=tier,  # type: ignore[arg-type]
            scope=scope,  # type: ignore[arg-type]
            rate_threshold=Decimal(threshold),
            min_count=min_count,
        )
        for tier, scope, threshold, min_count in spec
    )


def warn_settings(ctx: StoreContext) -> WarnSettings:
    return _warn(ctx.warn_ratio, ctx.warn_headroom, ctx.min_orders)


@lru_cache(maxsize=256)
def _warn(ratio: Decimal, headroom: int, min_orders: int) -> WarnSettings:
    return WarnSettings(warn_ratio=ratio, warn_headroom=headroom, min_orders=min_orders)


def verdicts(ctx: StoreContext, figures: WindowFigures, scope: str) -> list[TierVerdict]:
    """The tiers of one scope ("store" or "product") for these figures: pure."""
    return evaluate_tiers(
        figures.orders,
        figures.quality_refunds,
        tier_rules(ctx),
        warn_settings(ctx),
        "store" if scope == "store" else "product",
    )
