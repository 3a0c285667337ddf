"""Liveness and readiness: open, no key."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from sqlalchemy import text

from app.api.deps import DatabaseDep
from app.db.migrate import head_revision

router = APIRouter(tags=["health"])


@router.get("/healthz", summary="The process is up", operation_id="healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get(
    "/readyz",
    summary="The database is reachable and migrated to head",
    operation_id="readyz",
    responses={503: {"description": "Not ready: database unreachable or not migrated"}},
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
