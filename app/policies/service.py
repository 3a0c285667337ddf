"""Policy use cases: create, replace (re-judging every store on it), delete."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from app.errors import Conflict, NotFound
from app.ingest.road import lock_stores_for_edit, refresh_store
from app.policies import repository
from app.policies.models import DEFAULT_POLICY_ID, Policy
from app.policies.schemas import PolicyIn, PolicyOut
from app.stores.repository import count_stores_on_policy, load_contexts, store_ids_on_policy


async def policy_out(session: AsyncSession, policy: Policy) -> PolicyOut:
    return PolicyOut(
        id=policy.id,
        name=policy.name,
        window_days=policy.window_days,
        quality_reasons=list(policy.quality_reasons),
        reason_basis=policy.reason_basis,
        warn_ratio=str(policy.warn_ratio.normalize()),
        warn_headroom=policy.warn_headroom,
        min_orders=policy.min_orders,
        reminder_interval_seconds=policy.reminder_interval_seconds,
        tiers=list(policy.tiers),
        reason_aliases=dict(policy.reason_aliases or {}),
        count_basis=policy.count_basis,
        stores=await count_stores_on_policy(session, policy.id),
        created_at=policy.created_at,
        updated_at=policy.updated_at,
    )


async def require_policy(session: AsyncSession, policy_id: int, *, lock: bool = False) -> Policy:
    policy = await repository.get_policy(session, policy_id, lock=lock)
    if policy is None:
        raise NotFound(f"no policy {policy_id}", code="policy_not_found")
    return policy


async def _name_free(session: AsyncSession, name: str, policy_id: int | None = None) -> None:
    if await repository.name_taken(session, name, other_than=policy_id):
        raise Conflict(f"a policy named {name!r} exists", code="policy_name_taken")


def _apply(policy: Policy, body: PolicyIn, now: datetime) -> None:
    policy.name = body.name
    policy.window_days = body.window_days
    policy.quality_reasons = body.quality_reasons
    policy.reason_basis = body.reason_basis
    policy.warn_ratio = body.warn_ratio
    policy.warn_headroom = body.warn_headroom
    policy.min_orders = body.min_orders
    policy.reminder_interval_seconds = body.reminder_interval_seconds
    policy.tiers = body.tiers_json()
    policy.reason_aliases = body.reason_aliases
    policy.count_basis = body.count_basis
    policy.updated_at = now


async def create_policy(session: AsyncSession, body: PolicyIn, now: datetime) -> Policy:
    await _name_free(session, body.name)
    policy = Policy(created_at=now)
    _apply(policy, body, now)
    session.add(policy)
    await session.flush()
    return policy


async def replace_policy(
    session: AsyncSession, policy_id: int, body: PolicyIn, now: datetime
) -> Policy:
    """Replace a policy; every store on it is refreshed in the same transaction."""
    # Store locks before the policy row: ingest creating a store holds store
    # locks and then needs a key-share lock on the policy row (its foreign key).
    store_ids = await store_ids_on_policy(session, policy_id)
    await lock_stores_for_edit(session, store_ids)
    policy = await require_policy(session, policy_id, lock=True)
    await _name_free(session, body.name, policy_id)
    before = await load_contexts(session, store_ids)
    _apply(policy, body, now)
    await session.flush()
    after = await load_contexts(session, store_ids)
    for store_id in sorted(store_ids):
        await refresh_store(session, before[store_id], after[store_id], now)
    return policy


async def delete_policy(session: AsyncSession, policy_id: int) -> None:
    policy = await require_policy(session, policy_id, lock=True)
    if policy_id == DEFAULT_POLICY_ID:
        raise Conflict(
            "the default policy cannot be deleted: new stores use it", code="policy_is_default"
        )
    in_use = await count_stores_on_policy(session, policy_id)
    if in_use:
        raise Conflict(f"{in_use} store(s) use this policy; move them first", code="policy_in_use")
    await session.delete(policy)
