"""/v1/api-keys: create, list, revoke (admin)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request, Response

from app.api.deps import ClockDep, DatabaseDep, ReadSessionDep
from app.api.pagination import CursorQuery, LimitQuery, Page, keyset, next_page
from app.api.params import MAX_INT
from app.api.problems import answers, problem_responses
from app.auth.deps import AdminKey
from app.auth.models import ApiKey
from app.auth.repository import keys_query
from app.auth.schemas import API_KEY_EXAMPLE, ApiKeyCreate, ApiKeyCreated, ApiKeyOut
from app.auth.service import KeyCache, create_key, revoke_key
from app.errors import NotFound

router = APIRouter(prefix="/v1/api-keys", tags=["api keys"])


@router.post(
    "",
    status_code=201,
    summary="Create an API key (shown once)",
    description=(
        "A new key with the scopes given: `ingest` (send events, import files), `read` "
        "(figures, alerts, webhooks with masked URLs), `admin` (everything). The key is in "
        "this answer only: refundwatch keeps a hash. Needs the `admin` scope."
    ),
    response_model=ApiKeyCreated,
    operation_id="create_api_key",
    responses=answers(
        {**API_KEY_EXAMPLE, "key": "rw_Qd3k9ZpV7wNc2Lr8Xy5Hb1Tq4Mf6Js0Ke9Gu3Ai7Do"},
        401,
        403,
        422,
        status=201,
    ),
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
    description=(
        "Every key, oldest first, revoked ones included, with the first characters to tell "
        "them apart. The bootstrap key from the environment is not listed. Needs the "
        "`admin` scope."
    ),
    response_model=Page[ApiKeyOut],
    operation_id="list_api_keys",
    responses=answers({"items": [API_KEY_EXAMPLE], "next_cursor": None}, 401, 403, 422),
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
    description=(
        "The key stops working at once in this process and within "
        "`REFUNDWATCH_API_KEY_CACHE_SECONDS` (10 s) in the others. Answers 204 with no "
        "body. Needs the `admin` scope."
    ),
    operation_id="revoke_api_key",
    responses=problem_responses(401, 403, 404, 422),
)
async def revoke_api_key(
    key_id: Annotated[int, Path(ge=1, le=MAX_INT, description="The key's id", examples=[2])],
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
