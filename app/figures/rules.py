"""What one order contributes to the daily figures (DESIGN §3): a pure function.

Each order adds at most one to each figure, on exactly one day, so a change
to an order is a small delta on a handful of bucket rows.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from zoneinfo import ZoneInfo

from app.figures.models import STORE_SCOPE
from app.ingest.fold import OrderState, RefundState


@dataclass(frozen=True, slots=True)
class Contribution:
    product_id: str | None = None
    paid_day: date | None = None
    applied_day: date | None = None
    quality_day: date | None = None
    pending: bool = False

    def bucket_units(self) -> list[tuple[str, date, int]]:
        """(scope, day, figure index) units this contribution adds."""
        scopes = [STORE_SCOPE] if self.product_id is None else [STORE_SCOPE, self.product_id]
        units: list[tuple[str, date, int]] = []
        for scope in scopes:
            if self.paid_day is not None:
                units.append((scope, self.paid_day, 0))
            if self.applied_day is not None:
                units.append((scope, self.applied_day, 1))
            if self.quality_day is not None:
                units.append((scope, self.quality_day, 2))
                if self.pending:
                    units.append((scope, self.quality_day, 3))
        return units


NO_CONTRIBUTION = Contribution()


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
    quality_reasons: frozenset[str],
    reason_basis: str,
) -> Contribution:
    """The order's share of each figure, from its state and its refunds' states."""
    paid_day = local_day(order.paid_at, tz) if order and order.paid_at else None
    applied_day: date | None = None
    quality_day: date | None = None
    all_open = True
    for refund in refunds:
        if refund.requested_at is None:
            continue  # counts nowhere until refund.requested has arrived
        if refund.reason(reason_basis) not in quality_reasons:
            continue
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


def add_delta(
    deltas: dict[tuple[str, str, date], list[int]],
    store_id: str,
    old: Contribution,
    new: Contribution,
) -> None:
    """Accumulate new − old into per-(store, scope, day) figure deltas."""
    if old == new:
        return
    for sign, contrib in ((-1, old), (1, new)):
        for scope, day, index in contrib.bucket_units():
            row = deltas.get((store_id, scope, day))
            if row is None:
                row = deltas[(store_id, scope, day)] = [0, 0, 0, 0]
            row[index] += sign
