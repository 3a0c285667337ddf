"""GET /v1/risk (every scope at risk, worst first) and POST what-if."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from app.api.deps import ClockDep, ReadSessionDep
from app.api.pagination import CursorQuery, LimitQuery, Page, offset_page
from app.api.params import StoreIdQuery
from app.api.problems import answers
from app.auth.deps import ReadKey
from app.risk import service
from app.risk.schemas import RISK_EXAMPLE, WHAT_IF_EXAMPLE, RiskItem, WhatIfIn, WhatIfOut
from app.stores.deps import StoreDep

router = APIRouter(prefix="/v1", tags=["risk"])


@router.get(
    "/risk",
    summary="Every store and product at risk, worst first",
    description=(
        "Scopes whose tier is `approaching` or `breached` now: breached first, then by fewest "
        "`refunds_until_breach`. Candidates come from the evaluated alert states and are "
        "re-judged on the live figures, so the list is never stale. Filter by `state`, "
        "`tier` or `store_id`. Needs the `read` scope."
    ),
    response_model=Page[RiskItem],
    operation_id="list_risk",
    responses=answers({"items": [RISK_EXAMPLE], "next_cursor": None}, 401, 403, 422),
)
async def list_risk(
    _key: ReadKey,
    session: ReadSessionDep,
    clock: ClockDep,
    state: Annotated[
        str | None, Query(pattern="^(approaching|breached)$", description="Only this state")
    ] = None,
    tier: Annotated[
        str | None,
        Query(pattern="^(demotion|listing_ban|delisting)$", description="Only this tier"),
    ] = None,
    store_id: StoreIdQuery = None,
    limit: LimitQuery = 100,
    cursor: CursorQuery = None,
) -> Page[RiskItem]:
    items = await service.scopes_at_risk(
        session, clock.now(), state=state, tier=tier, store_id=store_id
    )
    page, next_cursor = offset_page(items, cursor, limit)
    return Page(items=page, next_cursor=next_cursor)


@router.post(
    "/stores/{store_id}/what-if",
    summary="Tiers if N more quality refunds or M more orders came",
    description=(
        "Each tier's state and headroom if `extra_quality_refunds` more counted quality "
        "refunds and `extra_orders` more clean orders came in the window ending on `as_of` "
        "(default today), beside the state today. For the store's tiers, or one product's "
        "with `product_id`. Stores nothing. Needs the `read` scope."
    ),
    response_model=WhatIfOut,
    operation_id="what_if",
    responses=answers(WHAT_IF_EXAMPLE, 401, 403, 404, 422),
)
async def post_what_if(
    body: WhatIfIn, _key: ReadKey, ctx: StoreDep, session: ReadSessionDep, clock: ClockDep
) -> WhatIfOut:
    return await service.project(session, ctx, body.as_of or ctx.today(clock.now()), body)
