"""Stores and the policy facts that the figures need."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.dialect import dialect_of, upsert, values_clause, values_params
from app.risk.models import DEFAULT_POLICY_ID, Policy
from app.stores.models import Store


@lru_cache(maxsize=512)
def zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


@dataclass(frozen=True, slots=True)
class StoreContext:
    """A store with its policy: what folding and evaluating need to know."""

    store_id: str
    name: str | None
    timezone: str
    policy_id: int
    window_days: int
    quality_reasons: frozenset[str]
    reason_basis: str
    warn_ratio: Decimal
    warn_headroom: int
    min_orders: int
    reminder_interval_seconds: int
    tiers: tuple[dict[str, Any], ...]
    created_at: datetime
    updated_at: datetime

    @property
    def tz(self) -> ZoneInfo:
        return zone(self.timezone)

    def today(self, now: datetime) -> date:
        return now.astimezone(self.tz).date()

    def window(self, as_of: date) -> tuple[date, date]:
        return as_of - timedelta(days=self.window_days - 1), as_of


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
    Store.created_at,
    Store.updated_at,
)


def _context(row: Any) -> StoreContext:
    return StoreContext(
        store_id=row.store_id,
        name=row.name,
        timezone=row.timezone,
        policy_id=row.policy_id,
        window_days=row.window_days,
        quality_reasons=frozenset(row.quality_reasons),
        reason_basis=row.reason_basis,
        warn_ratio=Decimal(row.warn_ratio),
        warn_headroom=row.warn_headroom,
        min_orders=row.min_orders,
        reminder_interval_seconds=row.reminder_interval_seconds,
        tiers=tuple(row.tiers),
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def context_query() -> Any:
    return select(*_CONTEXT_COLUMNS).join(Policy, Policy.id == Store.policy_id)


@lru_cache(maxsize=8)
def _contexts_query(dialect: str) -> Any:
    return context_query().where(values_clause(dialect, Store.store_id, "stores"))


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


async def list_contexts(
    session: AsyncSession, *, after: str | None, limit: int
) -> list[StoreContext]:
    query = context_query().order_by(Store.store_id).limit(limit)
    if after is not None:
        query = query.where(Store.store_id > after)
    return [_context(row) for row in await session.execute(query)]


async def get_store_or_404(session: AsyncSession, store_id: str) -> StoreContext:
    ctx = await load_context(session, store_id)
    if ctx is None:
        from app.api.problems import NotFound

        raise NotFound(
            f"no store {store_id!r}: stores are created by their first event",
            code="store_not_found",
        )
    return ctx
