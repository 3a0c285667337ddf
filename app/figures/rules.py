"""The rules of the figures (DESIGN §3), pure: which refunds count, what an order adds.

- Which refund is a quality refund, a *counted* one, a *pending* one: one
  predicate each, in Python (:func:`is_quality_refund`, …) and, for queries
  that filter refunds in SQL, their twins built from the same constants
  (:func:`quality_refund_sql`, …). A test holds the twins equal.
- What one order contributes to the daily buckets (:func:`contribution`): each
  order adds at most one to each figure, on exactly one day, so a change to an
  order is a small delta on a handful of bucket rows (:func:`add_delta`).
- Window sums from a daily series (:func:`sliding_windows`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from fractions import Fraction
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, and_, or_

from app.events.fold import NO_CONTRIBUTION, Contribution, OrderState, RefundState
from app.events.models import RefundRecord
from app.events.vocabulary import OPEN_STAGE_MAX, UNCOUNTED_STAGES, UPHELD
from app.figures.models import STORE_SCOPE
from app.policies.rules import PolicyRules
from app.policies.tiers import quality_refund_rate

Scope = tuple[str, str]  # (store_id, product_id or "" for the store)


@dataclass(frozen=True, slots=True)
class WindowFigures:
    """The four counts of a window (the rate is derived: see ``quality_refund_rate``)."""

    orders: int = 0
    applied_quality_refunds: int = 0
    quality_refunds: int = 0
    pending_quality_refunds: int = 0

    @property
    def has_data(self) -> bool:
        return any((self.orders, self.applied_quality_refunds, self.quality_refunds))


def figure_fields(figures: WindowFigures) -> dict[str, object]:
    """The fields of ``FigureFields`` (``app.figures.schemas``) for these window figures
    (the rate derived): for answers and for alert payloads alike."""
    return {
        "orders": figures.orders,
        "quality_refunds": figures.quality_refunds,
        "applied_quality_refunds": figures.applied_quality_refunds,
        "pending_quality_refunds": figures.pending_quality_refunds,
        "quality_refund_rate": quality_refund_rate(figures.quality_refunds, figures.orders),
    }


EMPTY = WindowFigures()


# --------------------------------------------------------------------------- which refunds count


def is_quality_refund(refund: RefundState, policy: PolicyRules) -> bool:
    """Requested, with a reason (per the policy's basis) the policy counts as quality."""
    return (
        refund.requested_at is not None
        and refund.reason(policy.reason_basis) in policy.quality_reasons
    )


def is_counted_quality_refund(refund: RefundState, policy: PolicyRules) -> bool:
    """A quality refund that is not rejected, withdrawn or appeal-upheld."""
    return is_quality_refund(refund, policy) and refund.is_counted


def is_pending_refund(refund: RefundState, policy: PolicyRules) -> bool:
    """A counted quality refund still open: the seller can still turn it."""
    return is_counted_quality_refund(refund, policy) and refund.is_open


def reason_column(policy: PolicyRules) -> Any:
    return (
        RefundRecord.latest_reason if policy.reason_basis == "latest" else RefundRecord.first_reason
    )


def quality_refund_sql(policy: PolicyRules) -> ColumnElement[bool]:
    """SQL twin of :func:`is_quality_refund` on the ``refunds`` table."""
    return and_(
        RefundRecord.requested_at.is_not(None),
        reason_column(policy).in_(sorted(policy.quality_reasons)),
    )


def counted_refund_sql() -> ColumnElement[bool]:
    """SQL twin of ``RefundState.is_counted``: not rejected, withdrawn or upheld."""
    return and_(
        or_(RefundRecord.appeal.is_(None), RefundRecord.appeal != UPHELD),
        or_(RefundRecord.stage.is_(None), RefundRecord.stage.not_in(UNCOUNTED_STAGES)),
    )


def open_refund_sql() -> ColumnElement[bool]:
    """SQL twin of ``RefundState.is_open``."""
    return RefundRecord.stage <= OPEN_STAGE_MAX


def counted_quality_refund_sql(policy: PolicyRules) -> ColumnElement[bool]:
    return and_(quality_refund_sql(policy), counted_refund_sql())


def pending_refund_sql(policy: PolicyRules) -> ColumnElement[bool]:
    return and_(counted_quality_refund_sql(policy), open_refund_sql())


# --------------------------------------------------------------------------- what an order adds


def local_day(at: datetime, tz: ZoneInfo) -> date:
    return at.astimezone(tz).date()


def order_product(order: OrderState | None, refunds: Iterable[RefundState]) -> str | None:
    """The order's product: from its order.paid, else its earliest refund.requested naming one."""
    if order is not None and order.paid_product_id is not None:
        return order.paid_product_id
    best: tuple[datetime, str, str] | None = None
    for refund in refunds:
        if refund.product_id is None or refund.requested_at is None:
            continue
        key = (refund.requested_at, refund.requested_event_id or "", refund.product_id)
        if best is None or key < best:
            best = key
    return best[2] if best is not None else None


def contribution(
    order: OrderState | None,
    refunds: Sequence[RefundState],
    *,
    tz: ZoneInfo,
    policy: PolicyRules,
) -> Contribution:
    """The order's share of each figure, from its state and its refunds' states."""
    paid_day = local_day(order.paid_at, tz) if order and order.paid_at else None
    applied_day: date | None = None
    quality_day: date | None = None
    first_counted: RefundState | None = None
    all_open = True
    for refund in refunds:
        if not is_quality_refund(refund, policy):
            continue  # counts nowhere until refund.requested has arrived
        assert refund.requested_at is not None
        day = local_day(refund.requested_at, tz)
        if applied_day is None or day < applied_day:
            applied_day = day
        if refund.is_counted:
            if quality_day is None or day < quality_day:
                quality_day = day
            if first_counted is None or _requested_key(refund) < _requested_key(first_counted):
                first_counted = refund
            if not refund.is_open:
                all_open = False
    return Contribution(
        product_id=order_product(order, refunds),
        paid_day=paid_day,
        applied_day=applied_day,
        quality_day=quality_day,
        pending=quality_day is not None and all_open,
        sku_id=order_sku(order, refunds),
        courier=order.courier if order is not None else None,
        ship_band=ship_band(order.paid_at, order.shipped_at) if order is not None else None,
        reason=first_counted.reason(policy.reason_basis) if first_counted else None,
        kind=first_counted.kind if first_counted else None,
    )


def _requested_key(refund: RefundState) -> tuple[datetime, str]:
    assert refund.requested_at is not None
    return refund.requested_at, refund.requested_event_id or ""


def order_sku(order: OrderState | None, refunds: Iterable[RefundState]) -> str | None:
    """The order's SKU: its winning order.paid's, else its earliest refund.requested's
    that names one (DESIGN's SKU scope)."""
    if order is not None and order.sku_id is not None:
        return order.sku_id
    best: tuple[datetime, str, str] | None = None
    for refund in refunds:
        if refund.sku_id is None or refund.requested_at is None:
            continue
        key = (refund.requested_at, refund.requested_event_id or "", refund.sku_id)
        if best is None or key < best:
            best = key
    return best[2] if best is not None else None


SHIP_BANDS = ("0-24", "24-48", "48-72", "72+")
"""Hours from paid to the earliest order.shipped; each band is [low, high) hours."""

BREAKDOWN_DIMENSIONS = ("courier", "ship_hours", "reason", "kind")
NO_KEY = ""  # a breakdown key that is null (no courier, never shipped): '' in the buckets


def ship_band(paid_at: datetime | None, shipped_at: datetime | None) -> str | None:
    """The band of hours from paid to shipped; None when never paid or never shipped.

    Shipped before paid (clocks of two systems) counts as within 24 hours.
    """
    if paid_at is None or shipped_at is None:
        return None
    hours = (shipped_at - paid_at).total_seconds() / 3600
    if hours < 24:
        return SHIP_BANDS[0]
    if hours < 48:
        return SHIP_BANDS[1]
    if hours < 72:
        return SHIP_BANDS[2]
    return SHIP_BANDS[3]


FigureKey = tuple[str, str, date]  # (store_id, scope, day)
SkuKey = tuple[str, str, str, date]  # (store_id, product_id, sku_id, day)
BreakdownKey = tuple[str, str, str, str, date]  # (store_id, scope, dimension, key, day)


@dataclass(slots=True)
class BucketDeltas:
    """What a set of order changes adds to each bucket table (one row per key)."""

    figures: dict[FigureKey, list[int]] = field(default_factory=dict)
    skus: dict[SkuKey, list[int]] = field(default_factory=dict)
    breakdowns: dict[BreakdownKey, list[int]] = field(default_factory=dict)

    def add(self, store_id: str, old: Contribution, new: Contribution) -> None:
        """Accumulate new − old for one order of ``store_id``."""
        if old == new:
            return
        for sign, contrib in ((-1, old), (1, new)):
            _add_units(self, store_id, contrib, sign)

    def touched_scopes(self) -> set[Scope]:
        """The store and product scopes whose figures move (the ones to re-evaluate)."""
        return {(s, scope) for (s, scope, _day), row in self.figures.items() if any(row)}


def _add_units(deltas: BucketDeltas, store_id: str, c: Contribution, sign: int) -> None:
    """Add ``sign`` × one order's units to the deltas (the hot loop of every ingest)."""
    paid, applied, quality = c.paid_day, c.applied_day, c.quality_day
    if paid is None and applied is None and quality is None:
        return  # counts on no day (a new order's "before"): nothing to add
    figures, skus, breakdowns = deltas.figures, deltas.skus, deltas.breakdowns
    pending = quality if c.pending else None
    days = ((0, paid), (1, applied), (2, quality), (3, pending))
    # courier and ship_hours split the window's orders and their quality refunds;
    # reason and kind split only the quality refunds.
    order_keys = (("courier", c.courier or NO_KEY), ("ship_hours", c.ship_band or NO_KEY))
    refund_keys = (("reason", c.reason or NO_KEY), ("kind", c.kind or NO_KEY))
    for scope in (STORE_SCOPE,) if c.product_id is None else (STORE_SCOPE, c.product_id):
        for index, day in days:
            if day is not None:
                key3 = (store_id, scope, day)
                row = figures.get(key3)
                if row is None:
                    row = figures[key3] = [0, 0, 0, 0]
                row[index] += sign
        for dimension, key in order_keys:
            if paid is not None:
                key5 = (store_id, scope, dimension, key, paid)
                row = breakdowns.get(key5)
                if row is None:
                    row = breakdowns[key5] = [0, 0]
                row[0] += sign
            if quality is not None:
                key5 = (store_id, scope, dimension, key, quality)
                row = breakdowns.get(key5)
                if row is None:
                    row = breakdowns[key5] = [0, 0]
                row[1] += sign
        if quality is not None:
            for dimension, key in refund_keys:
                key5 = (store_id, scope, dimension, key, quality)
                row = breakdowns.get(key5)
                if row is None:
                    row = breakdowns[key5] = [0, 0]
                row[1] += sign
    if c.product_id is not None and c.sku_id is not None:
        for index, day in days:
            if day is not None:
                key4 = (store_id, c.product_id, c.sku_id, day)
                row = skus.get(key4)
                if row is None:
                    row = skus[key4] = [0, 0, 0, 0]
                row[index] += sign


def contributions(
    order_keys: Sequence[tuple[str, str]],
    orders: Mapping[tuple[str, str], OrderState],
    refunds_by_order: Mapping[tuple[str, str], Sequence[RefundState]],
    zones: Mapping[str, ZoneInfo],
    policies: Mapping[str, PolicyRules],
) -> dict[tuple[str, str], Contribution]:
    """Each order's contribution under its store's zone and policy."""
    return {
        key: contribution(
            orders.get(key),
            refunds_by_order.get(key, ()),
            tz=zones[key[0]],
            policy=policies[key[0]],
        )
        for key in order_keys
    }


def bucket_deltas(
    before: Mapping[tuple[str, str], Contribution],
    after: Mapping[tuple[str, str], Contribution],
) -> BucketDeltas:
    """The bucket deltas of orders whose contribution went from ``before`` to ``after``."""
    deltas = BucketDeltas()
    for key, new in after.items():
        deltas.add(key[0], before.get(key, NO_CONTRIBUTION), new)
    return deltas


# --------------------------------------------------------------------------- trend

TREND_DAYS = 7
TREND_BAND = Fraction(1, 1000)
"""A rate moving by at least this (0.1 percentage point) in a week is a trend."""


def trend(now: WindowFigures, week_ago: WindowFigures) -> str | None:
    """``rising``, ``falling`` or ``flat``: the rate now against the rate 7 days earlier.

    Exact: the rates are fractions and the band is 1/1000, so a move of exactly
    0.001 is a trend. ``None`` when either rate is undefined (no orders).
    """
    if now.orders == 0 or week_ago.orders == 0:
        return None
    change = Fraction(now.quality_refunds, now.orders) - Fraction(
        week_ago.quality_refunds, week_ago.orders
    )
    if change >= TREND_BAND:
        return "rising"
    if change <= -TREND_BAND:
        return "falling"
    return "flat"


def count_clears_on(
    daily_counts: Mapping[date, int], as_of: date, window_days: int, min_count: int
) -> date | None:
    """The first day after ``as_of`` on which, with no new quality refunds, the
    window's count falls below ``min_count``; None when it already is below.

    ``daily_counts`` holds the count each day adds (the tier's basis: counted or
    applied) over the window ending on ``as_of``. Each day after ``as_of`` the
    window drops its oldest day; the answer is at most ``window_days`` days away.
    """
    first = as_of - timedelta(days=window_days - 1)
    remaining = sum(n for day, n in daily_counts.items() if first <= day <= as_of)
    if remaining < min_count:
        return None
    for k in range(1, window_days + 1):
        remaining -= daily_counts.get(first + timedelta(days=k - 1), 0)
        if remaining < min_count:
            return as_of + timedelta(days=k)
    return as_of + timedelta(days=window_days)  # unreachable: min_count >= 1


def window_sum(series: Mapping[date, WindowFigures], start: date, end: date) -> WindowFigures:
    """The figures of a window from a daily series (days outside it are ignored)."""
    totals = [0, 0, 0, 0]
    for day, f in series.items():
        if start <= day <= end:
            _add(totals, f, 1)
    return WindowFigures(*totals)


# --------------------------------------------------------------------------- windows


def sliding_windows(
    series: Mapping[date, WindowFigures], first: date, last: date, window_days: int
) -> list[tuple[date, WindowFigures]]:
    """One window sum per day from first to last, from the daily series."""
    points: list[tuple[date, WindowFigures]] = []
    totals = [0, 0, 0, 0]
    day = first - timedelta(days=window_days - 1)
    while day < first:
        _add(totals, series.get(day), 1)
        day += timedelta(days=1)
    day = first
    while day <= last:
        _add(totals, series.get(day), 1)
        if day > first:  # the day leaving the window was added (the first window's days)
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
