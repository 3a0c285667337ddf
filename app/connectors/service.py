"""Connection use cases: register a store's app, pause, resume, re-authorise, remove."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.config import Settings
from app.connectors import repository
from app.connectors.models import Connection
from app.connectors.pdd.windows import settled_horizon
from app.connectors.schemas import ConnectionIn, ConnectionOut
from app.connectors.secrets import secret_box
from app.errors import Conflict, NotFound, field_error
from app.policies.models import DEFAULT_POLICY_ID, Policy
from app.stores.repository import load_context

BACKFILL_MARGIN = timedelta(days=15)
EARLIEST_SYNC_FROM = timedelta(days=400)


def connection_out(record: Connection, now: datetime) -> ConnectionOut:
    return ConnectionOut.of(record, now, settled_horizon(now))


async def require_connection(
    session: AsyncSession, connection_id: int, *, lock: bool = False
) -> Connection:
    record = await repository.get_connection(session, connection_id, lock=lock)
    if record is None:
        raise NotFound(f"no connection {connection_id}", code="connection_not_found")
    return record


async def _default_sync_from(session: AsyncSession, store_id: str, now: datetime) -> datetime:
    ctx = await load_context(session, store_id)
    if ctx is not None:
        window_days = ctx.window_days
    else:
        policy = await session.get(Policy, DEFAULT_POLICY_ID)
        window_days = policy.window_days if policy is not None else 30
    return (now - timedelta(days=window_days) - BACKFILL_MARGIN).replace(microsecond=0)


async def create_connection(
    session: AsyncSession, body: ConnectionIn, settings: Settings, now: datetime
) -> Connection:
    """Store the connection (credentials encrypted); its first sync checks them."""
    box = secret_box(settings)
    if await repository.find_for_store(session, body.platform, body.store_id) is not None:
        raise Conflict(
            f"store {body.store_id!r} already has a {body.platform} connection; "
            "PATCH it to give new credentials",
            code="connection_exists",
        )
    sync_from = body.sync_from or await _default_sync_from(session, body.store_id, now)
    if sync_from > now:
        raise field_error("body.sync_from", "sync_from_in_future", "sync_from must be in the past")
    if sync_from < now - EARLIEST_SYNC_FROM:
        raise field_error(
            "body.sync_from", "sync_from_too_early", "sync_from may be at most 400 days ago"
        )
    record = Connection(
        platform=body.platform,
        store_id=body.store_id,
        client_id=body.client_id,
        client_secret_encrypted=box.encrypt(body.client_secret),
        access_token_encrypted=box.encrypt(body.access_token),
        refresh_token_encrypted=box.encrypt(body.refresh_token) if body.refresh_token else None,
        mall_id=body.mall_id,
        status="backfilling",
        enabled=True,
        sync_from=sync_from.replace(microsecond=0),
        synced_through=sync_from.replace(microsecond=0),
        next_sync_at=now,
        events_accepted=0,
        events_duplicate=0,
        events_rejected=0,
        calls=0,
        windows=0,
        consecutive_failures=0,
        created_at=now,
        updated_at=now,
    )
    session.add(record)
    await session.flush()
    return record


async def patch_connection(
    session: AsyncSession,
    connection_id: int,
    fields: dict[str, Any],
    settings: Settings,
    now: datetime,
) -> Connection:
    """Pause (``enabled: false``), resume, or re-authorise: new credentials clear a failure."""
    record = await require_connection(session, connection_id, lock=True)
    new_credentials = any(
        fields.get(k) is not None
        for k in ("client_id", "client_secret", "access_token", "refresh_token")
    )
    if new_credentials:
        box = secret_box(settings)
        if fields.get("client_id") is not None:
            record.client_id = fields["client_id"]
        if fields.get("client_secret") is not None:
            record.client_secret_encrypted = box.encrypt(fields["client_secret"])
        if fields.get("access_token") is not None:
            record.access_token_encrypted = box.encrypt(fields["access_token"])
        if fields.get("refresh_token") is not None:
            record.refresh_token_encrypted = box.encrypt(fields["refresh_token"])
    if "mall_id" in fields:  # null forgets it
        record.mall_id = fields["mall_id"]
    enabled = fields.get("enabled")
    if enabled is not None:
        record.enabled = enabled
    if not record.enabled:
        record.status = "disabled"
    elif new_credentials or enabled or record.status == "disabled":
        # Back to work: the next sync (at once) says whether the credentials hold.
        record.status = (
            "backfilling"
            if record.synced_through < settled_horizon(now) - timedelta(minutes=30)
            else "live"
        )
        record.next_sync_at = now
        record.consecutive_failures = 0
        record.failing_since = None
        if new_credentials:
            record.last_error_code = record.last_error_message = None
            record.last_error_at = None
    record.updated_at = now
    await session.flush()
    return record


async def delete_connection(session: AsyncSession, connection_id: int) -> None:
    """Forget the connection and its credentials; the events it brought stay."""
    await session.delete(await require_connection(session, connection_id, lock=True))
