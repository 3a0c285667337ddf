"""/v1/alerts (the alert history) and /v1/silences (hold back sending, never the state)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Response

from app.alerts import repository, service
from app.alerts.models import Alert, Silence
from app.alerts.schemas import ALERT_EXAMPLE, SILENCE_EXAMPLE, AlertOut, SilenceIn, SilenceOut
from app.api.deps import ClockDep, DatabaseDep, ReadSessionDep
from app.api.pagination import CursorQuery, LimitQuery, Page, keyset, next_page
from app.api.params import MAX_INT, NO_NUL, Instant, ProductIdQuery, StoreIdQuery
from app.api.problems import answers, problem_responses
from app.auth.deps import AdminKey, ReadKey
from app.errors import NotFound

router = APIRouter(prefix="/v1", tags=["alerts"])


@router.get(
    "/alerts",
    summary="The alert history: newest first, or in commit order after a seq",
    description=(
        "Every alert stored (silenced ones too, marked `silenced`), with the filters given. "
        "Without `after`, newest first. To follow alerts as they come, poll with `after` "
        "set to the greatest `seq` seen so far: the answer lists the alerts after it in "
        "commit order, oldest first, and never skips one that commits late (`seq` is "
        "given at commit, unlike `created_at`). Page with `next_cursor` either way. "
        "Needs the `read` scope."
    ),
    response_model=Page[AlertOut],
    operation_id="list_alerts",
    responses=answers({"items": [ALERT_EXAMPLE], "next_cursor": None}, 401, 403, 422),
)
async def list_alerts(
    _key: ReadKey,
    session: ReadSessionDep,
    store_id: StoreIdQuery = None,
    product_id: ProductIdQuery = None,
    tier: Annotated[
        str | None,
        Query(pattern="^(demotion|listing_ban|delisting)$", description="Only this tier"),
    ] = None,
    type: Annotated[
        str | None,
        Query(
            pattern="^alert\\.(approaching|breached|resolved|reminder)$",
            description="Only this alert type",
        ),
    ] = None,
    since: Annotated[
        Instant | None,
        Query(
            description="Only alerts created at or after (RFC 3339 with an offset)",
            examples=["2026-11-26T00:00:00+08:00"],
        ),
    ] = None,
    after: Annotated[
        int | None,
        Query(
            ge=0,
            le=MAX_INT,
            description="Only alerts with a greater `seq`, oldest first: the poller's cursor",
            examples=[41],
        ),
    ] = None,
    limit: LimitQuery = 100,
    cursor: CursorQuery = None,
) -> Page[AlertOut]:
    query = repository.alerts_query(
        store_id=store_id, product_id=product_id, tier=tier, type=type, since=since, after=after
    )
    if after is None:
        page = keyset(query, Alert.id, cursor, limit, descending=True)
        rows = list(await session.scalars(page))
        alerts, next_cursor = next_page(rows, limit, lambda a: a.id)
    else:
        rows = list(await session.scalars(keyset(query, Alert.seq, cursor, limit)))
        alerts, next_cursor = next_page(rows, limit, lambda a: a.seq)
    return Page(items=[AlertOut.of(a) for a in alerts], next_cursor=next_cursor)


@router.get(
    "/alerts/{alert_id}",
    summary="One alert",
    description="An alert with everything its webhooks carried (`data`). Needs the `read` scope.",
    response_model=AlertOut,
    operation_id="get_alert",
    responses=answers(ALERT_EXAMPLE, 401, 403, 404, 422),
)
async def get_alert(
    alert_id: Annotated[
        str,
        Path(
            max_length=40,
            pattern=NO_NUL,
            description="The alert's id",
            examples=["0b6f3c1e-7d8a-4f57-9a51-2f9e5c1d4a3b"],
        ),
    ],
    _key: ReadKey,
    session: ReadSessionDep,
) -> AlertOut:
    alert = await repository.find_alert(session, alert_id)
    if alert is None:
        raise NotFound(f"no alert {alert_id!r}", code="alert_not_found")
    return AlertOut.of(alert)


@router.post(
    "/silences",
    status_code=201,
    summary="Silence alerts until a time",
    description=(
        "Holds back sending for the alerts that match every filter given (store, product, "
        "tier; none = all) until `until`. States still move and alerts are still stored, "
        "marked `silenced`; when the silence ends, the next change or reminder is sent as "
        "usual (held-back alerts are not replayed). Needs the `admin` scope."
    ),
    response_model=SilenceOut,
    operation_id="create_silence",
    responses=answers(SILENCE_EXAMPLE, 401, 403, 422, status=201),
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
    description=(
        "The silences in force now (or every one, with `include_expired`), oldest first. "
        "Needs the `read` scope."
    ),
    response_model=Page[SilenceOut],
    operation_id="list_silences",
    responses=answers({"items": [SILENCE_EXAMPLE], "next_cursor": None}, 401, 403, 422),
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
    description=(
        "Deletes the silence: matching alerts are sent again from the next change or "
        "reminder on. Answers 204 with no body. Needs the `admin` scope."
    ),
    operation_id="delete_silence",
    responses=problem_responses(401, 403, 404, 422),
)
async def delete_silence(
    silence_id: Annotated[
        int, Path(ge=1, le=MAX_INT, description="The silence's id", examples=[1])
    ],
    _key: AdminKey,
    db: DatabaseDep,
) -> Response:
    async with db.transaction() as session:
        silence = await session.get(Silence, silence_id)
        if silence is None:
            raise NotFound(f"no silence {silence_id}", code="silence_not_found")
        await session.delete(silence)
    return Response(status_code=204)
