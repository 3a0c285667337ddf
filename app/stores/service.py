"""Store use cases: read one (or 404), edit one and refresh what the edit changes."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.errors import NotFound, field_error
from app.ingest.road import lock_stores_for_edit, refresh_store
from app.policies.models import Policy
from app.stores.models import Store
from app.stores.repository import load_context
from app.stores.rules import StoreContext


async def require_store(session: AsyncSession, store_id: str) -> StoreContext:
    ctx = await load_context(session, store_id)
    if ctx is None:
        raise NotFound(
            f"no store {store_id!r}: stores are created by their first event",
            code="store_not_found",
        )
    return ctx


async def patch_store(
    session: AsyncSession, store_id: str, fields: dict[str, Any], now: datetime
) -> StoreContext:
    """Apply ``fields`` (name, timezone, policy_id) and refresh the store's figures and tiers.

    The store's lock is taken exclusively first, so no ingest of this store
    interleaves and the re-evaluation reads the edited lines.
    """
    await lock_stores_for_edit(session, [store_id])
    before = await require_store(session, store_id)
    store = await session.get(Store, store_id, with_for_update=True)
    assert store is not None
    policy_id = fields.get("policy_id")
    if policy_id is not None and await session.get(Policy, policy_id) is None:
        raise field_error("body.policy_id", "unknown_policy", f"no policy {policy_id}")
    for name, value in fields.items():
        if name != "name" and value is None:
            continue
        setattr(store, name, value)
    store.updated_at = now
    await session.flush()
    after = await require_store(session, store_id)
    await refresh_store(session, before, after, now)
    return after
