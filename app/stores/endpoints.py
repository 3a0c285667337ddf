"""Stores: list, read, edit."""

from __future__ import annotations

from fastapi import APIRouter

from app.api.deps import ClockDep, DatabaseDep, ReadSessionDep
from app.api.pagination import CursorQuery, LimitQuery, Page, keyset, next_page
from app.api.problems import answers
from app.auth.deps import AdminKey, ReadKey
from app.stores.deps import StoreDep, StoreIdPath
from app.stores.models import Store
from app.stores.repository import contexts_page_query, read_contexts
from app.stores.rules import StoreContext
from app.stores.schemas import STORE_EXAMPLE, StoreOut, StorePatch
from app.stores.service import patch_store as patch_store_use_case

router = APIRouter(prefix="/v1/stores", tags=["stores"])


@router.get(
    "",
    summary="List stores",
    description=(
        "Every store, in store id order. A store is created by its first accepted event. "
        "Needs the `read` scope."
    ),
    response_model=Page[StoreOut],
    operation_id="list_stores",
    responses=answers({"items": [STORE_EXAMPLE], "next_cursor": None}, 401, 403, 422),
)
async def list_stores(
    _key: ReadKey, session: ReadSessionDep, limit: LimitQuery = 100, cursor: CursorQuery = None
) -> Page[StoreOut]:
    query = keyset(contexts_page_query(), Store.store_id, cursor, limit, kind=str)
    contexts, next_cursor = next_page(await read_contexts(session, query), limit, _store_key)
    return Page(items=[StoreOut.model_validate(c) for c in contexts], next_cursor=next_cursor)


def _store_key(ctx: StoreContext) -> str:
    return ctx.store_id


@router.get(
    "/{store_id}",
    summary="Read a store",
    description="Its name, time zone, policy and window. Needs the `read` scope.",
    response_model=StoreOut,
    operation_id="get_store",
    responses=answers(STORE_EXAMPLE, 401, 403, 404, 422),
)
async def get_store(_key: ReadKey, ctx: StoreDep) -> StoreOut:
    return StoreOut.model_validate(ctx)


@router.patch(
    "/{store_id}",
    summary="Edit a store: name, time zone, policy",
    description=(
        "A new time zone moves every event to its local day in that zone; a new policy "
        "may change which refunds count. Either recomputes the store's figures from its "
        "order and refund state and re-evaluates its tiers in the same transaction. "
        "Needs the `admin` scope."
    ),
    response_model=StoreOut,
    operation_id="patch_store",
    responses=answers(STORE_EXAMPLE, 401, 403, 404, 422),
)
async def patch_store(
    store_id: StoreIdPath, patch: StorePatch, _key: AdminKey, db: DatabaseDep, clock: ClockDep
) -> StoreOut:
    async with db.transaction() as session:
        after = await patch_store_use_case(
            session, store_id, patch.model_dump(exclude_unset=True), clock.now()
        )
    return StoreOut.model_validate(after)
