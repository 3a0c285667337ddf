"""Stores: list, read, edit."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path

from app.api.deps import AdminKey, ClockDep, DatabaseDep, ReadKey, ReadSessionDep
from app.api.pagination import CursorQuery, LimitQuery, decode_cursor, encode_cursor, split_page
from app.api.problems import field_error, problem_responses
from app.risk.evaluation import lock_store_for_edit, refresh_store
from app.risk.models import Policy
from app.stores.models import Store
from app.stores.schemas import StoreOut, StorePage, StorePatch
from app.stores.service import get_store_or_404, list_contexts

router = APIRouter(prefix="/v1/stores", tags=["stores"])

StoreIdPath = Annotated[
    str, Path(description="The store's id", examples=["s1"], max_length=64, min_length=1)
]


@router.get(
    "",
    summary="List stores",
    response_model=StorePage,
    operation_id="list_stores",
    responses=problem_responses(401, 403, 422),
)
async def list_stores(
    _key: ReadKey, session: ReadSessionDep, limit: LimitQuery = 100, cursor: CursorQuery = None
) -> StorePage:
    after = decode_cursor(cursor, str)
    contexts = await list_contexts(session, after=after, limit=limit + 1)
    contexts, more = split_page(contexts, limit)
    return StorePage(
        items=[StoreOut.of(c) for c in contexts],
        next_cursor=encode_cursor(contexts[-1].store_id) if more else None,
    )


@router.get(
    "/{store_id}",
    summary="Read a store",
    response_model=StoreOut,
    operation_id="get_store",
    responses=problem_responses(401, 403, 404),
)
async def get_store(store_id: StoreIdPath, _key: ReadKey, session: ReadSessionDep) -> StoreOut:
    return StoreOut.of(await get_store_or_404(session, store_id))


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
    responses=problem_responses(401, 403, 404, 422),
)
async def patch_store(
    store_id: StoreIdPath, patch: StorePatch, _key: AdminKey, db: DatabaseDep, clock: ClockDep
) -> StoreOut:
    now = clock.now()
    async with db.transaction() as session:
        await lock_store_for_edit(session, [store_id])
        before = await get_store_or_404(session, store_id)
        store = await session.get(Store, store_id, with_for_update=True)
        assert store is not None
        if patch.policy_id is not None and await session.get(Policy, patch.policy_id) is None:
            raise field_error("body.policy_id", "unknown_policy", f"no policy {patch.policy_id}")
        fields = patch.model_dump(exclude_unset=True)
        for name, value in fields.items():
            if name != "name" and value is None:
                continue
            setattr(store, name, value)
        store.updated_at = now
        await session.flush()
        after = await get_store_or_404(session, store_id)
        await refresh_store(session, before, after, now)
    return StoreOut.of(after)
