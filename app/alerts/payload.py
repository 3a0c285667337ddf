"""What an alert carries (DESIGN §5–6): figures, line, headroom, and what to act on."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from datetime import date, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.alerts.advice import advice_for
from app.events.fold import RefundState
from app.figures import repository as figures_repo
from app.figures.models import STORE_SCOPE
from app.figures.rules import (
    TREND_DAYS,
    WindowFigures,
    count_clears_on,
    figure_fields,
    trend,
    window_sum,
)
from app.policies.tiers import TierVerdict
from app.stores.rules import StoreContext

MAX_PENDING_LISTED = 20
TOP_N = 5


def figures_dict(figures: WindowFigures, ctx: StoreContext, as_of: date) -> dict[str, Any]:
    return {"as_of": as_of.isoformat(), "window_days": ctx.window_days, **figure_fields(figures)}


def pending_refund_items(
    counted: Sequence[tuple[RefundState, bool]], ctx: StoreContext
) -> list[dict[str, Any]]:
    items = [
        {
            "refund_id": state.refund_id,
            "order_id": state.order_id,
            "product_id": state.product_id,
            "kind": state.kind,
            "reason": state.reason(ctx.policy.reason_basis),
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
    counts = Counter(state.reason(ctx.policy.reason_basis) for state, _ in counted)
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
    start, end = ctx.window(as_of)
    scope = product_id or STORE_SCOPE
    week = ctx.window(as_of - timedelta(days=TREND_DAYS))
    series = await figures_repo.daily_series(session, ctx.store_id, scope, week[0], end)
    scope_trend = trend(figures, window_sum(series, *week))
    clears = None
    if verdict.state == "breached":
        counts = {day: ctx.policy.count(f) for day, f in series.items()}
        clears = count_clears_on(counts, as_of, ctx.window_days, verdict.min_count)
    counted = await figures_repo.counted_quality_refunds(session, ctx, product_id, start, end)
    pending = pending_refund_items(counted, ctx)
    reasons = top_reasons(counted, ctx)
    if product_id is None:
        products = [
            {"product_id": p, "quality_refunds": n}
            for p, n in await figures_repo.top_products(session, ctx.store_id, start, end, TOP_N)
        ]
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
        "count_clears_on": clears.isoformat() if clears else None,
        "trend": scope_trend,
        "pending_refunds": pending,
        "top_products": products,
        "top_reasons": reasons,
        "advice": advice,
    }
