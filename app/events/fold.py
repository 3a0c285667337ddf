"""Folding events into per-refund and per-order state: pure, order-independent.

Every field below is a "winner" among the events seen so far (earliest or
latest by ``(occurred_at, tie-break)``), so folding the same SET of events in
any order gives the same state, and folding an event twice changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from app.events.schemas import OrderPaid, RefundReasonChanged, RefundRequested
from app.events.vocabulary import (
    APPEAL_RESULT,
    OPEN_STAGE_MAX,
    STAGE_RANK,
    UNCOUNTED_STAGES,
    UPHELD,
)


@dataclass(slots=True)
class RefundState:
    store_id: str
    refund_id: str
    order_id: str | None = None
    kind: str | None = None
    product_id: str | None = None
    requested_at: datetime | None = None
    requested_event_id: str | None = None
    first_reason: str | None = None
    first_reason_at: datetime | None = None
    first_reason_event_id: str | None = None
    latest_reason: str | None = None
    latest_reason_at: datetime | None = None
    latest_reason_event_id: str | None = None
    stage: int | None = None
    stage_at: datetime | None = None
    stage_event_id: str | None = None
    appeal: str | None = None
    appeal_at: datetime | None = None
    appeal_event_id: str | None = None
    # From the earliest refund.requested, like the order and the product.
    sku_id: str | None = None

    def reason(self, basis: str) -> str | None:
        return self.latest_reason if basis == "latest" else self.first_reason

    @property
    def is_open(self) -> bool:
        return self.stage is not None and self.stage <= OPEN_STAGE_MAX

    @property
    def is_counted(self) -> bool:
        """Counted unless rejected, withdrawn or appeal-upheld (DESIGN §3)."""
        return self.appeal != UPHELD and self.stage not in UNCOUNTED_STAGES


@dataclass(slots=True)
class OrderState:
    store_id: str
    order_id: str
    paid_at: datetime | None = None
    paid_event_id: str | None = None
    paid_product_id: str | None = None
    sku_id: str | None = None
    amount: str | None = None
    shipped_at: datetime | None = None
    delivered_at: datetime | None = None
    # The earliest order.shipped that names a courier (ties: the smaller event_id).
    courier: str | None = None
    courier_at: datetime | None = None
    courier_event_id: str | None = None


@dataclass(frozen=True, slots=True)
class Contribution:
    """What one order adds to the daily buckets right now: one day per figure.

    Computed by :func:`app.figures.rules.contribution` and stored on the order's
    row, so a change to the order is a delta against what it added before.
    """

    product_id: str | None = None
    paid_day: date | None = None
    applied_day: date | None = None
    quality_day: date | None = None
    pending: bool = False
    # What the explaining figures split by (DESIGN's breakdowns and SKU scope).
    sku_id: str | None = None
    courier: str | None = None
    ship_band: str | None = None
    reason: str | None = None  # of the earliest counted quality refund
    kind: str | None = None  # of the earliest counted quality refund


NO_CONTRIBUTION = Contribution()


def _earlier(at: datetime, key: str, than_at: datetime | None, than_key: str | None) -> bool:
    return than_at is None or (at, key) < (than_at, than_key or "")


def _later(at: datetime, key: str, than_at: datetime | None, than_key: str | None) -> bool:
    return than_at is None or (at, key) > (than_at, than_key or "")


def fold_refund_event(state: RefundState, event: object) -> None:
    """Merge one refund event into the refund's state (in place)."""
    kind: str = event.type  # type: ignore[attr-defined]
    at: datetime = event.occurred_at  # type: ignore[attr-defined]
    eid: str = event.event_id  # type: ignore[attr-defined]
    if isinstance(event, RefundRequested) and _earlier(
        at, eid, state.requested_at, state.requested_event_id
    ):
        state.requested_at = at
        state.requested_event_id = eid
        state.order_id = event.order_id
        state.kind = event.kind
        state.product_id = event.product_id
        state.sku_id = event.sku_id
    if isinstance(event, RefundRequested | RefundReasonChanged):
        if _earlier(at, eid, state.first_reason_at, state.first_reason_event_id):
            state.first_reason, state.first_reason_at = event.reason, at
            state.first_reason_event_id = eid
        if _later(at, eid, state.latest_reason_at, state.latest_reason_event_id):
            state.latest_reason, state.latest_reason_at = event.reason, at
            state.latest_reason_event_id = eid
    rank = STAGE_RANK.get(kind)
    if rank is not None and (
        state.stage_at is None
        or (at, rank, eid) > (state.stage_at, state.stage or 0, state.stage_event_id or "")
    ):
        state.stage, state.stage_at, state.stage_event_id = rank, at, eid
    appeal = APPEAL_RESULT.get(kind)
    if appeal is not None and _later(at, eid, state.appeal_at, state.appeal_event_id):
        state.appeal, state.appeal_at, state.appeal_event_id = appeal, at, eid


def fold_order_event(state: OrderState, event: object) -> None:
    """Merge one order event into the order's state (in place).

    The latest order.paid wins (ties: greater event_id); shipping keeps the
    earliest shipped and delivered instants.
    """
    at: datetime = event.occurred_at  # type: ignore[attr-defined]
    eid: str = event.event_id  # type: ignore[attr-defined]
    kind: str = event.type  # type: ignore[attr-defined]
    if isinstance(event, OrderPaid):
        if _later(at, eid, state.paid_at, state.paid_event_id):
            state.paid_at, state.paid_event_id = at, eid
            state.paid_product_id = event.product_id
            state.sku_id = event.sku_id
            state.amount = event.amount
    elif kind == "order.shipped":
        if state.shipped_at is None or at < state.shipped_at:
            state.shipped_at = at
        courier = getattr(event, "courier", None)
        if courier and _earlier(at, eid, state.courier_at, state.courier_event_id):
            state.courier, state.courier_at, state.courier_event_id = courier, at, eid
    elif kind == "order.delivered" and (state.delivered_at is None or at < state.delivered_at):
        state.delivered_at = at
