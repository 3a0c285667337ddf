"""The console's rows: sessions (insert, find with their key, end) and acknowledgements."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import delete, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.models import ApiKey
from app.console.models import AlertAcknowledgement, ConsoleSession
from app.db.dialect import upsert


async def insert_session(session: AsyncSession, record: ConsoleSession) -> ConsoleSession:
    session.add(record)
    await session.flush()
    return record


async def find_session(session: AsyncSession, token_hash: bytes) -> Any:
    """The session with this token hash and whether its stored key is still active.

    One statement: the session row, outer-joined to its key, so that a key revoked in any
    process ends the session at once (``key_active`` is False), with no cache in between.
    """
    key_active = (ApiKey.id.is_not(None) & ApiKey.revoked_at.is_(None)).label("key_active")
    return (
        await session.execute(
            select(
                ConsoleSession.id,
                ConsoleSession.key_id,
                ConsoleSession.key_hash,
                ConsoleSession.key_name,
                ConsoleSession.scopes,
                ConsoleSession.expires_at,
                ConsoleSession.revoked_at,
                key_active,
            )
            .outerjoin(ApiKey, ApiKey.id == ConsoleSession.key_id)
            .where(ConsoleSession.token_hash == token_hash)
        )
    ).first()


async def end_session(session: AsyncSession, session_id: int, now: datetime) -> None:
    await session.execute(
        update(ConsoleSession)
        .where(ConsoleSession.id == session_id, ConsoleSession.revoked_at.is_(None))
        .values(revoked_at=now)
    )


async def forget_old_sessions(session: AsyncSession, before: datetime) -> None:
    """Delete sessions that ended (expired or signed out) before ``before``."""
    await session.execute(
        delete(ConsoleSession).where(
            or_(ConsoleSession.expires_at < before, ConsoleSession.revoked_at < before)
        )
    )


async def acknowledge(
    session: AsyncSession, alert_id: str, *, by: str, key_id: int | None, now: datetime
) -> None:
    """Record the acknowledgement; acknowledging again keeps the first one."""
    stmt = upsert(session, AlertAcknowledgement.__table__, ["alert_id"], mode="nothing")
    await session.execute(
        stmt,
        [{"alert_id": alert_id, "acknowledged_at": now, "acknowledged_by": by, "key_id": key_id}],
    )


async def acknowledgements(
    session: AsyncSession, alert_ids: Sequence[str]
) -> dict[str, AlertAcknowledgement]:
    if not alert_ids:
        return {}
    rows = await session.scalars(
        select(AlertAcknowledgement).where(AlertAcknowledgement.alert_id.in_(list(alert_ids)))
    )
    return {row.alert_id: row for row in rows}
