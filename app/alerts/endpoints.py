"""/v1/alerts (the alert history) and /v1/silences (hold back sending, never the state)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Response
from pydantic import AwareDatetime

from app.alerts import repository, service
from app.alerts.models import Alert, Silence
from app.alerts.schemas import AlertOut, SilenceIn, SilenceOut
from app.api.deps import ClockDep, DatabaseDep, ReadSessionDep
from app.api.pagination import CursorQuery, LimitQuery, Page, keyset, next_page
from app.api.problems import problem_responses
from app.auth.deps import AdminKey, ReadKey
from app.errors import NotFound

router = APIRouter(prefix="/v1", tags=["alerts"])


@router.get(
    "/alerts",
    summary="The alert history, newest first",
    response_model=Page[AlertOut],
    operation_id="list_alerts",
    responses=problem_responses(401, 403, 422),
)
async def list_alerts(
    _key: ReadKey,
    session: ReadSessionDep,
    store_id: Annotated[str | None, Query(max_length=64)] = None,
    product_id: Annotated[str | None, Query(max_length=128)] = None,
    tier: Annotated[str | None, Query(pattern="^(demotion|listing_ban|delisting)$")] = None,
    type: Annotated[
        str | None,
        Query(
            pattern="^alert\\.(approaching|breached|resolved|reminder)$", description="Alert type"
        ),
    ] = None,
    since: Annotated[
        AwareDatetime | None,
        Query(description="Only alerts created at or after (RFC 3339 with an offset)"),
    ] = None,
    limit: LimitQuery = 100,
    cursor: CursorQuery = None,
) -> Page[AlertOut]:
    query = repository.alerts_query(
        store_id=store_id, product_id=product_id, tier=tier, type=type, since=since
    )
    rows = list(await session.scalars(keyset(query, Alert.id, cursor, limit, descending=True)))
    alerts, next_cursor = next_page(rows, limit, lambda a: a.id)
    return Page(items=[AlertOut.of(a) for a in alerts], next_cursor=next_cursor)


@router.get(
    "/alerts/{alert_id}",
    summary="One alert",
    response_model=AlertOut,
    operation_id="get_alert",
    responses=problem_responses(401, 403, 404, 422),
)
async def get_alert(
    alert_id: Annotated[str, Path(max_length=40)], _key: ReadKey, session: ReadSessionDep
) -> AlertOut:
    alert = await repository.find_alert(session, alert_id)
    if alert is None:
        raise NotFound(f"no alert {alert_id!r}", code="alert_not_found")
    return AlertOut.of(alert)


@router.post(
    "/silences",
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
    async with db.transaction() as session:
        silence = await service.create_silence(
            session,
            store_id=body.store_id,
            product_id=body.product_id,
            tier=body.tier,
            until=body.until,
            comment=body.comment,
            now=now,
        )
        return SilenceOut.of(silence, now)


@router.get(
    "/silences",
    summary="List silences",
    response_model=Page[SilenceOut],
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
) -> Page[SilenceOut]:
    now = clock.now()
    query = repository.silences_query(active_at=None if include_expired else now)
    rows = list(await session.scalars(keyset(query, Silence.id, cursor, limit)))
    silences, next_cursor = next_page(rows, limit, lambda s: s.id)
    return Page(items=[SilenceOut.of(s, now) for s in silences], next_cursor=next_cursor)


@router.delete(
    "/silences/{silence_id}",
    status_code=204,
    summary="End a silence now",
    operation_id="delete_silence",
    responses=problem_responses(401, 403, 404, 422),
)
async def delete_silence(
    silence_id: Annotated[int, Path(ge=1, le=2**31 - 1)], _key: AdminKey, db: DatabaseDep
) -> Response:
    async with db.transaction() as session:
        silence = await session.get(Silence, silence_id)
        if silence is None:
            raise NotFound(f"no silence {silence_id}", code="silence_not_found")
        await session.delete(silence)
    return Response(status_code=204)
