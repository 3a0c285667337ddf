"""/v1/api-keys: create, list, revoke (admin)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request, Response

from app.api.deps import ClockDep, DatabaseDep, ReadSessionDep
from app.api.pagination import CursorQuery, LimitQuery, Page, keyset, next_page
from app.api.problems import problem_responses
from app.auth.deps import AdminKey
from app.auth.models import ApiKey
from app.auth.repository import keys_query
from app.auth.schemas import ApiKeyCreate, ApiKeyCreated, ApiKeyOut
from app.auth.service import KeyCache, create_key, revoke_key
from app.errors import NotFound

router = APIRouter(prefix="/v1/api-keys", tags=["api keys"])


@router.post(
    "",
    status_code=201,
    summary="Create an API key (shown once)",
    response_model=ApiKeyCreated,
    operation_id="create_api_key",
    responses=problem_responses(401, 403, 422),
)
async def create_api_key(
    body: ApiKeyCreate, _key: AdminKey, db: DatabaseDep, clock: ClockDep
) -> ApiKeyCreated:
    async with db.transaction() as session:
        record, key = await create_key(session, name=body.name, scopes=body.scopes, now=clock.now())
        out = ApiKeyOut.model_validate(record)
    return ApiKeyCreated(**out.model_dump(), key=key)


@router.get(
    "",
    summary="List API keys (never the keys themselves)",
    response_model=Page[ApiKeyOut],
    operation_id="list_api_keys",
    responses=problem_responses(401, 403, 422),
)
async def list_api_keys(
    _key: AdminKey, session: ReadSessionDep, limit: LimitQuery = 100, cursor: CursorQuery = None
) -> Page[ApiKeyOut]:
    rows = list(await session.scalars(keyset(keys_query(), ApiKey.id, cursor, limit)))
    records, next_cursor = next_page(rows, limit, lambda r: r.id)
    return Page(items=[ApiKeyOut.model_validate(r) for r in records], next_cursor=next_cursor)


@router.delete(
    "/{key_id}",
    status_code=204,
    summary="Revoke an API key",
    operation_id="revoke_api_key",
    responses=problem_responses(401, 403, 404, 422),
)
async def revoke_api_key(
    key_id: Annotated[int, Path(ge=1, le=2**31 - 1, description="The key's id")],
    request: Request,
    _key: AdminKey,
    db: DatabaseDep,
    clock: ClockDep,
) -> Response:
    async with db.transaction() as session:
        if not await revoke_key(session, key_id, clock.now()):
            raise NotFound(f"no active API key {key_id}", code="api_key_not_found")
    cache: KeyCache = request.app.state.key_cache
    cache.forget(key_id)
    return Response(status_code=204)
