"""/v1/connections: a store's authorised open-platform app, and where its sync stands."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request, Response

from app.api.deps import ClockDep, DatabaseDep, ReadSessionDep, SettingsDep
from app.api.pagination import CursorQuery, LimitQuery, Page, keyset, next_page
from app.api.params import MAX_INT, StoreIdQuery
from app.api.problems import answers, problem_responses
from app.auth.deps import AdminKey
from app.connectors import repository, service
from app.connectors.models import Connection
from app.connectors.schemas import (
    CONNECTION_EXAMPLE,
    ConnectionIn,
    ConnectionOut,
    ConnectionPatch,
)

router = APIRouter(prefix="/v1/connections", tags=["connections"])

ConnectionIdPath = Annotated[
    int, Path(ge=1, le=MAX_INT, description="The connection's id", examples=[1])
]


def _wake(request: Request) -> None:
    """A connection was created or edited: this process's worker syncs it and listens for
    its app now (other replicas' workers find it within their idle poll)."""
    worker = getattr(request.app.state, "worker", None)
    if worker is not None:
        worker.connections_changed()
        return
    syncer = getattr(request.app.state, "syncer", None)
    if syncer is not None:
        syncer.wake()


@router.post(
    "",
    status_code=201,
    summary="Connect a store's authorised Pinduoduo app",
    description=(
        "Stores the connection with its credentials encrypted and answers at once. The "
        "worker's first sync, within seconds, checks the credentials: a wrong secret or "
        "token shows as `failing` with the platform's message. It then backfills from "
        "`sync_from` in windows of at most 30 minutes and stays `live`, about a minute "
        "behind the platform. Secrets are never returned. Needs the `admin` scope."
    ),
    response_model=ConnectionOut,
    operation_id="create_connection",
    responses=answers(
        {**CONNECTION_EXAMPLE, "status": "backfilling", "backfill_progress": 0.0},
        401,
        403,
        409,
        422,
        503,
        status=201,
    ),
)
async def create_connection(
    request: Request,
    body: ConnectionIn,
    _key: AdminKey,
    db: DatabaseDep,
    clock: ClockDep,
    settings: SettingsDep,
) -> ConnectionOut:
    now = clock.now()
    async with db.transaction() as session:
        record = await service.create_connection(session, body, settings, now)
        out = service.connection_out(record, now)
    _wake(request)
    return out


@router.get(
    "",
    summary="List connections",
    description=(
        "Every store's connection, oldest first, with where its sync stands; never a "
        "credential. Filter by `store_id`. Needs the `admin` scope."
    ),
    response_model=Page[ConnectionOut],
    operation_id="list_connections",
    responses=answers({"items": [CONNECTION_EXAMPLE], "next_cursor": None}, 401, 403, 422),
)
async def list_connections(
    _key: AdminKey,
    session: ReadSessionDep,
    clock: ClockDep,
    store_id: StoreIdQuery = None,
    limit: LimitQuery = 100,
    cursor: CursorQuery = None,
) -> Page[ConnectionOut]:
    query = keyset(repository.connections_query(store_id), Connection.id, cursor, limit)
    rows, next_cursor = next_page(list(await session.scalars(query)), limit, lambda c: c.id)
    now = clock.now()
    return Page(items=[service.connection_out(r, now) for r in rows], next_cursor=next_cursor)


@router.get(
    "/{connection_id}",
    summary="A connection: status, synced_through, lag, counts, last error",
    description=(
        "`status` is backfilling, live, failing (the platform refused the credentials: "
        "`last_error` has its message) or disabled. `synced_through` is the instant up to "
        "which every change at the platform is in. Needs the `admin` scope."
    ),
    response_model=ConnectionOut,
    operation_id="get_connection",
    responses=answers(CONNECTION_EXAMPLE, 401, 403, 404, 422),
)
async def get_connection(
    connection_id: ConnectionIdPath, _key: AdminKey, session: ReadSessionDep, clock: ClockDep
) -> ConnectionOut:
    record = await service.require_connection(session, connection_id)
    return service.connection_out(record, clock.now())


@router.patch(
    "/{connection_id}",
    summary="Pause, resume or re-authorise a connection",
    description=(
        "`enabled: false` pauses it (`disabled`), `true` resumes it. New credentials "
        "(after the platform refused the old ones) clear the failure; the next sync, at "
        "once, checks them."
    ),
    response_model=ConnectionOut,
    operation_id="patch_connection",
    responses=answers(CONNECTION_EXAMPLE, 401, 403, 404, 422, 503),
)
async def patch_connection(
    request: Request,
    connection_id: ConnectionIdPath,
    body: ConnectionPatch,
    _key: AdminKey,
    db: DatabaseDep,
    clock: ClockDep,
    settings: SettingsDep,
) -> ConnectionOut:
    now = clock.now()
    async with db.transaction() as session:
        record = await service.patch_connection(
            session, connection_id, body.model_dump(exclude_unset=True), settings, now
        )
        out = service.connection_out(record, now)
    _wake(request)
    return out


@router.delete(
    "/{connection_id}",
    status_code=204,
    summary="Remove a connection (the events it brought stay)",
    description=(
        "Stops the sync and forgets the credentials; the events it brought and their "
        "figures stay. Answers 204 with no body. Needs the `admin` scope."
    ),
    operation_id="delete_connection",
    responses=problem_responses(401, 403, 404, 422),
)
async def delete_connection(
    connection_id: ConnectionIdPath, _key: AdminKey, db: DatabaseDep
) -> Response:
    async with db.transaction() as session:
        await service.delete_connection(session, connection_id)
    return Response(status_code=204)
