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
from dataclasses import dataclass
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

Scope = tuple[str, str]  # (store_id, product_id or "" for the store)
BucketKey = tuple[str, str, date]  # (store_id, scope, day)


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
            if not refund.is_open:
                all_open = False
    return Contribution(
        product_id=order_product(order, refunds),
        paid_day=paid_day,
        applied_day=applied_day,
        quality_day=quality_day,
        pending=quality_day is not None and all_open,
    )


def bucket_units(contrib: Contribution) -> list[tuple[str, date, int]]:
    """(scope, day, figure index) units a contribution adds."""
    scopes = [STORE_SCOPE] if contrib.product_id is None else [STORE_SCOPE, contrib.product_id]
    units: list[tuple[str, date, int]] = []
    for scope in scopes:
        if contrib.paid_day is not None:
            units.append((scope, contrib.paid_day, 0))
        if contrib.applied_day is not None:
            units.append((scope, contrib.applied_day, 1))
        if contrib.quality_day is not None:
            units.append((scope, contrib.quality_day, 2))
            if contrib.pending:
                units.append((scope, contrib.quality_day, 3))
    return units


def add_delta(
    deltas: dict[BucketKey, list[int]],
    store_id: str,
    old: Contribution,
    new: Contribution,
) -> None:
    """Accumulate new − old into per-(store, scope, day) figure deltas."""
    if old == new:
        return
    for sign, contrib in ((-1, old), (1, new)):
        for scope, day, index in bucket_units(contrib):
            row = deltas.get((store_id, scope, day))
            if row is None:
                row = deltas[(store_id, scope, day)] = [0, 0, 0, 0]
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
) -> dict[BucketKey, list[int]]:
    """The bucket deltas of orders whose contribution went from ``before`` to ``after``."""
    deltas: dict[BucketKey, list[int]] = {}
    for key, new in after.items():
        add_delta(deltas, key[0], before.get(key, NO_CONTRIBUTION), new)
    return deltas


def merge_deltas(into: dict[BucketKey, list[int]], more: Mapping[BucketKey, Sequence[int]]) -> None:
    """Add ``more`` to ``into`` (the deltas of several chunks, written once)."""
    for key, row in more.items():
        total = into.get(key)
        if total is None:
            into[key] = list(row)
        else:
            for index, value in enumerate(row):
                total[index] += value


def touched_scopes(deltas: Mapping[BucketKey, Sequence[int]]) -> set[Scope]:
    """The scopes whose figures a set of deltas moves (the ones to re-evaluate)."""
    return {(store_id, scope) for (store_id, scope, _day), row in deltas.items() if any(row)}


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
