"""Reading the figures: a window sum touches at most window_days rows per scope."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import and_, func, select
from sqlalchemy.ext.asyncio import AsyncSession

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


async def store_window(session: AsyncSession, ctx: StoreContext, as_of: date) -> WindowFigures:
    start, end = ctx.window(as_of)
    return (await window_figures(session, ctx.store_id, start, end, [STORE_SCOPE])).get(
        STORE_SCOPE, EMPTY
    )


async def window_figures_many(
    session: AsyncSession, windows: Sequence[tuple[str, Sequence[str], date, date]]
) -> dict[tuple[str, str], WindowFigures]:
    """Window sums for several (store, scopes, start, end) at once: one statement."""
    if not windows:
        return {}
    conditions = [
        and_(
            DailyFigures.store_id == store_id,
            DailyFigures.product_id.in_(scopes),
            DailyFigures.day >= start,
            DailyFigures.day <= end,
        )
        for store_id, scopes, start, end in windows
        if scopes
    ]
    if not conditions:
        return {}
    from sqlalchemy import or_

    rows = await session.execute(
        select(DailyFigures.store_id, DailyFigures.product_id, *_SUMS)
        .where(or_(*conditions))
        .group_by(DailyFigures.store_id, DailyFigures.product_id)
    )
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


def tier_rules(ctx: StoreContext) -> list[TierRule]:
    return [
        TierRule(
            tier=t["tier"],
            scope=t["scope"],
            rate_threshold=Decimal(str(t["rate_threshold"])),
            min_count=int(t["min_count"]),
        )
        for t in ctx.tiers
    ]


def warn_settings(ctx: StoreContext) -> WarnSettings:
    return WarnSettings(
        warn_ratio=ctx.warn_ratio, warn_headroom=ctx.warn_headroom, min_orders=ctx.min_orders
    )


def verdicts(ctx: StoreContext, figures: WindowFigures, scope: str) -> list[TierVerdict]:
    """The tiers of one scope ("store" or "product") for these figures: pure."""
    return evaluate_tiers(
        figures.orders,
        figures.quality_refunds,
        tier_rules(ctx),
        warn_settings(ctx),
        "store" if scope == "store" else "product",
    )
