"""/v1/policies: the lines a store is judged against."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Response
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.api.deps import AdminKey, ClockDep, DatabaseDep, ReadKey, ReadSessionDep
from app.api.pagination import CursorQuery, LimitQuery, decode_cursor, encode_cursor, split_page
from app.api.problems import Conflict, NotFound, problem_responses
from app.risk.evaluation import lock_store_for_edit, refresh_store
from app.risk.models import DEFAULT_POLICY_ID, Policy
from app.risk.schemas import PolicyIn, PolicyOut, PolicyPage
from app.stores.models import Store
from app.stores.service import load_contexts

router = APIRouter(prefix="/v1/policies", tags=["policies"])

PolicyIdPath = Annotated[int, Path(description="The policy's id", examples=[1], ge=1)]


async def _out(session: AsyncSession, policy: Policy) -> PolicyOut:
    stores = await session.scalar(select(func.count()).where(Store.policy_id == policy.id))
    return PolicyOut(
        id=policy.id,
        name=policy.name,
        window_days=policy.window_days,
        quality_reasons=list(policy.quality_reasons),
        reason_basis=policy.reason_basis,
        warn_ratio=str(policy.warn_ratio.normalize()),
        warn_headroom=policy.warn_headroom,
        min_orders=policy.min_orders,
        reminder_interval_seconds=policy.reminder_interval_seconds,
        tiers=list(policy.tiers),
        stores=int(stores or 0),
        created_at=policy.created_at,
        updated_at=policy.updated_at,
    )


async def _get_or_404(session: AsyncSession, policy_id: int, *, lock: bool = False) -> Policy:
    policy = await session.get(Policy, policy_id, with_for_update=lock)
    if policy is None:
        raise NotFound(f"no policy {policy_id}", code="policy_not_found")
    return policy


async def _name_free(session: AsyncSession, name: str, policy_id: int | None = None) -> None:
    query = select(Policy.id).where(Policy.name == name)
    if policy_id is not None:
        query = query.where(Policy.id != policy_id)
    if await session.scalar(query) is not None:
        raise Conflict(f"a policy named {name!r} exists", code="policy_name_taken")


@router.get(
    "",
    summary="List policies",
    response_model=PolicyPage,
    operation_id="list_policies",
    responses=problem_responses(401, 403, 422),
)
async def list_policies(
    _key: ReadKey, session: ReadSessionDep, limit: LimitQuery = 100, cursor: CursorQuery = None
) -> PolicyPage:
    after = decode_cursor(cursor, int) or 0
    rows = list(
        await session.scalars(
            select(Policy).where(Policy.id > after).order_by(Policy.id).limit(limit + 1)
        )
    )
    rows, more = split_page(rows, limit)
    return PolicyPage(
        items=[await _out(session, p) for p in rows],
        next_cursor=encode_cursor(rows[-1].id) if more else None,
    )


@router.post(
    "",
    status_code=201,
    summary="Create a policy",
    response_model=PolicyOut,
    operation_id="create_policy",
    responses=problem_responses(401, 403, 409, 422),
)
async def create_policy(
    body: PolicyIn, _key: AdminKey, db: DatabaseDep, clock: ClockDep
) -> PolicyOut:
    now = clock.now()
    async with db.transaction() as session:
        await _name_free(session, body.name)
        policy = Policy(
            name=body.name,
            window_days=body.window_days,
            quality_reasons=body.quality_reasons,
            reason_basis=body.reason_basis,
            warn_ratio=body.warn_ratio,
            warn_headroom=body.warn_headroom,
            min_orders=body.min_orders,
            reminder_interval_seconds=body.reminder_interval_seconds,
            tiers=body.tiers_json(),
            created_at=now,
            updated_at=now,
        )
        session.add(policy)
        await session.flush()
        return await _out(session, policy)


@router.get(
    "/{policy_id}",
    summary="Read a policy",
    response_model=PolicyOut,
    operation_id="get_policy",
    responses=problem_responses(401, 403, 404),
)
async def get_policy(policy_id: PolicyIdPath, _key: ReadKey, session: ReadSessionDep) -> PolicyOut:
    return await _out(session, await _get_or_404(session, policy_id))


@router.put(
    "/{policy_id}",
    summary="Replace a policy",
    description=(
        "Every store on this policy is re-evaluated in the same transaction; when the "
        "quality reasons or the reason basis change, their figures are recomputed first."
    ),
    response_model=PolicyOut,
    operation_id="replace_policy",
    responses=problem_responses(401, 403, 404, 409, 422),
)
async def replace_policy(
    policy_id: PolicyIdPath, body: PolicyIn, _key: AdminKey, db: DatabaseDep, clock: ClockDep
) -> PolicyOut:
    now = clock.now()
    async with db.transaction() as session:
        # Store locks before the policy row: ingest creating a store holds store
        # locks and then needs a key-share lock on the policy row (its foreign key).
        store_ids = list(
            await session.scalars(select(Store.store_id).where(Store.policy_id == policy_id))
        )
        await lock_store_for_edit(session, store_ids)
        policy = await _get_or_404(session, policy_id, lock=True)
        await _name_free(session, body.name, policy_id)
        before = await load_contexts(session, store_ids)
        policy.name = body.name
        policy.window_days = body.window_days
        policy.quality_reasons = body.quality_reasons
        policy.reason_basis = body.reason_basis
        policy.warn_ratio = body.warn_ratio
        policy.warn_headroom = body.warn_headroom
        policy.min_orders = body.min_orders
        policy.reminder_interval_seconds = body.reminder_interval_seconds
        policy.tiers = body.tiers_json()
        policy.updated_at = now
        await session.flush()
        after = await load_contexts(session, store_ids)
        for store_id in sorted(store_ids):
            await refresh_store(session, before[store_id], after[store_id], now)
        return await _out(session, policy)


@router.delete(
    "/{policy_id}",
    status_code=204,
    summary="Delete a policy no store uses",
    operation_id="delete_policy",
    responses=problem_responses(401, 403, 404, 409),
)
async def delete_policy(policy_id: PolicyIdPath, _key: AdminKey, db: DatabaseDep) -> Response:
    async with db.transaction() as session:
        policy = await _get_or_404(session, policy_id, lock=True)
        if policy_id == DEFAULT_POLICY_ID:
            raise Conflict(
                "the default policy cannot be deleted: new stores use it", code="policy_is_default"
            )
        in_use = await session.scalar(select(func.count()).where(Store.policy_id == policy_id))
        if in_use:
            raise Conflict(
                f"{in_use} store(s) use this policy; move them first", code="policy_in_use"
            )
        await session.delete(policy)
    return Response(status_code=204)
