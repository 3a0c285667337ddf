"""The figures of a store and its products: metrics, history, products, refunds."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query

from app.api.deps import ClockDep, DatabaseDep, ReadSessionDep
from app.api.pagination import CursorQuery, LimitQuery
from app.api.params import Day
from app.api.problems import problem_responses
from app.auth.deps import IngestKey, ReadKey
from app.errors import field_error
from app.figures import service
from app.figures.schemas import (
    Breakdown,
    MetricsHistory,
    PlatformDay,
    PlatformFiguresIn,
    PlatformFiguresOut,
    ProductPage,
    RefundPage,
    SkuPage,
    StoreMetrics,
)
from app.stores.deps import StoreDayDep, StoreDep, StoreIdPath
from app.stores.service import require_store

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
        Day | None, Query(alias="from", description="First day (default: to − 29)")
    ] = None,
    to: Annotated[Day | None, Query(description="Last day (default: today)")] = None,
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


@router.get(
    "/{store_id}/products/{product_id}/skus",
    summary="A product's SKUs: the same figures per variant",
    description=(
        "The window's figures per `sku_id` of one product (an order's SKU is its winning "
        "`order.paid`'s, else its earliest `refund.requested`'s that names one), with each "
        "SKU's trend. A wrong colour or size shows on one SKU before it shows on the "
        "product. Most quality refunds first, then the highest rate."
    ),
    response_model=SkuPage,
    operation_id="list_product_skus",
    responses=problem_responses(401, 403, 404, 422),
)
async def list_skus(
    _key: ReadKey,
    store: StoreDayDep,
    session: ReadSessionDep,
    product_id: Annotated[str, Path(min_length=1, max_length=128, pattern=r"^[^\x00]+$")],
    limit: LimitQuery = 100,
    cursor: CursorQuery = None,
) -> SkuPage:
    return await service.sku_list(
        session, store.ctx, product_id, store.as_of, limit=limit, cursor=cursor
    )


@router.get(
    "/{store_id}/breakdown",
    summary="Where the quality refunds come from: by courier, hours to ship, reason, kind",
    description=(
        "Over the window of `/metrics`. `by=courier` and `by=ship_hours` split the window's "
        "orders by the order's courier (its earliest `order.shipped` that names one) or by "
        "the hours from paid to its earliest `order.shipped` (`0-24`, `24-48`, `48-72`, "
        "`72+`, null if never shipped); each order's quality refund counts in its own "
        "order's item. `by=reason` and `by=kind` split `quality_refunds` by the reason or "
        "kind of each order's earliest counted quality refund. `product_id` narrows to "
        "one product."
    ),
    response_model=Breakdown,
    operation_id="get_store_breakdown",
    responses=problem_responses(401, 403, 404, 422),
)
async def get_breakdown(
    _key: ReadKey,
    store: StoreDayDep,
    session: ReadSessionDep,
    by: Annotated[
        Literal["courier", "ship_hours", "reason", "kind"], Query(description="The split")
    ],
    product_id: Annotated[
        str | None, Query(min_length=1, max_length=128, pattern=r"^[^\x00]+$")
    ] = None,
) -> Breakdown:
    return await service.breakdown(session, store.ctx, store.as_of, by, product_id)


FIRST_DAY = date(2000, 1, 1)
LAST_DAY = date(2099, 12, 31)
MAX_PLATFORM_DAYS = 400
PlatformDayPath = Annotated[
    Day, Path(description="The day the merchant backend's figures are for (YYYY-MM-DD)")
]


def _check_day(name: str, day: date) -> None:
    if not FIRST_DAY <= day <= LAST_DAY:
        raise field_error(
            name, "invalid_date", f"the day must lie between {FIRST_DAY} and {LAST_DAY}"
        )


@router.put(
    "/{store_id}/platform-figures/{day}",
    summary="Record what the merchant backend shows for a day",
    description=(
        "The platform's own number for the window ending on `day` (any field may be "
        "omitted, not all). Answers that day beside refundwatch's figures for the same "
        "window, and the drift between them. Needs the `ingest` scope."
    ),
    response_model=PlatformDay,
    operation_id="put_platform_figures",
    responses=problem_responses(401, 403, 404, 422),
)
async def put_platform_figures(
    _key: IngestKey,
    store_id: StoreIdPath,
    day: PlatformDayPath,
    body: PlatformFiguresIn,
    db: DatabaseDep,
    clock: ClockDep,
) -> PlatformDay:
    _check_day("path.day", day)
    now = clock.now()
    async with db.transaction() as session:
        ctx = await require_store(session, store_id)
        if day > ctx.today(now):
            raise field_error("path.day", "day_in_future", "the day must not be after today")
        values = body.model_dump(exclude_unset=True)
        if "quality_refund_rate" in values and values["quality_refund_rate"] is not None:
            values["quality_refund_rate"] = Decimal(values["quality_refund_rate"])
        return await service.put_platform_figures(session, ctx, day, values, now)


@router.get(
    "/{store_id}/platform-figures",
    summary="The platform's figures beside ours, day by day, with the drift",
    description=(
        "Each day in `from`…`to` (default the last 30 days) for which the platform's "
        "figures were recorded, with refundwatch's figures for the window ending that day "
        "and the drift (ours − platform). A steady drift says the policy (reasons, window, "
        "count basis) counts differently from the platform."
    ),
    response_model=PlatformFiguresOut,
    operation_id="list_platform_figures",
    responses=problem_responses(401, 403, 404, 422),
)
async def list_platform_figures(
    _key: ReadKey,
    ctx: StoreDep,
    session: ReadSessionDep,
    clock: ClockDep,
    from_: Annotated[Day | None, Query(alias="from", description="First day")] = None,
    to: Annotated[Day | None, Query(description="Last day (default: today)")] = None,
) -> PlatformFiguresOut:
    last = to or ctx.today(clock.now())
    _check_day("query.to", last)
    first = from_ or last - timedelta(days=29)
    _check_day("query.from", first)
    if first > last or (last - first).days >= MAX_PLATFORM_DAYS:
        raise field_error(
            "query.from",
            "invalid_range",
            f"from must be on or before to, and the range at most {MAX_PLATFORM_DAYS} days",
        )
    return await service.platform_figures(session, ctx, first, last)
