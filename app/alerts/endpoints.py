"""/v1/alerts: the alert history."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query
from pydantic import AwareDatetime
from sqlalchemy import select

from app.alerts.models import Alert
from app.alerts.schemas import AlertOut, AlertPage
from app.api.deps import ReadKey, ReadSessionDep
from app.api.pagination import CursorQuery, LimitQuery, decode_cursor, encode_cursor, split_page
from app.api.problems import NotFound, problem_responses

router = APIRouter(prefix="/v1/alerts", tags=["alerts"])


@router.get(
    "",
    summary="The alert history, newest first",
    response_model=AlertPage,
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
) -> AlertPage:
    query = select(Alert).order_by(Alert.id.desc()).limit(limit + 1)
    if store_id is not None:
        query = query.where(Alert.store_id == store_id)
    if product_id is not None:
        query = query.where(Alert.product_id == product_id)
    if tier is not None:
        query = query.where(Alert.tier == tier)
    if type is not None:
        query = query.where(Alert.type == type)
    if since is not None:
        query = query.where(Alert.created_at >= since)
    before = decode_cursor(cursor, int)
    if before is not None:
        query = query.where(Alert.id < int(before))
    rows = list(await session.scalars(query))
    rows, more = split_page(rows, limit)
    return AlertPage(
        items=[AlertOut.of(a) for a in rows],
        next_cursor=encode_cursor(rows[-1].id) if more else None,
    )


@router.get(
    "/{alert_id}",
    summary="One alert",
    response_model=AlertOut,
    operation_id="get_alert",
    responses=problem_responses(401, 403, 404),
)
async def get_alert(
    alert_id: Annotated[str, Path(max_length=40)], _key: ReadKey, session: ReadSessionDep
) -> AlertOut:
    alert = await session.scalar(select(Alert).where(Alert.alert_id == alert_id))
    if alert is None:
        raise NotFound(f"no alert {alert_id!r}", code="alert_not_found")
    return AlertOut.of(alert)
