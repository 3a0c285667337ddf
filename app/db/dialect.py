"""The few places where PostgreSQL and SQLite differ: upserts and locks."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from functools import lru_cache
from typing import Any, Literal

from sqlalchemy import bindparam, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession


@lru_cache(maxsize=64)
def _upsert(
    dialect: str,
    table: Any,
    keys: tuple[str, ...],
    columns: tuple[str, ...],
    mode: str,
    returning: str | None,
) -> Any:
    stmt: Any = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(table)
    if mode == "nothing":
        stmt = stmt.on_conflict_do_nothing(index_elements=list(keys))
    elif mode == "add":
        stmt = stmt.on_conflict_do_update(
            index_elements=list(keys),
            set_={name: table.c[name] + stmt.excluded[name] for name in columns},
        )
    else:
        stmt = stmt.on_conflict_do_update(
            index_elements=list(keys), set_={name: stmt.excluded[name] for name in columns}
        )
    if returning is not None:
        stmt = stmt.returning(table.c[returning])
    return stmt


def upsert(
    session: AsyncSession,
    table: Any,
    keys: Sequence[str],
    columns: Sequence[str] = (),
    *,
    mode: Literal["replace", "add", "nothing"] = "replace",
    returning: str | None = None,
) -> Any:
    """An INSERT … ON CONFLICT, built once per dialect and shape (it is on the hot path).

    ``replace`` overwrites ``columns`` with the new row's values, ``add`` adds
    them to the stored ones (bucket deltas), ``nothing`` keeps the stored row.
    """
    return _upsert(
        session.get_bind().dialect.name, table, tuple(keys), tuple(columns), mode, returning
    )


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
