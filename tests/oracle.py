"""Reference implementation ("oracle") of DESIGN.md §3 and §13, computed from raw events.

Deliberately simple and slow: every call walks the whole event list with plain loops and
recomputes everything from scratch. No caching, no incremental state, nothing imported
from ``app``. The service's incremental figures are compared against this in property
tests, so readability beats speed everywhere here.

Events are plain dicts exactly as sent to ``POST /v1/events``; the list is the set the
service *accepted* (the caller passes only events it expects to be accepted), in arrival
order. Exact resends are tolerated: the first occurrence of each ``event_id`` wins.

Besides the §3 figures (``figures``, ``products_with_data``) it computes the §13
explanations: ``sku_figures``, ``breakdown``, ``trend`` and ``count_clears_on``, and
``tier_count`` (the count a tier judges under the policy's ``count_basis``). The §4 tier
rules themselves are written independently in tests/policies/test_property_tiers.py
(``breaches`` / ``expected_tier``); they are not repeated here.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from fractions import Fraction
from typing import Any, Literal
from zoneinfo import ZoneInfo

# --- vocabulary (DESIGN §1) ------------------------------------------------------------

REASON_CODES: frozenset[str] = frozenset(
    {
        "quality_issue",
        "not_as_described",
        "damaged",
        "wrong_item",
        "missing_parts",
        "counterfeit",
        "changed_mind",
        "ordered_by_mistake",
        "shipping_delay",
        "lost_in_transit",
        "other",
    }
)

# "Each also accepted as its Chinese label". Labels written "A/B" in DESIGN §1 are
# accepted whole ("少件/漏发") and as either half ("少件", "漏发").
CHINESE_REASON_LABELS: dict[str, str] = {
    "质量问题": "quality_issue",
    "描述不符": "not_as_described",
    "破损": "damaged",
    "发错货": "wrong_item",
    "少件/漏发": "missing_parts",
    "少件": "missing_parts",
    "漏发": "missing_parts",
    "假冒品牌": "counterfeit",
    "不想要了/七天无理由": "changed_mind",
    "不想要了": "changed_mind",
    "七天无理由": "changed_mind",
    "拍错/多拍": "ordered_by_mistake",
    "拍错": "ordered_by_mistake",
    "多拍": "ordered_by_mistake",
    "发货慢": "shipping_delay",
    "快递丢件": "lost_in_transit",
    "其他": "other",
}

# Lifecycle stages in the order the event table of DESIGN §2 lists them. On equal
# occurred_at "the later stage wins" (DESIGN §3), i.e. the higher index here.
LIFECYCLE_STAGES: tuple[str, ...] = (
    "refund.requested",
    "refund.approved",
    "refund.return_shipped",
    "refund.return_received",
    "refund.succeeded",
    "refund.rejected",
    "refund.withdrawn",
)
OPEN_STAGES: frozenset[str] = frozenset(
    {"refund.requested", "refund.approved", "refund.return_shipped", "refund.return_received"}
)
REASON_EVENT_TYPES: frozenset[str] = frozenset({"refund.requested", "refund.reason_changed"})
APPEAL_EVENT_TYPES: frozenset[str] = frozenset({"refund.appeal_upheld", "refund.appeal_rejected"})


@dataclass(frozen=True)
class OraclePolicy:
    window_days: int = 30
    quality_reasons: frozenset[str] = frozenset({"quality_issue", "not_as_described"})
    reason_basis: Literal["first", "latest"] = "first"
    # DESIGN §13 "Counting like the platform": "counted (default: the tiers judge
    # quality_refunds) or applied (they judge applied_quality_refunds)". Only what the
    # tiers judge uses it (tier_count, count_clears_on); the figures and the rate do not.
    count_basis: Literal["counted", "applied"] = "counted"


@dataclass(frozen=True)
class OracleFigures:
    orders: int
    quality_refunds: int
    applied_quality_refunds: int
    pending_quality_refunds: int
    # quality_refunds / orders, exact, rounded half-even to 6 places; None when orders == 0
    quality_refund_rate: str | None


# --- small helpers ---------------------------------------------------------------------


def normalize_reason(reason: str) -> str:
    """A reason code, or its Chinese label mapped to the code (DESIGN §1)."""
    if reason in REASON_CODES:
        return reason
    if reason in CHINESE_REASON_LABELS:
        return CHINESE_REASON_LABELS[reason]
    raise ValueError(f"unknown reason {reason!r}: the service would have rejected this event")


def parse_occurred_at(value: str) -> datetime:
    """RFC 3339 with an offset (DESIGN §2). A naive time would have been rejected."""
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    parsed = datetime.fromisoformat(text)
    if parsed.tzinfo is None or parsed.utcoffset() is None:
        raise ValueError(f"naive occurred_at {value!r}: the service would have rejected it")
    return parsed


def instant(event: Mapping[str, Any]) -> datetime:
    """The event's occurred_at as an aware datetime; aware datetimes compare as instants,
    so "12:00+08:00" and "04:00Z" are the same moment (a tie)."""
    return parse_occurred_at(event["occurred_at"])


def event_day(event: Mapping[str, Any], tz: ZoneInfo) -> date:
    """The calendar day of an event in the store's time zone (DESIGN §1 "window")."""
    return instant(event).astimezone(tz).date()


def time_then_id(event: Mapping[str, Any]) -> tuple[datetime, str]:
    """Sort key "by (occurred_at, event_id)"; event ids compare as plain strings."""
    return (instant(event), str(event["event_id"]))


def lifecycle_key(event: Mapping[str, Any]) -> tuple[datetime, int, str]:
    """Sort key for the outcome: occurred_at, then the later stage, then the event_id."""
    return (instant(event), LIFECYCLE_STAGES.index(event["type"]), str(event["event_id"]))


def format_rate(numerator: int, denominator: int) -> str | None:
    """numerator/denominator as a decimal string rounded half-even to 6 places."""
    if denominator == 0:
        return None
    # round() on a Fraction rounds half to even, exactly.
    millionths = round(Fraction(numerator * 1_000_000, denominator))
    return f"{millionths // 1_000_000}.{millionths % 1_000_000:06d}"


def accepted_events_of_store(
    events: Iterable[Mapping[str, Any]], store_id: str
) -> list[Mapping[str, Any]]:
    """Idempotency first (DESIGN §2): keep the first occurrence of each event_id in input
    order. Then keep only this store's events (ids of orders and refunds are per store)."""
    seen_ids: set[str] = set()
    kept: list[Mapping[str, Any]] = []
    for event in events:
        if event["event_id"] in seen_ids:
            continue
        seen_ids.add(event["event_id"])
        if event["store_id"] == store_id:
            kept.append(event)
    return kept


# --- the model of one store, rebuilt from scratch on every call ------------------------


@dataclass(frozen=True)
class _Order:
    order_id: str
    paid_day: date | None  # day of the winning order.paid; None when no order.paid
    paid_at: datetime | None  # instant of the winning order.paid
    product_id: str | None
    sku_id: str | None
    shipped_at: datetime | None  # instant of its earliest order.shipped; None if never shipped
    courier: str | None  # courier of its earliest order.shipped that names one


@dataclass(frozen=True)
class _Refund:
    refund_id: str
    order_id: str
    day: date  # day of its (earliest) refund.requested
    requested_key: tuple[datetime, str]  # (occurred_at, event_id) of that requested event
    product_id: str | None
    sku_id: str | None
    kind: str
    reason: str  # the reason code per the policy's reason_basis
    quality: bool
    open: bool
    counted: bool


def _names(value: Any) -> bool:
    """Whether an optional id/name field names something: present, not null, not empty."""
    return value is not None and value != ""


def _orders_and_refunds(
    store_events: list[Mapping[str, Any]], tz: ZoneInfo, policy: OraclePolicy
) -> tuple[dict[str, _Order], list[_Refund]]:
    # ---- refunds --------------------------------------------------------------------
    refund_ids: list[str] = []
    for event in store_events:
        if event["type"].startswith("refund.") and event["refund_id"] not in refund_ids:
            refund_ids.append(event["refund_id"])

    refunds: list[_Refund] = []
    for refund_id in refund_ids:
        mine = [e for e in store_events if e["type"].startswith("refund.")]
        mine = [e for e in mine if e["refund_id"] == refund_id]

        # "A refund counts in no figure until its refund.requested has arrived (it brings
        # the order, the kind and the reason); its day is that event's day."
        # Several requested events: the earliest by (occurred_at, event_id) gives all that,
        # and also the product_id and sku_id the refund names (DESIGN §3 product scope,
        # §13 SKU scope).
        requested = [e for e in mine if e["type"] == "refund.requested"]
        if not requested:
            continue
        first_requested = min(requested, key=time_then_id)

        # Reason: "under reason_basis first the reason of its earliest event that carries
        # a reason; under latest, of its latest such event."
        with_reason = [e for e in mine if e["type"] in REASON_EVENT_TYPES]
        if policy.reason_basis == "first":
            reason_event = min(with_reason, key=time_then_id)
        else:
            reason_event = max(with_reason, key=time_then_id)
        reason = normalize_reason(reason_event["reason"])
        quality = reason in policy.quality_reasons

        # Outcome: "from its latest lifecycle event by occurred_at (ties: the later stage
        # wins)". reason_changed and appeal events are not lifecycle events.
        lifecycle = [e for e in mine if e["type"] in LIFECYCLE_STAGES]
        latest_stage = max(lifecycle, key=lifecycle_key)["type"]
        is_open = latest_stage in OPEN_STAGES

        # Appeal: "An appeal's result is its latest appeal event; upheld excludes".
        appeals = [e for e in mine if e["type"] in APPEAL_EVENT_TYPES]
        upheld = bool(appeals) and max(appeals, key=time_then_id)["type"] == (
            "refund.appeal_upheld"
        )

        # "a refund is counted unless it is rejected, withdrawn or appeal-upheld"
        counted = latest_stage not in ("refund.rejected", "refund.withdrawn") and not upheld

        refunds.append(
            _Refund(
                refund_id=refund_id,
                order_id=first_requested["order_id"],
                day=event_day(first_requested, tz),
                requested_key=time_then_id(first_requested),
                product_id=first_requested.get("product_id"),
                sku_id=first_requested["sku_id"] if _names(first_requested.get("sku_id")) else None,
                kind=first_requested["kind"],
                reason=reason,
                quality=quality,
                open=is_open,
                counted=counted,
            )
        )

    # ---- orders ---------------------------------------------------------------------
    order_ids: list[str] = []
    for event in store_events:
        if event["type"] == "order.paid" and event["order_id"] not in order_ids:
            order_ids.append(event["order_id"])
    for refund in refunds:
        if refund.order_id not in order_ids:
            order_ids.append(refund.order_id)

    orders: dict[str, _Order] = {}
    for order_id in order_ids:
        paid = [e for e in store_events if e["type"] == "order.paid"]
        paid = [e for e in paid if e["order_id"] == order_id]
        of_order = [r for r in refunds if r.order_id == order_id]

        # "If several order.paid events name one order, the one with the latest
        # occurred_at wins (ties: the greater event_id)." Only the winner matters.
        winner = max(paid, key=time_then_id) if paid else None
        paid_day = event_day(winner, tz) if winner is not None else None
        paid_at = instant(winner) if winner is not None else None

        # "an order's product comes from its order.paid, else from its earliest
        # refund.requested that names one" (over all refunds of the order).
        product_id = winner.get("product_id") if winner is not None else None
        if product_id is None:
            naming = [r for r in of_order if r.product_id is not None]
            if naming:
                product_id = min(naming, key=lambda r: r.requested_key).product_id

        # DESIGN §13: "an order's sku: its winning order.paid's, else its earliest
        # refund.requested that names one" (also when the winner carries no sku_id).
        sku_id = None
        if winner is not None and _names(winner.get("sku_id")):
            sku_id = winner["sku_id"]
        if sku_id is None:
            naming = [r for r in of_order if r.sku_id is not None]
            if naming:
                sku_id = min(naming, key=lambda r: r.requested_key).sku_id

        # DESIGN §13: courier "from its earliest order.shipped that names one"; ship hours
        # "from paid to its earliest order.shipped" (any shipped event, named or not).
        shipped = [e for e in store_events if e["type"] == "order.shipped"]
        shipped = [e for e in shipped if e["order_id"] == order_id]
        shipped_at = instant(min(shipped, key=time_then_id)) if shipped else None
        with_courier = [e for e in shipped if _names(e.get("courier"))]
        courier = min(with_courier, key=time_then_id)["courier"] if with_courier else None

        orders[order_id] = _Order(
            order_id=order_id,
            paid_day=paid_day,
            paid_at=paid_at,
            product_id=product_id,
            sku_id=sku_id,
            shipped_at=shipped_at,
            courier=courier,
        )

    return orders, refunds


def _model(
    events: Iterable[Mapping[str, Any]], store_id: str, tz: str, policy: OraclePolicy
) -> tuple[dict[str, _Order], list[_Refund]]:
    return _orders_and_refunds(accepted_events_of_store(events, store_id), ZoneInfo(tz), policy)


def _first_day(as_of: date, policy: OraclePolicy) -> date:
    """The first day of the window ending on ``as_of``: "the window is the days
    D-N+1 … D"."""
    return as_of - timedelta(days=policy.window_days - 1)


def _earliest_quality_refund(order_id: str, refunds: list[_Refund]) -> _Refund | None:
    """The order's earliest quality refund (whatever its outcome), by its refund.requested
    (occurred_at, event_id). Its day is the earliest day of the order's quality refunds."""
    mine = [r for r in refunds if r.order_id == order_id and r.quality]
    return min(mine, key=lambda r: r.requested_key) if mine else None


def _earliest_counted_quality_refund(order_id: str, refunds: list[_Refund]) -> _Refund | None:
    """The order's earliest *counted* quality refund, by (occurred_at, event_id)."""
    mine = [r for r in refunds if r.order_id == order_id and r.quality and r.counted]
    return min(mine, key=lambda r: r.requested_key) if mine else None


def _scoped(
    orders: dict[str, _Order], product_id: str | None, sku_id: str | None = None
) -> list[_Order]:
    """The orders of a scope: the store, one product ("an order's product comes from its
    order.paid, else ..."), or one sku of one product. An order without a product (or a
    sku) is in no product (or sku) scope."""
    if sku_id is not None and product_id is None:
        raise ValueError("a sku scope needs its product_id")
    chosen: list[_Order] = []
    for order in orders.values():
        if product_id is not None and order.product_id != product_id:
            continue
        if sku_id is not None and order.sku_id != sku_id:
            continue
        chosen.append(order)
    return chosen


def _paid_in_window(order: _Order, first_day: date, as_of: date) -> bool:
    """orders: "distinct orders whose order.paid day is in the window"."""
    return order.paid_day is not None and first_day <= order.paid_day <= as_of


def _counted_in_window(
    order: _Order, refunds: list[_Refund], first_day: date, as_of: date
) -> _Refund | None:
    """quality_refunds: "distinct orders whose earliest counted quality refund has its day
    in the window". That refund when the order is in the count, else None."""
    refund = _earliest_counted_quality_refund(order.order_id, refunds)
    if refund is not None and first_day <= refund.day <= as_of:
        return refund
    return None


def _figures_of(
    scope: list[_Order], refunds: list[_Refund], first_day: date, as_of: date
) -> OracleFigures:
    orders_count = 0
    applied = 0
    quality_count = 0
    pending = 0
    for order in scope:
        if _paid_in_window(order, first_day, as_of):
            orders_count += 1

        # applied_quality_refunds: "distinct orders whose earliest quality refund (whatever
        # its outcome) has its day in the window"
        earliest = _earliest_quality_refund(order.order_id, refunds)
        if earliest is not None and first_day <= earliest.day <= as_of:
            applied += 1

        if _counted_in_window(order, refunds, first_day, as_of) is not None:
            quality_count += 1
            # pending: "the orders in quality_refunds whose counted refunds are all still
            # open" (all counted quality refunds of the order, whatever their day)
            counted_of_order = [
                r for r in refunds if r.order_id == order.order_id and r.quality and r.counted
            ]
            if all(r.open for r in counted_of_order):
                pending += 1

    return OracleFigures(
        orders=orders_count,
        quality_refunds=quality_count,
        applied_quality_refunds=applied,
        pending_quality_refunds=pending,
        quality_refund_rate=format_rate(quality_count, orders_count),
    )


def _has_data(f: OracleFigures) -> bool:
    return bool(
        f.orders or f.quality_refunds or f.applied_quality_refunds or f.pending_quality_refunds
    )


# --- public API: DESIGN §3 ---------------------------------------------------------------


def figures(
    events: Iterable[Mapping[str, Any]],
    *,
    store_id: str,
    as_of: date,
    tz: str = "Asia/Shanghai",
    policy: OraclePolicy = OraclePolicy(),
    product_id: str | None = None,
) -> OracleFigures:
    """The DESIGN §3 figures of one store (or, with ``product_id``, one product of it)."""
    orders, refunds = _model(events, store_id, tz, policy)
    # Product scope: "the same figures restricted to one product_id".
    scope = _scoped(orders, product_id)
    return _figures_of(scope, refunds, _first_day(as_of, policy), as_of)


def products_with_data(
    events: Iterable[Mapping[str, Any]],
    *,
    store_id: str,
    as_of: date,
    tz: str = "Asia/Shanghai",
    policy: OraclePolicy = OraclePolicy(),
) -> dict[str, OracleFigures]:
    """Figures of every product of the store that has any non-zero figure in the window."""
    events = list(events)
    orders, _refunds = _model(events, store_id, tz, policy)

    product_ids = sorted({o.product_id for o in orders.values() if o.product_id is not None})
    result: dict[str, OracleFigures] = {}
    for pid in product_ids:
        product_figures = figures(
            events, store_id=store_id, as_of=as_of, tz=tz, policy=policy, product_id=pid
        )
        if _has_data(product_figures):
            result[pid] = product_figures
    return result


def tier_count(f: OracleFigures, policy: OraclePolicy) -> int:
    """The count a tier judges. DESIGN §13: "a policy's count_basis — counted (default: the
    tiers judge quality_refunds) or applied (they judge applied_quality_refunds)"."""
    if policy.count_basis == "counted":
        return f.quality_refunds
    if policy.count_basis == "applied":
        return f.applied_quality_refunds
    raise ValueError(f"unknown count_basis {policy.count_basis!r}")


# --- public API: DESIGN §13 -------------------------------------------------------------


def sku_figures(
    events: Iterable[Mapping[str, Any]],
    *,
    store_id: str,
    product_id: str,
    as_of: date,
    tz: str = "Asia/Shanghai",
    policy: OraclePolicy = OraclePolicy(),
) -> dict[str, OracleFigures]:
    """DESIGN §13 SKU scope: "§3's figures per sku_id (an order's sku: its winning
    order.paid's, else its earliest refund.requested that names one)", for the orders of
    ``product_id`` (§3's product rule). Only skus with any non-zero figure; an order
    without a sku is in no sku's figures."""
    orders, refunds = _model(events, store_id, tz, policy)
    first_day = _first_day(as_of, policy)
    of_product = _scoped(orders, product_id)
    sku_ids = sorted({o.sku_id for o in of_product if o.sku_id is not None})
    result: dict[str, OracleFigures] = {}
    for sku_id in sku_ids:
        sku_orders = [o for o in of_product if o.sku_id == sku_id]
        sku_result = _figures_of(sku_orders, refunds, first_day, as_of)
        if _has_data(sku_result):
            result[sku_id] = sku_result
    return result


SHIP_HOURS_BANDS: tuple[tuple[str, int | None], ...] = (
    ("0-24", 24),
    ("24-48", 48),
    ("48-72", 72),
    ("72+", None),
)
BREAKDOWN_BY: tuple[str, ...] = ("courier", "ship_hours", "reason", "kind")


def ship_hours_band(order: _Order) -> str | None:
    """DESIGN §13: "hours from paid to its earliest order.shipped (0-24, 24-48, 48-72, 72+,
    null if never shipped)". Paid is the winning order.paid's occurred_at; never paid is
    null too. A band is [lo, hi) in exact time, so exactly 24 h is "24-48"; shipped before
    paid (a negative time) is "0-24"."""
    if order.paid_at is None or order.shipped_at is None:
        return None
    elapsed = order.shipped_at - order.paid_at
    for band, upper_hours in SHIP_HOURS_BANDS:
        if upper_hours is None or elapsed < timedelta(hours=upper_hours):
            return band
    raise AssertionError("unreachable: the last band is open-ended")


def _breakdown_sort_key(item: dict[str, Any]) -> tuple[int, bool, str]:
    """DESIGN §13 "Items sort by quality_refunds, then key": quality_refunds descending, then key
    ascending, the null key last."""
    key = item["key"]
    return (-item["quality_refunds"], key is None, "" if key is None else key)


def breakdown(
    events: Iterable[Mapping[str, Any]],
    *,
    store_id: str,
    as_of: date,
    by: str,
    tz: str = "Asia/Shanghai",
    policy: OraclePolicy = OraclePolicy(),
    product_id: str | None = None,
) -> list[dict[str, Any]]:
    """DESIGN §13 breakdowns "over the same window as /metrics".

    - ``courier`` / ``ship_hours``: "split the window's orders by the order's courier
      (from its earliest order.shipped that names one; null if none) or by hours from paid
      to its earliest order.shipped", each item ``{key, orders, quality_refunds,
      quality_refund_rate}``: ``orders`` counts the orders paid in the window with that
      key, ``quality_refunds`` the orders in the window's ``quality_refunds`` with that key
      ("an order's quality refund counts in its own order's item", even when the order was
      paid before the window or never).
    - ``reason`` / ``kind``: "split quality_refunds by the earliest counted quality
      refund's reason or kind" (reason per the policy's reason_basis, as a code), items
      ``{key, quality_refunds}``.

    Items whose counts are all zero are left out. With ``product_id``, only that
    product's orders. The items' counts add up to the scope's ``orders`` and
    ``quality_refunds`` (the null key included)."""
    if by not in BREAKDOWN_BY:
        raise ValueError(f"unknown breakdown {by!r}; valid: {', '.join(BREAKDOWN_BY)}")
    orders, refunds = _model(events, store_id, tz, policy)
    first_day = _first_day(as_of, policy)

    # key -> [orders, quality_refunds], in first-seen order (sorted at the end)
    tallies: dict[str | None, list[int]] = {}
    for order in _scoped(orders, product_id):
        counted = _counted_in_window(order, refunds, first_day, as_of)
        if by == "courier":
            key = order.courier
        elif by == "ship_hours":
            key = ship_hours_band(order)
        elif counted is None:
            continue  # reason/kind split only the quality_refunds
        elif by == "reason":
            key = counted.reason
        else:
            key = counted.kind
        tally = tallies.setdefault(key, [0, 0])
        if by in ("courier", "ship_hours") and _paid_in_window(order, first_day, as_of):
            tally[0] += 1
        if counted is not None:
            tally[1] += 1

    items: list[dict[str, Any]] = []
    for key, (orders_count, quality_count) in tallies.items():
        if orders_count == 0 and quality_count == 0:
            continue
        if by in ("courier", "ship_hours"):
            items.append(
                {
                    "key": key,
                    "orders": orders_count,
                    "quality_refunds": quality_count,
                    "quality_refund_rate": format_rate(quality_count, orders_count),
                }
            )
        else:
            items.append({"key": key, "quality_refunds": quality_count})
    items.sort(key=_breakdown_sort_key)
    return items


TREND_STEP = Fraction(1, 1000)
TREND_DAYS = 7


def exact_rate(f: OracleFigures) -> Fraction | None:
    """quality_refunds / orders exactly; None when orders is 0."""
    if f.orders == 0:
        return None
    return Fraction(f.quality_refunds, f.orders)


def trend(
    events: Iterable[Mapping[str, Any]],
    *,
    store_id: str,
    as_of: date,
    tz: str = "Asia/Shanghai",
    policy: OraclePolicy = OraclePolicy(),
    product_id: str | None = None,
    sku_id: str | None = None,
) -> str | None:
    """DESIGN §13: "rising when its rate is at least 0.001 above the rate as of 7 days
    earlier, falling when at least 0.001 below, flat otherwise, null when either rate is
    null".

    The rate is the one the scope shows, ``quality_refunds / orders`` (§3), whatever the
    policy's count_basis (which changes what the tiers judge, not the rate). Compared
    exactly (Fractions, not the rounded 6-place strings): a change of exactly 0.001 is
    rising/falling. Both rates are computed from the same event set (today's outcomes),
    as ``/metrics?as_of=`` would show them. Scope: the store, a product, or (with both
    ids) one sku of a product."""
    events = list(events)
    orders, refunds = _model(events, store_id, tz, policy)
    scope = _scoped(orders, product_id, sku_id)
    now = exact_rate(_figures_of(scope, refunds, _first_day(as_of, policy), as_of))
    earlier_day = as_of - timedelta(days=TREND_DAYS)
    then = exact_rate(_figures_of(scope, refunds, _first_day(earlier_day, policy), earlier_day))
    if now is None or then is None:
        return None
    if now - then >= TREND_STEP:
        return "rising"
    if then - now >= TREND_STEP:
        return "falling"
    return "flat"


def _basis_day(order: _Order, refunds: list[_Refund], policy: OraclePolicy) -> date | None:
    """The one day on which an order adds to the count a tier judges: its earliest counted
    quality refund's day (counted basis), or its earliest quality refund's day (applied)."""
    if policy.count_basis == "counted":
        refund = _earliest_counted_quality_refund(order.order_id, refunds)
    elif policy.count_basis == "applied":
        refund = _earliest_quality_refund(order.order_id, refunds)
    else:
        raise ValueError(f"unknown count_basis {policy.count_basis!r}")
    return refund.day if refund is not None else None


def count_clears_on(
    events: Iterable[Mapping[str, Any]],
    *,
    store_id: str,
    as_of: date,
    tz: str = "Asia/Shanghai",
    policy: OraclePolicy = OraclePolicy(),
    min_count: int,
    product_id: str | None = None,
) -> date | None:
    """DESIGN §13: "the first day after as_of on which, with no new quality refunds, the
    window's quality_refunds falls below min_count". The count is the one the tiers judge
    (count_basis: ``quality_refunds`` or ``applied_quality_refunds``).

    "No new quality refunds and no outcome changes after as_of": the outcomes stay as the
    event set has them (the same ones that give the as_of figures), and refunds whose day
    is after as_of are left out. So the count on a day D > as_of is the number of orders
    of as_of's count whose day is still inside the window ending on D; it falls to 0 by
    as_of + window_days at the latest. None when the count as of as_of is already below
    min_count. Whether the tier is breached is the caller's business."""
    if min_count < 1:
        raise ValueError("min_count must be at least 1 (a count is never below 0)")
    orders, refunds = _model(events, store_id, tz, policy)

    days_up_to_as_of: list[date] = []
    for order in _scoped(orders, product_id):
        day = _basis_day(order, refunds, policy)
        if day is not None and day <= as_of:
            days_up_to_as_of.append(day)

    def count_on(last_day: date) -> int:
        first_day = _first_day(last_day, policy)
        return sum(1 for day in days_up_to_as_of if first_day <= day <= last_day)

    if count_on(as_of) < min_count:
        return None
    candidate = as_of + timedelta(days=1)
    while count_on(candidate) >= min_count:
        candidate += timedelta(days=1)
    return candidate
