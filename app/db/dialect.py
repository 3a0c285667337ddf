"""The few places where PostgreSQL and SQLite differ: upserts and locks."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from functools import lru_cache
from typing import Any, Literal

from sqlalchemy import ColumnElement, any_, bindparam, column, func, select, text, tuple_
from sqlalchemy import table as sa_table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.types import String


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
    return _on_conflict(stmt, table, keys, columns, mode, returning)


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


@lru_cache(maxsize=64)
def _upsert_from_arrays(
    table: Any,
    keys: tuple[str, ...],
    columns: tuple[str, ...],
    names: tuple[str, ...],
    mode: str,
    returning: str | None,
) -> Any:
    """PostgreSQL: ``INSERT … SELECT FROM unnest(:a_col1, :a_col2, …) ON CONFLICT …``.

    One array per column instead of one bound row per event: the driver encodes
    each array in C, where an executemany would process every row's parameters
    in Python (the larger part of a batch's cost).
    """
    arrays = [bindparam(f"a_{name}", type_=ARRAY(table.c[name].type)) for name in names]
    rows = func.unnest(*arrays).table_valued(*names).render_derived()
    stmt: Any = postgresql.insert(table).from_select(
        list(names), select(*(rows.c[name] for name in names))
    )
    return _on_conflict(stmt, table, keys, columns, mode, returning)


def _on_conflict(
    stmt: Any,
    table: Any,
    keys: tuple[str, ...],
    columns: tuple[str, ...],
    mode: str,
    returning: str | None,
) -> Any:
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


async def upsert_rows(
    session: AsyncSession,
    table: Any,
    keys: Sequence[str],
    columns: Sequence[str],
    names: Sequence[str],
    rows: Sequence[Sequence[Any]],
    *,
    mode: Literal["replace", "add", "nothing"] = "replace",
    returning: str | None = None,
) -> Any:
    """Upsert ``rows`` (tuples of the ``names`` columns) in one statement; see :func:`upsert`.

    PostgreSQL binds one array per column, or, for a bulk of at least
    :data:`COPY_FROM_ROWS` rows (file imports), copies them into a temporary
    table first; SQLite runs an executemany.
    """
    if session.get_bind().dialect.name == "postgresql":
        if len(rows) >= COPY_FROM_ROWS:
            return await _copy_upsert(session, table, keys, columns, names, rows, mode, returning)
        stmt = _upsert_from_arrays(
            table, tuple(keys), tuple(columns), tuple(names), mode, returning
        )
        columns_of_rows = list(zip(*rows, strict=True)) if rows else [() for _ in names]
        return await session.execute(
            stmt,
            {
                f"a_{name}": list(values)
                for name, values in zip(names, columns_of_rows, strict=True)
            },
        )
    stmt = upsert(session, table, keys, columns, mode=mode, returning=returning)
    return await session.execute(stmt, [dict(zip(names, row, strict=True)) for row in rows])


# Below this many rows the array statement wins (no temporary table to fill);
# above it COPY's binary rows cost a fraction of encoding one array per column.
COPY_FROM_ROWS = 2000


@lru_cache(maxsize=64)
def _upsert_from_copy(
    table: Any,
    keys: tuple[str, ...],
    columns: tuple[str, ...],
    names: tuple[str, ...],
    mode: str,
    returning: str | None,
) -> Any:
    staged = sa_table(_staging_name(table), *(column(name) for name in names))
    stmt: Any = postgresql.insert(table).from_select(
        list(names), select(*(staged.c[name] for name in names))
    )
    return _on_conflict(stmt, table, keys, columns, mode, returning)


def _staging_name(table: Any) -> str:
    return f"rw_staged_{table.name}"


async def _copy_upsert(
    session: AsyncSession,
    table: Any,
    keys: Sequence[str],
    columns: Sequence[str],
    names: Sequence[str],
    rows: Sequence[Sequence[Any]],
    mode: str,
    returning: str | None,
) -> Any:
    """PostgreSQL: COPY the rows into a temporary table, then upsert from it.

    The temporary table lives as long as the transaction (created on the first
    bulk of a transaction, emptied before each COPY, dropped at commit), so each
    bulk costs one COPY and one INSERT … SELECT … ON CONFLICT, in the caller's
    transaction. Not longer: behind PgBouncer in transaction pooling, a table
    kept by a server connection would outlive this process and meet the next
    one — with the shape of the table before a migration.
    """
    connection = await session.connection()
    raw: Any = (await connection.get_raw_connection()).driver_connection
    staging = _staging_name(table)
    await raw.execute(
        f'CREATE TEMPORARY TABLE IF NOT EXISTS "{staging}" '
        f'(LIKE "{table.name}" INCLUDING DEFAULTS) ON COMMIT DROP;'
        f'TRUNCATE "{staging}"'
    )
    await raw.copy_records_to_table(staging, records=rows, columns=list(names))
    stmt = _upsert_from_copy(table, tuple(keys), tuple(columns), tuple(names), mode, returning)
    return await session.execute(stmt)


async def copy_new_rows(
    session: AsyncSession, table: Any, names: Sequence[str], rows: Sequence[Sequence[Any]]
) -> bool:
    """PostgreSQL: COPY rows the caller knows to be new straight into ``table``.

    In a savepoint: if a key turns out to exist after all (a concurrent
    writer), the COPY is undone, the transaction goes on, and this returns
    False for the caller to take the upsert instead.
    """
    import asyncpg  # the PostgreSQL extra; only PostgreSQL gets here

    try:
        async with session.begin_nested():
            connection = await session.connection()
            raw: Any = (await connection.get_raw_connection()).driver_connection
            await raw.copy_records_to_table(table.name, records=rows, columns=list(names))
    except asyncpg.UniqueViolationError:
        return False
    return True


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


# On PostgreSQL a plain IN list renders one bind parameter per value, so each
# batch size is a new SQL text: a new server-side prepare every time, and
# client-side rendering per value. Arrays keep one fixed text per statement.


def dialect_of(session: AsyncSession) -> str:
    return session.get_bind().dialect.name


def pairs_clause(dialect: str, a: Any, b: Any, name: str) -> ColumnElement[bool]:
    """``(a, b) IN :name`` — bind the pairs with :func:`pairs_params`.

    Built into statements that are made once per dialect and reused, so neither
    the statement nor its cache key is rebuilt per request.
    """
    if dialect == "postgresql":
        rows = func.unnest(
            bindparam(f"{name}_a", type_=ARRAY(String)),
            bindparam(f"{name}_b", type_=ARRAY(String)),
        )
        pairs_table = rows.table_valued("a", "b").render_derived()
        clause: ColumnElement[bool] = tuple_(a, b).in_(select(pairs_table.c.a, pairs_table.c.b))
        return clause
    expanding: ColumnElement[bool] = tuple_(a, b).in_(bindparam(name, expanding=True))
    return expanding


def pairs_params(dialect: str, name: str, pairs: Sequence[tuple[str, str]]) -> dict[str, Any]:
    if dialect == "postgresql":
        return {f"{name}_a": [p[0] for p in pairs], f"{name}_b": [p[1] for p in pairs]}
    return {name: list(pairs)}


def values_clause(dialect: str, column_: Any, name: str) -> ColumnElement[bool]:
    """``column IN :name`` — bind the values with :func:`values_params`."""
    if dialect == "postgresql":
        result: ColumnElement[bool] = column_ == any_(bindparam(name, type_=ARRAY(String)))
        return result
    listed: ColumnElement[bool] = column_.in_(bindparam(name, expanding=True))
    return listed


def values_params(name: str, values: Sequence[str]) -> dict[str, Any]:
    return {name: list(values)}


_LOCK_PHASES = text(
    "SELECT CASE WHEN s THEN pg_advisory_xact_lock_shared(k) ELSE pg_advisory_xact_lock(k) END "
    "FROM unnest(CAST(:keys AS bigint[]), CAST(:shared AS boolean[])) WITH ORDINALITY AS t(k, s, n) "
    "ORDER BY n"
)


async def lock_phases(session: AsyncSession, phases: Sequence[tuple[Iterable[int], bool]]) -> None:
    """Take several phases of advisory locks in one round trip.

    Each phase is (keys, shared); keys are sorted within a phase and phases are
    taken in the given order, exactly as successive :func:`lock_keys` calls would.
    """
    if not is_postgres(session):
        return
    keys: list[int] = []
    shared: list[bool] = []
    for phase_keys, phase_shared in phases:
        ordered = sorted(set(phase_keys))
        keys.extend(ordered)
        shared.extend([phase_shared] * len(ordered))
    if keys:
        await session.execute(_LOCK_PHASES, {"keys": keys, "shared": shared})


RETRYABLE_SQLSTATES = frozenset({"40P01", "40001"})  # deadlock, serialization failure


def is_retryable(exc: BaseException) -> bool:
    """A transaction PostgreSQL aborted to break a deadlock: safe to run again."""
    orig = getattr(exc, "orig", None)
    sqlstate = getattr(orig, "sqlstate", None) or getattr(
        getattr(orig, "__cause__", None), "sqlstate", None
    )
    return sqlstate in RETRYABLE_SQLSTATES


STALE_STATISTICS_RATIO = 2.0
"""Re-analyze a table when a bulk write could have more than doubled it since its statistics."""


async def refresh_statistics_after_bulk(session: AsyncSession, tables: Sequence[str]) -> list[str]:
    """``ANALYZE`` the tables (PostgreSQL) whose planner statistics this transaction made stale.

    A first import fills an empty ``orders``/``refunds`` inside its own transactions, before
    autovacuum has looked at them: the planner still believes they are nearly empty and can
    join a store's 100,000 orders to its refunds by nested scans (minutes instead of
    milliseconds). Within the transaction ``ANALYZE`` counts its own new rows, so the same
    transaction's evaluation is planned on the real sizes. A table is analyzed when the rows
    this transaction inserted into it (``pg_stat_get_xact_tuples_inserted``) could have
    more than doubled it since its statistics (``pg_class.reltuples``; -1 or 0 when never
    analyzed): once for a first import's first chunk, then again only when a later chunk
    still doubles the table, not after every chunk (each ``ANALYZE`` costs 10–80 ms).

    ``SKIP_LOCKED``: an ``ANALYZE`` holds its table's lock until its transaction ends,
    and a second one of the same table waits for it. The parts of an import fill the
    same tables at once; a part that finds another's analysis under way goes on
    without its own (the other's statistics are as good; should the table still be
    stale, its next chunk analyzes it). Returns the tables asked to be analyzed.

    The per-transaction counter can also hold an earlier transaction's inserts not yet
    flushed to the statistics system (a connection reused at once: a pool, PgBouncer),
    so a table is at worst analyzed once more than needed, never once less.
    """
    if not is_postgres(session):
        return []
    rows = await session.execute(
        text(
            "SELECT relname, reltuples, pg_stat_get_xact_tuples_inserted(oid) FROM pg_class "
            "WHERE relname = ANY(:names) AND relkind = 'r' "
            "AND relnamespace = to_regnamespace(current_schema())"
        ),
        {"names": list(tables)},
    )
    stale = [
        str(name)
        for name, reltuples, inserted in rows
        if inserted > 0
        and max(float(reltuples), 0.0) * STALE_STATISTICS_RATIO
        < max(float(reltuples), 0.0) + inserted
    ]
    for name in stale:
        await session.execute(text(f'ANALYZE (SKIP_LOCKED) "{name}"'))
    return stale
