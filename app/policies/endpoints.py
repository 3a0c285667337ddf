"""/v1/policies: the lines a store is judged against."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Response

from app.api.deps import ClockDep, DatabaseDep, ReadSessionDep
from app.api.pagination import CursorQuery, LimitQuery, Page, keyset, next_page
from app.api.problems import problem_responses
from app.auth.deps import AdminKey, ReadKey
from app.policies import service
from app.policies.models import Policy
from app.policies.repository import policies_query
from app.policies.schemas import PolicyIn, PolicyOut

router = APIRouter(prefix="/v1/policies", tags=["policies"])

PolicyIdPath = Annotated[int, Path(description="The policy's id", examples=[1], ge=1, le=2**31 - 1)]


@router.get(
    "",
    summary="List policies",
    response_model=Page[PolicyOut],
    operation_id="list_policies",
    responses=problem_responses(401, 403, 422),
)
async def list_policies(
    _key: ReadKey, session: ReadSessionDep, limit: LimitQuery = 100, cursor: CursorQuery = None
) -> Page[PolicyOut]:
    rows = list(await session.scalars(keyset(policies_query(), Policy.id, cursor, limit)))
    policies, next_cursor = next_page(rows, limit, lambda p: p.id)
    return Page(
        items=[await service.policy_out(session, p) for p in policies], next_cursor=next_cursor
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
    async with db.transaction() as session:
        policy = await service.create_policy(session, body, clock.now())
        return await service.policy_out(session, policy)


@router.get(
    "/{policy_id}",
    summary="Read a policy",
    response_model=PolicyOut,
    operation_id="get_policy",
    responses=problem_responses(401, 403, 404, 422),
)
async def get_policy(policy_id: PolicyIdPath, _key: ReadKey, session: ReadSessionDep) -> PolicyOut:
    return await service.policy_out(session, await service.require_policy(session, policy_id))


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
    async with db.transaction() as session:
        policy = await service.replace_policy(session, policy_id, body, clock.now())
        return await service.policy_out(session, policy)


@router.delete(
    "/{policy_id}",
    status_code=204,
    summary="Delete a policy no store uses",
    operation_id="delete_policy",
    responses=problem_responses(401, 403, 404, 409, 422),
)
async def delete_policy(policy_id: PolicyIdPath, _key: AdminKey, db: DatabaseDep) -> Response:
    async with db.transaction() as session:
        await service.delete_policy(session, policy_id)
    return Response(status_code=204)
