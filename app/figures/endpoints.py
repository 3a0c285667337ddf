"""The figures of a store and its products: metrics, history, products, refunds."""

from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import APIRouter, Query

from app.api.deps import ClockDep, ReadSessionDep
from app.api.pagination import CursorQuery, LimitQuery
from app.api.problems import problem_responses
from app.auth.deps import ReadKey
from app.figures import service
from app.figures.schemas import MetricsHistory, ProductPage, RefundPage, StoreMetrics
from app.stores.deps import StoreDayDep, StoreDep

router = APIRouter(prefix="/v1/stores", tags=["figures"])


@router.get(
    "/{store_id}/metrics",
    summary="A store's figures and every tier's state",
    description=(
        "The rolling figures of the window ending on `as_of` (default: today in the "
        "store's time zone), and each store-scope tier's state with `refunds_until_breach` "
        "and `orders_to_recover`. Reads at most `window_days` daily rows. Needs the `read` "
        "scope."
    ),
    response_model=StoreMetrics,
    operation_id="get_store_metrics",
    responses=problem_responses(401, 403, 404, 422),
)
async def get_metrics(_key: ReadKey, store: StoreDayDep, session: ReadSessionDep) -> StoreMetrics:
    return await service.store_metrics(session, store.ctx, store.as_of)


@router.get(
    "/{store_id}/metrics/history",
    summary="One point a day: the window ending on each day",
    description="The store's figures for the window ending on each day from `from` to `to`.",
    response_model=MetricsHistory,
    operation_id="get_store_metrics_history",
    responses=problem_responses(401, 403, 404, 422),
)
async def get_history(
    _key: ReadKey,
    ctx: StoreDep,
    session: ReadSessionDep,
    clock: ClockDep,
    from_: Annotated[
        date | None, Query(alias="from", description="First day (default: to − 29)")
    ] = None,
    to: Annotated[date | None, Query(description="Last day (default: today)")] = None,
) -> MetricsHistory:
    return await service.metrics_history(session, ctx, from_, to or ctx.today(clock.now()))


@router.get(
    "/{store_id}/products",
    summary="Every product with data in the window, worst first",
    description=(
        "Product-scope figures and tiers (delisting 下架). Worst first: breached, then "
        "approaching, then by fewest `refunds_until_breach`, then most quality refunds."
    ),
    response_model=ProductPage,
    operation_id="list_store_products",
    responses=problem_responses(401, 403, 404, 422),
)
async def list_products(
    _key: ReadKey,
    store: StoreDayDep,
    session: ReadSessionDep,
    limit: LimitQuery = 100,
    cursor: CursorQuery = None,
) -> ProductPage:
    return await service.product_list(session, store.ctx, store.as_of, limit=limit, cursor=cursor)


@router.get(
    "/{store_id}/refunds",
    summary="Which refunds count, and which are pending",
    description=(
        "Refunds requested in the window ending on `as_of`, each with its outcome, whether "
        "it is a quality refund, whether it counts, whether it is the one that puts its "
        "order in `quality_refunds`, and whether it can still be turned (`pending`)."
    ),
    response_model=RefundPage,
    operation_id="list_store_refunds",
    responses=problem_responses(401, 403, 404, 422),
)
async def list_refunds(
    _key: ReadKey,
    store: StoreDayDep,
    session: ReadSessionDep,
    quality: Annotated[
        bool | None, Query(description="Only quality (true) or other (false) refunds")
    ] = None,
    outcome: Annotated[
        str | None,
        Query(
            description="open, succeeded, rejected or withdrawn",
            pattern="^(open|succeeded|rejected|withdrawn)$",
        ),
    ] = None,
    pending: Annotated[
        bool | None, Query(description="Only refunds that can still be turned")
    ] = None,
    limit: LimitQuery = 100,
    cursor: CursorQuery = None,
) -> RefundPage:
    return await service.refund_list(
        session,
        store.ctx,
        store.as_of,
        quality=quality,
        outcome=outcome,
        pending=pending,
        limit=limit,
        cursor=cursor,
    )
