"""Rebuilding one store's buckets from its order/refund state.

Needed when what decides a day or a quality refund changes: the store's time
zone, or its policy's quality reasons or reason basis. It holds the store's
lock exclusively, so no ingest of that store interleaves.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.dialect import lock_key, lock_keys, upsert
from app.figures.models import DailyFigures
from app.figures.rules import NO_CONTRIBUTION, Contribution, add_delta, contribution
from app.ingest.fold import OrderState, RefundState
from app.ingest.models import OrderRecord, RefundRecord
from app.ingest.service import apply_bucket_deltas, order_state_columns, refund_state_columns
from app.stores.service import StoreContext


async def rebuild_store_figures(session: AsyncSession, ctx: StoreContext) -> int:
    """Recompute every order's contribution and the store's buckets; returns orders seen."""
    await lock_keys(session, [lock_key("store", ctx.store_id)])
    refunds_by_order: dict[str, list[RefundState]] = defaultdict(list)
    for row in await session.execute(
        select(*refund_state_columns()).where(RefundRecord.store_id == ctx.store_id)
    ):
        state = RefundState(*row)
        if state.order_id is not None:
            refunds_by_order[state.order_id].append(state)
    orders = {
        row.order_id: OrderState(*row)
        for row in await session.execute(
            select(*order_state_columns()).where(OrderRecord.store_id == ctx.store_id)
        )
    }
    deltas: dict[tuple[str, str, date], list[int]] = {}
    updates: list[dict[str, object]] = []
    for order_id in sorted(orders.keys() | refunds_by_order.keys()):
        new = contribution(
            orders.get(order_id),
            refunds_by_order.get(order_id, []),
            tz=ctx.tz,
            quality_reasons=ctx.quality_reasons,
            reason_basis=ctx.reason_basis,
        )
        add_delta(deltas, ctx.store_id, NO_CONTRIBUTION, new)
        updates.append(_contribution_row(ctx.store_id, order_id, orders.get(order_id), new))
    await session.execute(delete(DailyFigures).where(DailyFigures.store_id == ctx.store_id))
    if updates:
        stmt = upsert(
            session,
            OrderRecord.__table__,
            ["store_id", "order_id"],
            ["c_product_id", "c_paid_day", "c_applied_day", "c_quality_day", "c_pending"],
        )
        await session.execute(stmt, updates)
    await apply_bucket_deltas(session, deltas)
    return len(updates)


def _contribution_row(
    store_id: str, order_id: str, order: OrderState | None, new: Contribution
) -> dict[str, object]:
    return {
        "store_id": store_id,
        "order_id": order_id,
        "paid_at": order.paid_at if order else None,
        "c_product_id": new.product_id,
        "c_paid_day": new.paid_day,
        "c_applied_day": new.applied_day,
        "c_quality_day": new.quality_day,
        "c_pending": new.pending,
    }
