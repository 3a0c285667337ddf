"""Reference implementation ("oracle") of DESIGN.md section 3, computed from raw events.

Deliberately simple and slow: every call walks the whole event list with plain loops and
recomputes everything from scratch. No caching, no incremental state, nothing imported
from ``app``. The service's incremental figures are compared against this in property
tests, so readability beats speed everywhere here.

Events are plain dicts exactly as sent to ``POST /v1/events``; the list is the set the
service *accepted* (the caller passes only events it expects to be accepted), in arrival
order. Exact resends are tolerated: the first occurrence of each ``event_id`` wins.
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
    product_id: str | None


@dataclass(frozen=True)
class _Refund:
    refund_id: str
    order_id: str
    day: date  # day of its (earliest) refund.requested
    requested_key: tuple[datetime, str]  # (occurred_at, event_id) of that requested event
    product_id: str | None
    quality: bool
    open: bool
    counted: bool


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
        # Several requested events: the earliest by (occurred_at, event_id) gives all that.
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

        # "If several order.paid events name one order, the one with the latest
        # occurred_at wins (ties: the greater event_id)." Only the winner matters.
        winner = max(paid, key=time_then_id) if paid else None
        paid_day = event_day(winner, tz) if winner is not None else None

        # "an order's product comes from its order.paid, else from its earliest
        # refund.requested that names one" (over all refunds of the order).
        product_id = winner.get("product_id") if winner is not None else None
        if product_id is None:
            naming = [r for r in refunds if r.order_id == order_id and r.product_id is not None]
            if naming:
                product_id = min(naming, key=lambda r: r.requested_key).product_id

        orders[order_id] = _Order(order_id=order_id, paid_day=paid_day, product_id=product_id)

    return orders, refunds


# --- public API ------------------------------------------------------------------------


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
    zone = ZoneInfo(tz)
    store_events = accepted_events_of_store(events, store_id)
    orders, refunds = _orders_and_refunds(store_events, zone, policy)

    # "the window is the days D-N+1 … D"
    first_day = as_of - timedelta(days=policy.window_days - 1)

    def in_window(day: date | None) -> bool:
        return day is not None and first_day <= day <= as_of

    def in_scope(order_id: str) -> bool:
        # Product scope: "the same figures restricted to one product_id". An order without
        # a product counts only at store scope.
        return product_id is None or orders[order_id].product_id == product_id

    # orders: "distinct orders whose order.paid day is in the window"
    orders_count = 0
    for order in orders.values():
        if in_scope(order.order_id) and in_window(order.paid_day):
            orders_count += 1

    applied = 0
    quality_count = 0
    pending = 0
    for order in orders.values():
        if not in_scope(order.order_id):
            continue
        quality_refunds_of_order = [
            r for r in refunds if r.order_id == order.order_id and r.quality
        ]
        counted_of_order = [r for r in quality_refunds_of_order if r.counted]

        # applied_quality_refunds: "distinct orders whose earliest quality refund (whatever
        # its outcome) has its day in the window"
        if quality_refunds_of_order and in_window(min(r.day for r in quality_refunds_of_order)):
            applied += 1

        # quality_refunds: "distinct orders whose earliest counted quality refund has its
        # day in the window"
        if counted_of_order and in_window(min(r.day for r in counted_of_order)):
            quality_count += 1
            # pending: "the orders in quality_refunds whose counted refunds are all still
            # open" (all counted quality refunds of the order, whatever their day)
            if all(r.open for r in counted_of_order):
                pending += 1

    return OracleFigures(
        orders=orders_count,
        quality_refunds=quality_count,
        applied_quality_refunds=applied,
        pending_quality_refunds=pending,
        quality_refund_rate=format_rate(quality_count, orders_count),
    )


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
    store_events = accepted_events_of_store(events, store_id)
    orders, _refunds = _orders_and_refunds(store_events, ZoneInfo(tz), policy)

    product_ids = sorted({o.product_id for o in orders.values() if o.product_id is not None})
    result: dict[str, OracleFigures] = {}
    for pid in product_ids:
        product_figures = figures(
            events, store_id=store_id, as_of=as_of, tz=tz, policy=policy, product_id=pid
        )
        if (
            product_figures.orders
            or product_figures.quality_refunds
            or product_figures.applied_quality_refunds
            or product_figures.pending_quality_refunds
        ):
            result[pid] = product_figures
    return result
