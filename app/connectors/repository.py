"""Connection rows: find, page, claim due ones for a sync (a lease), release, poke."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import and_, case, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.connectors.models import Connection

SYNCING = ("backfilling", "live")


async def get_connection(
    session: AsyncSession, connection_id: int, *, lock: bool = False
) -> Connection | None:
    return await session.get(Connection, connection_id, with_for_update=lock)


async def find_for_store(session: AsyncSession, platform: str, store_id: str) -> Connection | None:
    return await session.scalar(
        select(Connection).where(Connection.platform == platform, Connection.store_id == store_id)
    )


def connections_query(store_id: str | None) -> Any:
    query = select(Connection)
    if store_id is not None:
        query = query.where(Connection.store_id == store_id)
    return query


async def claim_due(
    session: AsyncSession, *, owner: str, now: datetime, lease_until: datetime, limit: int
) -> list[int]:
    """Lease the connections due for a sync to ``owner`` (``SKIP LOCKED``: once across replicas)."""
    due = (
        select(Connection.id)
        .where(
            Connection.enabled.is_(True),
            Connection.status.in_(SYNCING),
            Connection.next_sync_at <= now,
            or_(Connection.lease_expires_at.is_(None), Connection.lease_expires_at < now),
        )
        .order_by(Connection.next_sync_at, Connection.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    ids = list(await session.scalars(due))
    if ids:
        await session.execute(
            update(Connection)
            .where(Connection.id.in_(ids))
            .values(lease_owner=owner, lease_expires_at=lease_until)
        )
    return ids


async def hold_lease(
    session: AsyncSession, connection_id: int, owner: str, lease_until: datetime
) -> Connection | None:
    """The connection, locked, if ``owner`` still holds its lease (renewed to ``lease_until``)."""
    record = await session.scalar(
        select(Connection)
        .where(Connection.id == connection_id, Connection.lease_owner == owner)
        .with_for_update()
    )
    if record is not None:
        record.lease_expires_at = lease_until
    return record


async def release(session: AsyncSession, connection_id: int, owner: str) -> None:
    await session.execute(
        update(Connection)
        .where(and_(Connection.id == connection_id, Connection.lease_owner == owner))
        .values(lease_owner=None, lease_expires_at=None)
    )


async def next_due(session: AsyncSession) -> datetime | None:
    """When the next connection falls due (the sync loop sleeps until then)."""
    return await session.scalar(
        select(Connection.next_sync_at)
        .where(Connection.enabled.is_(True), Connection.status.in_(SYNCING))
        .order_by(Connection.next_sync_at)
        .limit(1)
    )


def _listenable() -> Any:
    return and_(Connection.enabled.is_(True), Connection.status.in_(SYNCING))


async def apps_to_listen(session: AsyncSession) -> list[str]:
    """The apps (``client_id``) with a connection being synced: one message socket each."""
    rows = await session.scalars(
        select(Connection.client_id).where(_listenable()).distinct().order_by(Connection.client_id)
    )
    return list(rows)


async def app_secret(session: AsyncSession, client_id: str) -> str | None:
    """The app's encrypted secret, from its most recently updated connection being synced."""
    return await session.scalar(
        select(Connection.client_secret_encrypted)
        .where(_listenable(), Connection.client_id == client_id)
        .order_by(Connection.updated_at.desc(), Connection.id.desc())
        .limit(1)
    )


async def poke(session: AsyncSession, client_id: str, mall_id: str, now: datetime) -> int:
    """A pushed message of ``mall_id``: its app's connections of that mall (or of no
    known mall) are due now and remember the poke. Connections backing off after a
    failure keep their wait. Returns how many were poked."""
    result = await session.execute(
        update(Connection)
        .where(
            _listenable(),
            Connection.client_id == client_id,
            Connection.consecutive_failures == 0,
            or_(Connection.mall_id.is_(None), Connection.mall_id == mall_id),
        )
        .values(
            poked_at=now,
            next_sync_at=case((Connection.next_sync_at > now, now), else_=Connection.next_sync_at),
        )
        .execution_options(synchronize_session=False)
    )
    return int(getattr(result, "rowcount", 0) or 0)
