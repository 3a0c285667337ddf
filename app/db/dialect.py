"""The few places where PostgreSQL and SQLite differ: upserts and locks."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from typing import Any

from sqlalchemy import bindparam, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession


def insert_for(session: AsyncSession, table: Any) -> Any:
    """The dialect's INSERT, which has ``on_conflict_do_*`` on both backends."""
    if is_postgres(session):
        return postgresql.insert(table)
    return sqlite.insert(table)


def is_postgres(session: AsyncSession) -> bool:
    return session.get_bind().dialect.name == "postgresql"


def lock_key(namespace: str, *parts: str) -> int:
    """A stable signed 64-bit key for ``pg_advisory_xact_lock``."""
    digest = hashlib.blake2b("\x1f".join((namespace, *parts)).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


_LOCK = text(
    "SELECT pg_advisory_xact_lock(k) FROM unnest(CAST(:keys AS bigint[])) WITH ORDINALITY AS t(k, n) "
    "ORDER BY n"
).bindparams(bindparam("keys"))
_LOCK_SHARED = text(
    "SELECT pg_advisory_xact_lock_shared(k) FROM unnest(CAST(:keys AS bigint[])) "
    "WITH ORDINALITY AS t(k, n) ORDER BY n"
).bindparams(bindparam("keys"))


async def lock_keys(session: AsyncSession, keys: Iterable[int], *, shared: bool = False) -> None:
    """Take transaction-scoped advisory locks, always in ascending key order.

    A fixed order within each phase (stores, refunds, orders, scopes) and a
    fixed order of phases rule out deadlocks between concurrent batches.
    SQLite needs none: ``BEGIN IMMEDIATE`` already serialises writers.
    """
    ordered = sorted(set(keys))
    if not ordered or not is_postgres(session):
        return
    await session.execute(_LOCK_SHARED if shared else _LOCK, {"keys": ordered})
