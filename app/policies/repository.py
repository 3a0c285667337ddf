"""Policy rows: read, name checks, page."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.policies.models import Policy


async def get_policy(session: AsyncSession, policy_id: int, *, lock: bool = False) -> Policy | None:
    return await session.get(Policy, policy_id, with_for_update=lock)


async def name_taken(session: AsyncSession, name: str, *, other_than: int | None = None) -> bool:
    query = select(Policy.id).where(Policy.name == name)
    if other_than is not None:
        query = query.where(Policy.id != other_than)
    return await session.scalar(query) is not None


def policies_query() -> Any:
    """Every policy, for :func:`app.api.pagination.keyset` on ``Policy.id``."""
    return select(Policy)
