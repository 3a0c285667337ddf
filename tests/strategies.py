"""Hypothesis strategies for realistic refundwatch event streams (DESIGN §2).

Every generated event is valid as sent to ``POST /v1/events``: unique ``event_id``s, known
reasons (codes or Chinese labels), RFC 3339 ``occurred_at`` with an offset, all before
2026-11-26T00:00:00Z (never in the future). Streams deliberately contain the awkward
cases DESIGN §3 has rules for: orders paid twice, orders never paid, refunds whose
``refund.requested`` is missing, reasons changed, appeals, times near midnight in
several offsets, and several events at exactly the same instant.

For DESIGN §13 they also carry ``sku_id`` (a few skus per product) on most ``order.paid``
events and on some ``refund.requested`` ones, and ``order.shipped`` events (none, one or
several per order, with and without ``courier``) at drawn times from the order's latest
drawn payment: inside each ship-hours band, exactly 24, 48 and 72 hours after it, a
second either side of those, and before it. Orders never paid are sometimes shipped.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from hypothesis import strategies as st

# Nothing may be generated at or after this instant (the service refuses events more
# than 5 minutes in the future, and "today" for the tests is 2026-11-26).
LATEST_EXCLUSIVE = datetime(2026, 11, 26, tzinfo=UTC)

KINDS = ("refund_only_unshipped", "return_refund", "intercept", "refund_only")
QUALITY_REASONS = ("quality_issue", "not_as_described", "质量问题", "描述不符")
OTHER_REASONS = (
    "damaged",
    "wrong_item",
    "missing_parts",
    "counterfeit",
    "changed_mind",
    "ordered_by_mistake",
    "shipping_delay",
    "lost_in_transit",
    "other",
    "破损",
    "发错货",
    "少件/漏发",
    "假冒品牌",
    "不想要了/七天无理由",
    "拍错/多拍",
    "发货慢",
    "快递丢件",
    "其他",
)
COURIERS = ("SF", "ZTO", "YTO", "JD")
SKUS_PER_PRODUCT = 3
# Time from payment to an order.shipped: the band edges exactly (DESIGN §13 bands are
# [lo, hi) in hours), a second either side of them, inside each band, and before payment.
_EDGES = (timedelta(hours=24), timedelta(hours=48), timedelta(hours=72))
OFFSETS = (
    timedelta(hours=8),
    timedelta(0),  # rendered as "Z"
    timedelta(hours=-5),
    timedelta(hours=5, minutes=30),
)

# Lifecycle paths after refund.requested (the last element decides most outcomes).
LIFECYCLE_PATHS: tuple[tuple[str, ...], ...] = (
    (),
    ("refund.approved",),
    ("refund.succeeded",),
    ("refund.approved", "refund.succeeded"),
    ("refund.approved", "refund.return_shipped"),
    ("refund.approved", "refund.return_shipped", "refund.return_received"),
    ("refund.approved", "refund.return_shipped", "refund.return_received", "refund.succeeded"),
    ("refund.rejected",),
    ("refund.approved", "refund.return_shipped", "refund.return_received", "refund.rejected"),
    ("refund.withdrawn",),
    ("refund.approved", "refund.withdrawn"),
    ("refund.rejected", "refund.succeeded"),
)

# Reasons skewed toward quality ones: about half of all draws.
reasons = st.one_of(st.sampled_from(QUALITY_REASONS), st.sampled_from(OTHER_REASONS))


def render(moment: datetime, offset: timedelta) -> str:
    """RFC 3339 text of an instant in a given offset; UTC is written as "Z"."""
    text = moment.astimezone(timezone(offset)).isoformat()
    return text[: -len("+00:00")] + "Z" if text.endswith("+00:00") else text


class _Clock:
    """Draws instants inside [start, end], biased toward midnights and shared instants."""

    def __init__(self, draw: st.DrawFn, start: datetime, end: datetime) -> None:
        self.draw = draw
        self.start = start
        self.end = end
        # A few instants shared by unrelated events, so ties happen across orders too.
        self.pool = [self.anywhere() for _ in range(3)]

    def clamp(self, moment: datetime) -> datetime:
        return min(max(moment, self.start), self.end)

    def anywhere(self) -> datetime:
        draw = self.draw
        days = (self.end - self.start).days
        day = self.start.replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(
            days=draw(st.integers(0, days))
        )
        around = draw(
            st.sampled_from(
                (
                    timedelta(hours=16),  # midnight in Asia/Shanghai
                    timedelta(0),  # midnight UTC
                    timedelta(hours=5),  # midnight in New York (EST)
                    None,  # anywhere in the day
                )
            )
        )
        if around is None:
            moment = day + timedelta(seconds=draw(st.integers(0, 86_399)))
        else:
            moment = day + around + timedelta(minutes=draw(st.integers(-45, 45)))
        if draw(st.integers(0, 9)) == 0:
            moment += timedelta(milliseconds=draw(st.integers(1, 999)))
        return self.clamp(moment)

    def some_instant(self) -> datetime:
        if draw_weighted(self.draw, 0.15):
            return self.draw(st.sampled_from(self.pool))
        return self.anywhere()

    def after(self, moment: datetime) -> datetime:
        """Usually later than ``moment``; often equal (a tie); rarely earlier."""
        draw = self.draw
        if draw_weighted(draw, 0.08):
            return draw(st.sampled_from(self.pool))
        step = draw(st.sampled_from(("same", "same", "minutes", "hours", "days", "earlier")))
        if step == "same":
            delta = timedelta(0)
        elif step == "minutes":
            delta = timedelta(minutes=draw(st.integers(1, 90)))
        elif step == "hours":
            delta = timedelta(hours=draw(st.integers(1, 72)))
        elif step == "days":
            delta = timedelta(days=draw(st.integers(1, 12)), hours=draw(st.integers(0, 23)))
        else:
            delta = -timedelta(minutes=draw(st.integers(1, 600)))
        return self.clamp(moment + delta)

    def text(self, moment: datetime) -> str:
        return render(moment, self.draw(st.sampled_from(OFFSETS)))


def draw_weighted(draw: st.DrawFn, probability: float) -> bool:
    """True with roughly the given probability (in steps of 1/100)."""
    return draw(st.integers(0, 99)) < round(probability * 100)


def skus_of(product: str) -> tuple[str, ...]:
    """The few sku ids of a product ("p1-sku0", ...)."""
    return tuple(f"{product}-sku{k}" for k in range(SKUS_PER_PRODUCT))


def ship_delays() -> st.SearchStrategy[timedelta]:
    """Time from payment to an order.shipped event (DESIGN §13 ship-hours bands)."""
    second = timedelta(seconds=1)
    return st.one_of(
        st.sampled_from(_EDGES),  # exactly 24, 48, 72 h: the upper band
        st.sampled_from(_EDGES).map(lambda edge: edge - second),  # just below an edge
        st.sampled_from(_EDGES).map(lambda edge: edge + second),
        st.integers(0, 100 * 3600).map(lambda s: timedelta(seconds=s)),  # 0 to 100 h
        st.integers(1, 600).map(lambda m: -timedelta(minutes=m)),  # shipped before paid
    )


@st.composite
def event_streams(
    draw: st.DrawFn,
    stores: Sequence[str] = ("s1", "s2"),
    max_orders: int = 6,
    base: datetime = datetime(2026, 11, 20, tzinfo=UTC),
    days_span: int = 40,
    products: Sequence[str] = ("p1", "p2", "p3"),
) -> list[dict[str, Any]]:
    """A list of valid events for ``stores``, with unique event ids, in generation order.

    Instants lie between ``base - days_span days`` and ``base + 6 days``, and always
    before 2026-11-26T00:00:00Z. Order and refund ids repeat across stores on purpose
    (they are per store).
    """
    start = base - timedelta(days=days_span)
    end = min(base + timedelta(days=6), LATEST_EXCLUSIVE) - timedelta(seconds=1)
    if start >= end:
        raise ValueError("base - days_span must lie before 2026-11-26T00:00:00Z")
    clock = _Clock(draw, start, end)

    events: list[dict[str, Any]] = []  # without event_id yet

    def emit(type_: str, store: str, moment: datetime, **fields: Any) -> None:
        event: dict[str, Any] = {
            "type": type_,
            "store_id": store,
            "occurred_at": clock.text(moment),
        }
        event.update({k: v for k, v in fields.items() if v is not None})
        events.append(event)

    for store in stores:
        n_orders = draw(st.integers(0, max_orders))
        for i in range(n_orders):
            order_id = f"o{i}"
            order_time = clock.some_instant()

            # order.paid: usually once, sometimes twice (other product / other time, or
            # the very same instant), sometimes missing.
            n_paid = draw(st.sampled_from((0, 1, 1, 1, 1, 1, 2, 2)))
            paid_time = order_time
            # The product of the latest drawn order.paid (for a never-paid order, the one its
            # refunds' skus are drawn from).
            paid_product = draw(st.sampled_from(products))
            for k in range(n_paid):
                if k > 0:
                    paid_time = clock.after(paid_time)
                paid_product = draw(st.sampled_from(products))
                emit(
                    "order.paid",
                    store,
                    paid_time,
                    order_id=order_id,
                    product_id=paid_product,
                    sku_id=draw(st.sampled_from((None, *skus_of(paid_product)))),
                    amount=draw(st.sampled_from((None, "19.90", "129.00", "8.5"))),
                )

            # order.shipped: timed from the latest drawn payment (usually the winning
            # order.paid), sometimes several (with and without a courier); orders never
            # paid are shipped now and then too.
            if n_paid:
                n_shipped = draw(st.sampled_from((0, 0, 0, 1, 1, 1, 1, 1, 2, 3)))
            else:
                n_shipped = draw(st.sampled_from((0, 0, 0, 0, 0, 1)))
            shipped_times: list[datetime] = []
            for _ in range(n_shipped):
                shipped_time = clock.clamp(paid_time + draw(ship_delays()))
                shipped_times.append(shipped_time)
                emit(
                    "order.shipped",
                    store,
                    shipped_time,
                    order_id=order_id,
                    courier=draw(st.sampled_from((None, None, *COURIERS))),
                )
            if shipped_times and draw_weighted(draw, 0.5):
                delivered_time = clock.after(min(shipped_times))
                emit("order.delivered", store, delivered_time, order_id=order_id)

            n_refunds = draw(st.sampled_from((0, 0, 1, 1, 1, 2, 3)))
            for j in range(n_refunds):
                refund_id = f"r{i}-{j}"
                requested_time = clock.after(order_time)
                has_requested = draw_weighted(draw, 0.88)
                if has_requested:
                    kind = draw(st.sampled_from(KINDS))
                    product_id = draw(st.sampled_from((None, None, *products)))
                    # A sku of the product it names, else of the order's paid product.
                    sku_id = draw(
                        st.sampled_from((None, None, *skus_of(product_id or paid_product)))
                    )
                    emit(
                        "refund.requested",
                        store,
                        requested_time,
                        refund_id=refund_id,
                        order_id=order_id,
                        kind=kind,
                        reason=draw(reasons),
                        product_id=product_id,
                        sku_id=sku_id,
                        amount=draw(st.sampled_from((None, "19.90", "5.00"))),
                    )
                    if draw_weighted(draw, 0.08):
                        # The platform resent the application under another event id.
                        emit(
                            "refund.requested",
                            store,
                            clock.after(requested_time),
                            refund_id=refund_id,
                            order_id=order_id,
                            kind=kind,
                            reason=draw(reasons),
                            product_id=product_id,
                            sku_id=sku_id,
                        )

                path = draw(st.sampled_from(LIFECYCLE_PATHS))
                if not has_requested and not path:
                    path = ("refund.succeeded",)  # an orphan refund still has events
                moment = requested_time
                for stage in path:
                    moment = clock.after(moment)
                    fields: dict[str, Any] = {"refund_id": refund_id}
                    if stage == "refund.return_shipped":
                        fields["courier"] = draw(st.sampled_from((None, *COURIERS)))
                    emit(stage, store, moment, **fields)

                for _ in range(draw(st.sampled_from((0, 0, 0, 1, 1, 2)))):
                    emit(
                        "refund.reason_changed",
                        store,
                        clock.after(requested_time),
                        refund_id=refund_id,
                        reason=draw(reasons),
                    )

                for _ in range(draw(st.sampled_from((0, 0, 0, 0, 1, 2)))):
                    emit(
                        draw(st.sampled_from(("refund.appeal_upheld", "refund.appeal_rejected"))),
                        store,
                        clock.after(moment),
                        refund_id=refund_id,
                    )

    # Unique event ids, assigned in a drawn order so that "the greater event_id" in the
    # tie rules is unrelated to generation order. Zero-padded ASCII: every collation
    # orders them the same way.
    numbers = draw(st.permutations(range(len(events))))
    with_ids: list[dict[str, Any]] = []
    for number, event in zip(numbers, events, strict=True):
        with_ids.append({"event_id": f"e{number:05d}", **event})
    return with_ids


@st.composite
def shuffled_with_duplicates(
    draw: st.DrawFn, events: Sequence[Mapping[str, Any]], max_resends: int = 10
) -> list[dict[str, Any]]:
    """The same events in another order, with exact resends of some of them inserted."""
    shuffled = [dict(e) for e in draw(st.permutations(list(events)))]
    if not events:
        return shuffled
    for _ in range(draw(st.integers(0, max_resends))):
        original = draw(st.sampled_from(list(events)))
        position = draw(st.integers(0, len(shuffled)))
        shuffled.insert(position, copy.deepcopy(dict(original)))
    return shuffled
