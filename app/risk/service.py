"""Where each scope stands: every scope at risk now, and what-if projections."""

from __future__ import annotations

from collections import defaultdict
from datetime import date, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from app.alerts.repository import states_at_risk
from app.alerts.rules import AT_RISK
from app.figures.models import STORE_SCOPE
from app.figures.repository import scope_days, window_figures_many
from app.figures.rules import (
    EMPTY,
    TREND_DAYS,
    WindowFigures,
    count_clears_on,
    figure_fields,
    trend,
)
from app.figures.schemas import TierStatus
from app.policies.tiers import STATE_SEVERITY, TierScope, quality_refund_rate, what_if
from app.risk.schemas import RiskItem, WhatIfIn, WhatIfOut, WhatIfTier
from app.stores.repository import load_contexts
from app.stores.rules import StoreContext


async def scopes_at_risk(
    session: AsyncSession,
    now: datetime,
    *,
    state: str | None,
    tier: str | None,
    store_id: str | None,
) -> list[RiskItem]:
    """Every scope approaching or breached now, worst first.

    Candidates come from the evaluated alert states and are re-judged on the
    live figures, so the list is never stale.
    """
    candidates = await states_at_risk(session, store_id=store_id)
    since = {(c.store_id, c.product_id, c.tier): c.since for c in candidates}
    contexts = await load_contexts(session, sorted({c.store_id for c in candidates}))
    scopes_by_store: dict[str, set[str]] = defaultdict(set)
    for c in candidates:
        scopes_by_store[c.store_id].add(c.product_id)
    today = {s: ctx.today(now) for s, ctx in contexts.items()}
    windows = [
        (s, sorted(scopes), *contexts[s].window(today[s]))
        for s, scopes in scopes_by_store.items()
        if s in contexts
    ]
    figures = await window_figures_many(session, windows)
    week_ago = await window_figures_many(
        session,
        [
            (s, sorted(scopes), *contexts[s].window(today[s] - timedelta(days=TREND_DAYS)))
            for s, scopes in scopes_by_store.items()
            if s in contexts
        ],
    )
    series = await _breached_series(session, contexts, figures, today)
    items: list[RiskItem] = []
    for s, scope in sorted({(c.store_id, c.product_id) for c in candidates}):
        ctx = contexts.get(s)
        if ctx is None:
            continue
        f = figures.get((s, scope), EMPTY)
        kind: TierScope = "store" if scope == STORE_SCOPE else "product"
        scope_trend = trend(f, week_ago.get((s, scope), EMPTY))
        for v in ctx.policy.judge(f, kind):
            if v.state not in AT_RISK or (state and v.state != state) or (tier and v.tier != tier):
                continue
            clears = None
            if v.state == "breached":
                counts = {d: ctx.policy.count(x) for d, x in series.get((s, scope), {}).items()}
                clears = count_clears_on(counts, today[s], ctx.window_days, v.min_count)
            items.append(
                RiskItem(
                    store_id=s,
                    product_id=None if scope == STORE_SCOPE else scope,
                    tier=v.tier,
                    scope=v.scope,
                    state=v.state,
                    rate_threshold=str(v.rate_threshold),
                    min_count=v.min_count,
                    refunds_until_breach=v.refunds_until_breach,
                    orders_to_recover=v.orders_to_recover,
                    since=since.get((s, scope, v.tier)) or now,
                    as_of=today[s],
                    trend=scope_trend,
                    count_clears_on=clears,
                    **figure_fields(f),
                )
            )
    items.sort(
        key=lambda i: (
            -STATE_SEVERITY[i.state],  # type: ignore[index]
            i.refunds_until_breach if i.refunds_until_breach is not None else 1 << 30,
            -i.quality_refunds,
            i.store_id,
            i.product_id or "",
            i.tier,
        )
    )
    return items


async def _breached_series(
    session: AsyncSession,
    contexts: dict[str, StoreContext],
    figures: dict[tuple[str, str], WindowFigures],
    today: dict[str, date],
) -> dict[tuple[str, str], dict[date, WindowFigures]]:
    """The daily rows of every breached scope (few), one read per store."""
    breached: dict[str, list[str]] = defaultdict(list)
    for (s, scope), f in figures.items():
        kind: TierScope = "store" if scope == STORE_SCOPE else "product"
        if any(v.state == "breached" for v in contexts[s].policy.judge(f, kind)):
            breached[s].append(scope)
    series: dict[tuple[str, str], dict[date, WindowFigures]] = {}
    for s, scopes in breached.items():
        start, end = contexts[s].window(today[s])
        for scope, days in (await scope_days(session, s, scopes, start, end)).items():
            series[(s, scope)] = days
    return series


async def project(
    session: AsyncSession, ctx: StoreContext, as_of: date, body: WhatIfIn
) -> WhatIfOut:
    """Each tier's state and headroom if the extra refunds and orders came; stores nothing."""
    scope = body.product_id or STORE_SCOPE
    kind: TierScope = "store" if scope == STORE_SCOPE else "product"
    start, end = ctx.window(as_of)
    f = (await window_figures_many(session, [(ctx.store_id, [scope], start, end)])).get(
        (ctx.store_id, scope), EMPTY
    )
    current = {v.tier: v.state for v in ctx.policy.judge(f, kind)}
    projected = what_if(
        f.orders,
        ctx.policy.count(f),
        body.extra_orders,
        body.extra_quality_refunds,
        ctx.policy.tiers,
        ctx.policy.warn,
        kind,
    )
    orders = f.orders + body.extra_orders
    count = ctx.policy.count(f) + body.extra_quality_refunds
    return WhatIfOut(
        store_id=ctx.store_id,
        product_id=body.product_id,
        as_of=as_of,
        extra_quality_refunds=body.extra_quality_refunds,
        extra_orders=body.extra_orders,
        orders=orders,
        quality_refunds=count,
        quality_refund_rate=quality_refund_rate(count, orders),
        tiers=[
            WhatIfTier(**TierStatus.of(v).model_dump(), current_state=current.get(v.tier, "ok"))
            for v in projected
        ],
    )
