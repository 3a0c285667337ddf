"""Stores and their policies, read as contexts; stores created by their first event."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from functools import lru_cache
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.dialect import dialect_of, upsert, values_clause, values_params
from app.policies.models import DEFAULT_POLICY_ID, Policy
from app.policies.rules import policy_rules
from app.stores.models import Store
from app.stores.rules import StoreContext

_CONTEXT_COLUMNS = (
    Store.store_id,
    Store.name,
    Store.timezone,
    Store.policy_id,
    Policy.window_days,
    Policy.quality_reasons,
    Policy.reason_basis,
    Policy.warn_ratio,
    Policy.warn_headroom,
    Policy.min_orders,
    Policy.reminder_interval_seconds,
    Policy.tiers,
    Policy.reason_aliases,
    Policy.count_basis,
    Store.created_at,
    Store.updated_at,
)


def _context(row: Any) -> StoreContext:
    return StoreContext(
        store_id=row.store_id,
        name=row.name,
        timezone=row.timezone,
        policy=policy_rules(
            policy_id=row.policy_id,
            window_days=row.window_days,
            quality_reasons=row.quality_reasons,
            reason_basis=row.reason_basis,
            warn_ratio=row.warn_ratio,
            warn_headroom=row.warn_headroom,
            min_orders=row.min_orders,
            reminder_interval_seconds=row.reminder_interval_seconds,
            tiers=row.tiers,
            reason_aliases=row.reason_aliases,
            count_basis=row.count_basis,
        ),
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def _context_query() -> Any:
    return select(*_CONTEXT_COLUMNS).join(Policy, Policy.id == Store.policy_id)


@lru_cache(maxsize=8)
def _contexts_query(dialect: str) -> Any:
    return _context_query().where(values_clause(dialect, Store.store_id, "stores"))


async def load_contexts(session: AsyncSession, store_ids: Sequence[str]) -> dict[str, StoreContext]:
    if not store_ids:
        return {}
    rows = await session.execute(
        _contexts_query(dialect_of(session)), values_params("stores", store_ids)
    )
    return {row.store_id: _context(row) for row in rows}


async def load_context(session: AsyncSession, store_id: str) -> StoreContext | None:
    return (await load_contexts(session, [store_id])).get(store_id)


async def ensure_stores(
    session: AsyncSession, store_ids: Sequence[str], *, now: datetime, default_timezone: str
) -> dict[str, StoreContext]:
    """Contexts for these stores, creating the missing ones on the default policy."""
    contexts = await load_contexts(session, store_ids)
    missing = sorted(set(store_ids) - contexts.keys())
    if missing:
        stmt = upsert(session, Store.__table__, ["store_id"], mode="nothing")
        await session.execute(
            stmt,
            [
                {
                    "store_id": store_id,
                    "name": None,
                    "timezone": default_timezone,
                    "policy_id": DEFAULT_POLICY_ID,
                    "created_at": now,
                    "updated_at": now,
                }
                for store_id in missing
            ],
        )
        contexts.update(await load_contexts(session, missing))
    return contexts


def contexts_page_query() -> Any:
    """Every store's context, for :func:`app.api.pagination.keyset` on ``Store.store_id``."""
    return _context_query()


async def read_contexts(session: AsyncSession, query: Any) -> list[StoreContext]:
    return [_context(row) for row in await session.execute(query)]


async def store_ids_on_policy(session: AsyncSession, policy_id: int) -> list[str]:
    return list(await session.scalars(select(Store.store_id).where(Store.policy_id == policy_id)))


async def count_stores_on_policy(session: AsyncSession, policy_id: int) -> int:
    count = await session.scalar(select(func.count()).where(Store.policy_id == policy_id))
    return int(count or 0)


async def store_days(session: AsyncSession) -> list[Any]:
    """(store_id, timezone, evaluated_on) of every store: what the window slide checks."""
    return list(
        (await session.execute(select(Store.store_id, Store.timezone, Store.evaluated_on))).all()
    )


async def mark_evaluated(session: AsyncSession, store_id: str, day: date) -> None:
    await session.execute(update(Store).where(Store.store_id == store_id).values(evaluated_on=day))


async def stores_built_before(session: AsyncSession, version: int) -> list[str]:
    """Stores whose buckets were built with older bucket rules than ``version``."""
    return list(
        await session.scalars(
            select(Store.store_id).where(Store.figures_version < version).order_by(Store.store_id)
        )
    )


async def mark_figures_version(session: AsyncSession, store_id: str, version: int) -> None:
    await session.execute(
        update(Store).where(Store.store_id == store_id).values(figures_version=version)
    )
