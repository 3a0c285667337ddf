"""API key rows: look up by hash, insert, revoke, page."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.models import ApiKey


async def find_active(session: AsyncSession, digest: bytes) -> Any:
    """(id, name, scopes) of the unrevoked key with this hash, or None."""
    return (
        await session.execute(
            select(ApiKey.id, ApiKey.name, ApiKey.scopes).where(
                ApiKey.key_hash == digest, ApiKey.revoked_at.is_(None)
            )
        )
    ).first()


async def insert_key(session: AsyncSession, record: ApiKey) -> ApiKey:
    session.add(record)
    await session.flush()
    return record


async def revoke(session: AsyncSession, key_id: int, now: datetime) -> bool:
    result = await session.execute(
        update(ApiKey)
        .where(ApiKey.id == key_id, ApiKey.revoked_at.is_(None))
        .values(revoked_at=now)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def count_keys(session: AsyncSession) -> int:
    return int(await session.scalar(select(func.count()).select_from(ApiKey)) or 0)


def keys_query() -> Any:
    """Every key, for :func:`app.api.pagination.keyset` on ``ApiKey.id``."""
    return select(ApiKey)
