"""The overview's rows (pure): each store's figures, tiers, trend and 30-day line, worst first.

Everything here is computed from one daily series per store (the store-scope bucket rows),
so the page costs the same few statements whatever the number of stores: the window now,
the window a week ago (for the trend) and the 30 daily windows of the sparkline are all
sliding sums over that series.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from fractions import Fraction
from functools import lru_cache
from itertools import accumulate

from app.figures.rules import TREND_DAYS, WindowFigures, trend
from app.policies.tiers import TierVerdict
from app.stores.rules import StoreContext

SPARKLINE_DAYS = 30
STATES = ("breached", "approaching", "ok", "unrated")

# "Worst first": breached, then approaching, then the rest together (ok and unrated are
# both "nothing to do now"); inside a group the higher rate first.
_GROUP = {"breached": 0, "approaching": 1}
_REST = 2


def worst_of(states: Iterable[str]) -> str:
    """The worst of some tier states: breached > approaching > ok > unrated; ok for none."""
    order = {state: rank for rank, state in enumerate(STATES)}
    known = [s for s in states if s in order]
    return min(known, key=order.__getitem__) if known else "ok"


def worst_state(tiers: Iterable[TierVerdict]) -> str:
    """The worst state among these tier verdicts (a store's: its store-scope tiers)."""
    return worst_of(t.state for t in tiers)


@dataclass(frozen=True, slots=True)
class StoreRow:
    """One line of the overview."""

    ctx: StoreContext
    as_of: date
    figures: WindowFigures
    tiers: list[TierVerdict]
    state: str
    trend: str | None
    # The last 30 days' rolling windows, oldest first: orders and quality refunds of each.
    window_orders: list[int]
    window_quality_refunds: list[int]
    products_at_risk: int
    spark: Sparkline

    @property
    def store_id(self) -> str:
        return self.ctx.store_id

    @property
    def rate(self) -> Fraction | None:
        f = self.figures
        return Fraction(f.quality_refunds, f.orders) if f.orders else None

    def tier(self, name: str) -> TierVerdict | None:
        """This store's verdict on tier ``name``, if its policy has that tier."""
        return next((t for t in self.tiers if t.tier == name), None)


def series_range(contexts: Iterable[StoreContext], now: datetime) -> tuple[date, date] | None:
    """The days of daily rows every store's overview line needs (one read for all)."""
    days = [
        (
            ctx.today(now) - timedelta(days=SPARKLINE_DAYS - 1 + ctx.window_days - 1),
            ctx.today(now),
        )
        for ctx in contexts
    ]
    if not days:
        return None
    return min(d[0] for d in days), max(d[1] for d in days)


DailyCounts = tuple[int, int, int, int]
"""A day's four counts, in :class:`~app.figures.rules.WindowFigures` field order."""


@lru_cache(maxsize=64)
def _days(base: date, count: int) -> tuple[date, ...]:
    # Every store in one time zone shares its run of days: build it once per render.
    return tuple(base + timedelta(days=offset) for offset in range(count))


def store_row(
    ctx: StoreContext,
    series: Mapping[date, DailyCounts],
    now: datetime,
    products_at_risk: int = 0,
) -> StoreRow:
    """A store's overview line from its daily store-scope counts.

    The 30 windows are sliding sums over one run of days: each is the difference of two
    running totals (the same sums :func:`app.figures.rules.sliding_windows` gives; a test
    holds them equal), so 200 stores stay cheap.
    """
    as_of = ctx.today(now)
    window = ctx.window_days
    base = as_of - timedelta(days=SPARKLINE_DAYS - 1 + window - 1)
    daily = [series.get(day, _NOTHING) for day in _days(base, window + SPARKLINE_DAYS - 1)]
    orders = list(accumulate((c[0] for c in daily), initial=0))
    quality = list(accumulate((c[2] for c in daily), initial=0))
    window_orders = [orders[window + i] - orders[i] for i in range(SPARKLINE_DAYS)]
    window_quality = [quality[window + i] - quality[i] for i in range(SPARKLINE_DAYS)]
    last = daily[-window:]
    current = WindowFigures(
        orders=window_orders[-1],
        applied_quality_refunds=sum(c[1] for c in last),
        quality_refunds=window_quality[-1],
        pending_quality_refunds=sum(c[3] for c in last),
    )
    week_ago = WindowFigures(
        orders=window_orders[-1 - TREND_DAYS], quality_refunds=window_quality[-1 - TREND_DAYS]
    )
    tiers = ctx.policy.verdicts(current.orders, current.quality_refunds, "store")
    line = tiers[0].rate_threshold if tiers else None
    return StoreRow(
        ctx=ctx,
        as_of=as_of,
        figures=current,
        tiers=tiers,
        state=worst_state(tiers),
        trend=trend(current, week_ago),
        window_orders=window_orders,
        window_quality_refunds=window_quality,
        products_at_risk=products_at_risk,
        spark=sparkline(window_orders, window_quality, line),
    )


_NOTHING: DailyCounts = (0, 0, 0, 0)


def worst_first_key(row: StoreRow) -> tuple[int, int, Fraction, str]:
    """Sort key: the state's group, then the rate (highest first, none last), then the id."""
    rate = row.rate
    return (
        _GROUP.get(row.state, _REST),
        1 if rate is None else 0,
        -(rate or Fraction(0)),
        row.store_id,
    )


def overview_rows(
    contexts: Iterable[StoreContext],
    series: Mapping[str, Mapping[date, DailyCounts]],
    products_at_risk: Mapping[str, int],
    now: datetime,
) -> list[StoreRow]:
    """Every store's line, worst first."""
    rows = [
        store_row(ctx, series.get(ctx.store_id, {}), now, products_at_risk.get(ctx.store_id, 0))
        for ctx in contexts
    ]
    rows.sort(key=worst_first_key)
    return rows


def state_counts(rows: Sequence[StoreRow]) -> dict[str, int]:
    """How many stores are in each worst state (the filter buttons say so)."""
    counts = dict.fromkeys(STATES, 0)
    for row in rows:
        counts[row.state] += 1
    return counts


def tier_columns(rows: Sequence[StoreRow]) -> list[str]:
    """The store-scope tiers to give a column, in the order the policies list them."""
    names: list[str] = []
    for row in rows:
        for verdict in row.tiers:
            if verdict.tier not in names:
                names.append(verdict.tier)
    return names


@dataclass(frozen=True, slots=True)
class Sparkline:
    """An inline SVG line: the path of the daily rates and the y of the lowest tier line."""

    width: int
    height: int
    path: str
    line_y: float | None
    first: Fraction | None
    last: Fraction | None


def sparkline(
    orders: Sequence[int],
    quality_refunds: Sequence[int],
    line: Decimal | None,
    *,
    width: int = 120,
    height: int = 28,
) -> Sparkline:
    """The daily rolling rate as an SVG path (days without orders leave a gap), scaled so
    that the tier line sits inside the box: the line is what the eye compares the rate with.

    Floats: this only places points on a 28-pixel line; no figure is read from it.
    """
    rates = [q / o if o else None for o, q in zip(orders, quality_refunds, strict=True)]
    known = [r for r in rates if r is not None]
    line_rate = float(line) if line is not None else None
    top = max([*known, (line_rate or 0.0) * 1.25, 0.001])
    pad = 2.0
    scale = (height - 2 * pad) / top
    step = (width - 2 * pad) / max(1, len(rates) - 1)
    parts: list[str] = []
    pen_down = False
    for index, rate in enumerate(rates):
        if rate is None:
            pen_down = False
            continue
        parts.append(
            f"{'L' if pen_down else 'M'}{pad + index * step:.1f} {height - pad - rate * scale:.1f}"
        )
        pen_down = True
    first = next((i for i, o in enumerate(orders) if o), None)
    last = next((i for i in range(len(orders) - 1, -1, -1) if orders[i]), None)
    return Sparkline(
        width=width,
        height=height,
        path=" ".join(parts),
        line_y=round(height - pad - line_rate * scale, 1) if line_rate is not None else None,
        first=Fraction(quality_refunds[first], orders[first]) if first is not None else None,
        last=Fraction(quality_refunds[last], orders[last]) if last is not None else None,
    )
