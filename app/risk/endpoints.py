"""GET /v1/risk (every scope at risk, worst first) and POST what-if."""

from __future__ import annotations

from collections import defaultdict
from typing import Annotated

from fastapi import APIRouter, Query
from sqlalchemy import select

from app.alerts.models import AlertState
from app.alerts.rules import AT_RISK
from app.api.deps import ClockDep, ReadKey, ReadSessionDep
from app.api.pagination import CursorQuery, LimitQuery, decode_offset, encode_cursor
from app.api.problems import problem_responses
from app.figures.endpoints import figure_fields
from app.figures.models import STORE_SCOPE
from app.figures.schemas import TierStatus
from app.figures.service import EMPTY, tier_rules, verdicts, warn_settings, window_figures_many
from app.risk.schemas import RiskItem, RiskPage, WhatIfIn, WhatIfOut, WhatIfTier
from app.risk.tiers import STATE_SEVERITY, TierScope, quality_refund_rate, what_if
from app.stores.endpoints import StoreIdPath
from app.stores.service import get_store_or_404, load_contexts

router = APIRouter(prefix="/v1", tags=["risk"])


@router.get(
    "/risk",
    summary="Every store and product at risk, worst first",
    description=(
        "Scopes whose tier is `approaching` or `breached` now: breached first, then by fewest "
        "`refunds_until_breach`. Candidates come from the evaluated alert states and are "
        "re-judged on the live figures, so the list is never stale."
    ),
    response_model=RiskPage,
    operation_id="list_risk",
    responses=problem_responses(401, 403, 422),
)
async def list_risk(
    _key: ReadKey,
    session: ReadSessionDep,
    clock: ClockDep,
    state: Annotated[str | None, Query(pattern="^(approaching|breached)$")] = None,
    tier: Annotated[str | None, Query(pattern="^(demotion|listing_ban|delisting)$")] = None,
    store_id: Annotated[str | None, Query(max_length=64)] = None,
    limit: LimitQuery = 100,
    cursor: CursorQuery = None,
) -> RiskPage:
    now = clock.now()
    query = select(AlertState).where(AlertState.state.in_(AT_RISK))
    if store_id is not None:
        query = query.where(AlertState.store_id == store_id)
    candidates = list(await session.scalars(query))
    since = {(c.store_id, c.product_id, c.tier): c.since for c in candidates}
    contexts = await load_contexts(session, sorted({c.store_id for c in candidates}))
    scopes_by_store: dict[str, set[str]] = defaultdict(set)
    for c in candidates:
        scopes_by_store[c.store_id].add(c.product_id)
    windows = [
        (s, sorted(scopes), *contexts[s].window(contexts[s].today(now)))
        for s, scopes in scopes_by_store.items()
        if s in contexts
    ]
    figures = await window_figures_many(session, windows)
    items: list[RiskItem] = []
    for s, scope in sorted({(c.store_id, c.product_id) for c in candidates}):
        ctx = contexts.get(s)
        if ctx is None:
            continue
        f = figures.get((s, scope), EMPTY)
        for v in verdicts(ctx, f, "store" if scope == STORE_SCOPE else "product"):
            if v.state not in AT_RISK or (state and v.state != state) or (tier and v.tier != tier):
                continue
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
                    as_of=ctx.today(now),
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
    offset = decode_offset(cursor)
    page = items[offset : offset + limit]
    return RiskPage(
        items=page,
        next_cursor=encode_cursor(offset + limit) if offset + limit < len(items) else None,
    )


@router.post(
    "/stores/{store_id}/what-if",
    summary="Tiers if N more quality refunds or M more orders came",
    description="Answers each tier's state and headroom under the change; stores nothing.",
    response_model=WhatIfOut,
    operation_id="what_if",
    responses=problem_responses(401, 403, 404, 422),
)
async def post_what_if(
    store_id: StoreIdPath, body: WhatIfIn, _key: ReadKey, session: ReadSessionDep, clock: ClockDep
) -> WhatIfOut:
    ctx = await get_store_or_404(session, store_id)
    day = body.as_of or ctx.today(clock.now())
    scope = body.product_id or STORE_SCOPE
    kind: TierScope = "store" if scope == STORE_SCOPE else "product"
    start, end = ctx.window(day)
    f = (await window_figures_many(session, [(store_id, [scope], start, end)])).get(
        (store_id, scope), EMPTY
    )
    current = {v.tier: v.state for v in verdicts(ctx, f, kind)}
    projected = what_if(
        f.orders,
        f.quality_refunds,
        body.extra_orders,
        body.extra_quality_refunds,
        tier_rules(ctx),
        warn_settings(ctx),
        kind,
    )
    orders = f.orders + body.extra_orders
    count = f.quality_refunds + body.extra_quality_refunds
    return WhatIfOut(
        store_id=store_id,
        product_id=body.product_id,
        as_of=day,
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
