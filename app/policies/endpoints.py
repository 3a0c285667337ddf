"""/v1/policies: the lines a store is judged against."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Response

from app.api.deps import ClockDep, DatabaseDep, ReadSessionDep
from app.api.pagination import CursorQuery, LimitQuery, Page, keyset, next_page
from app.api.params import MAX_INT
from app.api.problems import answers, problem_responses
from app.auth.deps import AdminKey, ReadKey
from app.policies import service
from app.policies.models import Policy
from app.policies.repository import policies_query
from app.policies.schemas import POLICY_EXAMPLE, PolicyIn, PolicyOut

router = APIRouter(prefix="/v1/policies", tags=["policies"])

PolicyIdPath = Annotated[int, Path(description="The policy's id", examples=[1], ge=1, le=MAX_INT)]


@router.get(
    "",
    summary="List policies",
    description=(
        "Every policy, oldest first (the default one, id 1, exists from the start), with "
        "how many stores use it. Needs the `read` scope."
    ),
    response_model=Page[PolicyOut],
    operation_id="list_policies",
    responses=answers({"items": [POLICY_EXAMPLE], "next_cursor": None}, 401, 403, 422),
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
    description=(
        "A set of lines to judge stores by: the window, which reasons count as quality "
        "refunds, the tiers (rate and count lines) and when a scope is approaching. Every "
        "field omitted takes the default policy's value; values are kept exactly as "
        "answered (a `warn_ratio` or `rate_threshold` with more than 6 decimal places is "
        "refused, not rounded). Point stores at it with `PATCH /v1/stores/{store_id}`. "
        "Needs the `admin` scope."
    ),
    response_model=PolicyOut,
    operation_id="create_policy",
    responses=answers({**POLICY_EXAMPLE, "stores": 0}, 401, 403, 409, 422, status=201),
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
    description="Its lines and how many stores use it. Needs the `read` scope.",
    response_model=PolicyOut,
    operation_id="get_policy",
    responses=answers(POLICY_EXAMPLE, 401, 403, 404, 422),
)
async def get_policy(policy_id: PolicyIdPath, _key: ReadKey, session: ReadSessionDep) -> PolicyOut:
    return await service.policy_out(session, await service.require_policy(session, policy_id))


@router.put(
    "/{policy_id}",
    summary="Replace a policy",
    description=(
        "Every store on this policy is re-evaluated in the same transaction; when the "
        "quality reasons or the reason basis change, their figures are recomputed first. "
        "Needs the `admin` scope."
    ),
    response_model=PolicyOut,
    operation_id="replace_policy",
    responses=answers(POLICY_EXAMPLE, 401, 403, 404, 409, 422),
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
    description=(
        "409 while a store uses it (move them first) and for the default policy (new stores "
        "use it). Answers 204 with no body. Needs the `admin` scope."
    ),
    operation_id="delete_policy",
    responses=problem_responses(401, 403, 404, 409, 422),
)
async def delete_policy(policy_id: PolicyIdPath, _key: AdminKey, db: DatabaseDep) -> Response:
    async with db.transaction() as session:
        await service.delete_policy(session, policy_id)
    return Response(status_code=204)
