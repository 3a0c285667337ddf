"""/v1/silences: hold back sending, never the state."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Response
from sqlalchemy import select

from app.alerts.models import Silence
from app.alerts.schemas import SilenceIn, SilenceOut, SilencePage
from app.api.deps import AdminKey, ClockDep, DatabaseDep, ReadKey, ReadSessionDep
from app.api.pagination import CursorQuery, LimitQuery, decode_cursor, encode_cursor, split_page
from app.api.problems import NotFound, field_error, problem_responses

router = APIRouter(prefix="/v1/silences", tags=["alerts"])


@router.post(
    "",
    status_code=201,
    summary="Silence alerts until a time",
    response_model=SilenceOut,
    operation_id="create_silence",
    responses=problem_responses(401, 403, 422),
)
async def create_silence(
    body: SilenceIn, _key: AdminKey, db: DatabaseDep, clock: ClockDep
) -> SilenceOut:
    now = clock.now()
    if body.until.tzinfo is None:
        raise field_error("body.until", "naive_until", "until needs a UTC offset")
    if body.until <= now:
        raise field_error("body.until", "until_in_past", "until must be in the future")
    async with db.transaction() as session:
        silence = Silence(
            store_id=body.store_id,
            product_id=body.product_id,
            tier=body.tier,
            until=body.until,
            comment=body.comment,
            created_at=now,
        )
        session.add(silence)
        await session.flush()
        return SilenceOut.of(silence, now)


@router.get(
    "",
    summary="List silences",
    response_model=SilencePage,
    operation_id="list_silences",
    responses=problem_responses(401, 403, 422),
)
async def list_silences(
    _key: ReadKey,
    session: ReadSessionDep,
    clock: ClockDep,
    include_expired: Annotated[bool, Query(description="Also list silences that ended")] = False,
    limit: LimitQuery = 100,
    cursor: CursorQuery = None,
) -> SilencePage:
    now = clock.now()
    query = select(Silence).order_by(Silence.id).limit(limit + 1)
    if not include_expired:
        query = query.where(Silence.until > now)
    after = decode_cursor(cursor, int)
    if after is not None:
        query = query.where(Silence.id > int(after))
    rows = list(await session.scalars(query))
    rows, more = split_page(rows, limit)
    return SilencePage(
        items=[SilenceOut.of(s, now) for s in rows],
        next_cursor=encode_cursor(rows[-1].id) if more else None,
    )


@router.delete(
    "/{silence_id}",
    status_code=204,
    summary="End a silence now",
    operation_id="delete_silence",
    responses=problem_responses(401, 403, 404),
)
async def delete_silence(
    silence_id: Annotated[int, Path(ge=1)], _key: AdminKey, db: DatabaseDep
) -> Response:
    async with db.transaction() as session:
        silence = await session.get(Silence, silence_id)
        if silence is None:
            raise NotFound(f"no silence {silence_id}", code="silence_not_found")
        await session.delete(silence)
    return Response(status_code=204)
