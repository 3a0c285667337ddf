"""What an alert carries (DESIGN §5–6): figures, line, headroom, and what to act on."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from datetime import date
from typing import Any

from sqlalchemy import and_, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.figures.models import STORE_SCOPE, DailyFigures
from app.figures.service import WindowFigures
from app.ingest.fold import RefundState
from app.ingest.models import OrderRecord, RefundRecord
from app.ingest.service import refund_state_columns
from app.risk.advice import advice_for
from app.risk.tiers import TierVerdict, quality_refund_rate
from app.stores.service import StoreContext

MAX_PENDING_LISTED = 20
TOP_N = 5


def figures_dict(figures: WindowFigures, ctx: StoreContext, as_of: date) -> dict[str, Any]:
    return {
        "as_of": as_of.isoformat(),
        "window_days": ctx.window_days,
        "orders": figures.orders,
        "quality_refunds": figures.quality_refunds,
        "applied_quality_refunds": figures.applied_quality_refunds,
        "pending_quality_refunds": figures.pending_quality_refunds,
        "quality_refund_rate": quality_refund_rate(figures.quality_refunds, figures.orders),
    }


async def counted_quality_refunds(
    session: AsyncSession, ctx: StoreContext, product_id: str | None, as_of: date
) -> list[tuple[RefundState, bool]]:
    """The counted quality refunds behind the window's count, each with "order pending"."""
    start, end = ctx.window(as_of)
    conditions = [
        OrderRecord.store_id == ctx.store_id,
        OrderRecord.c_quality_day >= start,
        OrderRecord.c_quality_day <= end,
    ]
    if product_id is not None:
        conditions.append(OrderRecord.c_product_id == product_id)
    rows = await session.execute(
        select(*refund_state_columns(), OrderRecord.c_product_id, OrderRecord.c_pending)
        .join(
            OrderRecord,
            and_(
                OrderRecord.store_id == RefundRecord.store_id,
                OrderRecord.order_id == RefundRecord.order_id,
            ),
        )
        .where(*conditions)
    )
    found: list[tuple[RefundState, bool]] = []
    for row in rows:
        state = RefundState(*row[:-2])
        order_product_id, order_pending = row[-2], row[-1]
        if (
            state.requested_at is not None
            and state.reason(ctx.reason_basis) in ctx.quality_reasons
            and state.is_counted
        ):
            # The product the figures count this refund under is its order's (DESIGN §3);
            # a refund.requested need not name one.
            state.product_id = order_product_id or state.product_id
            found.append((state, bool(order_pending)))
    return found


async def top_products(
    session: AsyncSession, ctx: StoreContext, as_of: date
) -> list[dict[str, Any]]:
    start, end = ctx.window(as_of)
    total = func.sum(DailyFigures.quality_refunds)
    rows = await session.execute(
        select(DailyFigures.product_id, total)
        .where(
            DailyFigures.store_id == ctx.store_id,
            DailyFigures.product_id != STORE_SCOPE,
            DailyFigures.day >= start,
            DailyFigures.day <= end,
        )
        .group_by(DailyFigures.product_id)
        .having(total > 0)
        .order_by(total.desc(), DailyFigures.product_id)
        .limit(TOP_N)
    )
    return [{"product_id": r[0], "quality_refunds": int(r[1])} for r in rows]


def pending_refund_items(
    counted: Sequence[tuple[RefundState, bool]], ctx: StoreContext
) -> list[dict[str, Any]]:
    items = [
        {
            "refund_id": state.refund_id,
            "order_id": state.order_id,
            "product_id": state.product_id,
            "kind": state.kind,
            "reason": state.reason(ctx.reason_basis),
            "requested_on": state.requested_at.astimezone(ctx.tz).date().isoformat()
            if state.requested_at
            else None,
        }
        for state, order_pending in counted
        if order_pending and state.is_open
    ]
    items.sort(key=lambda item: (item["requested_on"] or "", item["refund_id"]))
    return items[:MAX_PENDING_LISTED]


def top_reasons(
    counted: Sequence[tuple[RefundState, bool]], ctx: StoreContext
) -> list[dict[str, Any]]:
    counts = Counter(state.reason(ctx.reason_basis) for state, _ in counted)
    return [
        {"reason": reason, "count": n}
        for reason, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0] or ""))[:TOP_N]
        if reason is not None
    ]


async def alert_data(
    session: AsyncSession,
    *,
    ctx: StoreContext,
    product_id: str | None,
    verdict: TierVerdict,
    previous_state: str,
    figures: WindowFigures,
    as_of: date,
) -> dict[str, Any]:
    """The alert's ``data`` (also the standard webhook body's ``data``), minus ids."""
    counted = await counted_quality_refunds(session, ctx, product_id, as_of)
    pending = pending_refund_items(counted, ctx)
    reasons = top_reasons(counted, ctx)
    if product_id is None:
        products = await top_products(session, ctx, as_of)
    else:
        products = [{"product_id": product_id, "quality_refunds": figures.quality_refunds}]
    advice = advice_for(
        verdict.tier,
        verdict.state,
        scope=verdict.scope,
        store_id=ctx.store_id,
        product_id=product_id,
        refunds_until_breach=verdict.refunds_until_breach,
        orders_to_recover=verdict.orders_to_recover,
        pending_refunds=pending,
        top_reasons=reasons,
        top_products=products,
    )
    return {
        "store_id": ctx.store_id,
        "store_name": ctx.name,
        "product_id": product_id,
        "tier": verdict.tier,
        "scope": verdict.scope,
        "state": verdict.state,
        "previous_state": previous_state,
        "figures": figures_dict(figures, ctx, as_of),
        "rate_threshold": str(verdict.rate_threshold),
        "min_count": verdict.min_count,
        "refunds_until_breach": verdict.refunds_until_breach,
        "orders_to_recover": verdict.orders_to_recover,
        "pending_refunds": pending,
        "top_products": products,
        "top_reasons": reasons,
        "advice": advice,
    }
