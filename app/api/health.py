"""Liveness and readiness: open, no key."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from sqlalchemy import text

from app.api.deps import DatabaseDep
from app.db.migrate import head_revision

router = APIRouter(tags=["health"])


@router.get(
    "/healthz",
    summary="The process is up",
    description="Answers as long as the process serves requests; touches no database. No key.",
    operation_id="healthz",
    responses={200: {"content": {"application/json": {"example": {"status": "ok"}}}}},
)
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get(
    "/readyz",
    summary="The database is reachable and migrated to head",
    description=(
        "200 when the database answers and its schema is at the migrations' head; 503 "
        "otherwise (`unavailable` with the driver's message, or `not_migrated` with both "
        "revisions). For load balancers and orchestrators. No key."
    ),
    operation_id="readyz",
    responses={
        200: {
            "description": "Ready",
            "content": {"application/json": {"example": {"status": "ready", "revision": "0009"}}},
        },
        503: {
            "description": "Not ready: database unreachable or not migrated",
            "content": {
                "application/json": {
                    "example": {"status": "not_migrated", "database": "0006", "head": "0009"}
                }
            },
        },
    },
)
async def readyz(db: DatabaseDep) -> JSONResponse:
    try:
        async with db.engine.connect() as conn:
            current = (await conn.execute(text("SELECT version_num FROM alembic_version"))).scalar()
    except Exception as exc:  # any database failure means "not ready"
        return JSONResponse({"status": "unavailable", "detail": str(exc)[:200]}, status_code=503)
    head = head_revision()
    if current != head:
        return JSONResponse(
            {"status": "not_migrated", "database": current, "head": head}, status_code=503
        )
    return JSONResponse({"status": "ready", "revision": current})
