"""Engine and sessions: one place where transactions begin and end."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import event, make_url, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from app.config import Settings


def create_engine(settings: Settings) -> AsyncEngine:
    """Create the async engine for the configured database.

    SQLite: WAL, synchronous=FULL (an acknowledged event survives power loss,
    not only a crash), and ``BEGIN IMMEDIATE`` so that a transaction takes the
    write lock up front instead of failing to upgrade a read lock later.
    PostgreSQL: a pool sized for the request concurrency; behind PgBouncer
    (``db_pgbouncer``) no prepared statement outlives its transaction.
    """
    url = settings.async_database_url
    if url.startswith("sqlite"):
        ensure_sqlite_dir(url)
        engine = create_async_engine(url, pool_size=5, max_overflow=0)
        _configure_sqlite(engine)
        return engine
    return create_async_engine(
        url,
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_max_overflow,
        pool_pre_ping=False,
        connect_args=postgres_connect_args(pgbouncer=settings.db_pgbouncer),
    )


def postgres_connect_args(*, pgbouncer: bool) -> dict[str, Any]:
    """asyncpg's connection arguments; with ``pgbouncer``, fit for transaction pooling.

    A pooler in transaction mode hands each transaction whichever server
    connection is free, so a statement prepared in one transaction is unknown
    (or, named alike by another client, already taken) in the next. PgBouncer
    before 1.21 (Debian 12 ships 1.18) cannot track them, so both statement
    caches are off (asyncpg's and SQLAlchemy's) and every statement is the
    unnamed one, prepared and run inside its own transaction and replaced by the
    next: nothing is left behind on the server either. The cost is a Parse
    round trip per statement (docs/operations.md#pgbouncer has the figures).
    """
    args: dict[str, Any] = {"server_settings": {"application_name": "refundwatch"}}
    if pgbouncer:
        args.update(
            statement_cache_size=0,
            prepared_statement_cache_size=0,
            prepared_statement_name_func=_unnamed,
        )
    return args


def _unnamed() -> str:
    return ""


class PoolingRefused(RuntimeError):
    """The database URL reaches a transaction pooler and the service was not told."""


_BACKEND = text("SELECT pg_backend_pid()")
# A prepared statement unknown on this server connection, or already taken by another client.
_STATEMENT_SQLSTATES = frozenset({"26000", "42P05"})


async def check_pooling(db: Database, settings: Settings) -> None:
    """Refuse to start on a transaction pooler unless ``REFUNDWATCH_DB_PGBOUNCER=true``.

    With the statement caches on, a pooler in transaction mode breaks ingest at
    random under load; saying so at start is kinder. See :func:`transaction_pooled`.
    """
    if db.dialect != "postgresql" or settings.db_pgbouncer:
        return
    if await transaction_pooled(db.engine):
        raise PoolingRefused(
            "the database URL leads to a pooler in transaction pooling mode (PgBouncer?): "
            "set REFUNDWATCH_DB_PGBOUNCER=true, or point REFUNDWATCH_DATABASE_URL at "
            "PostgreSQL itself or at a pool in session mode"
        )


async def transaction_pooled(engine: AsyncEngine) -> bool:
    """Whether two transactions of one client connection may run on different backends.

    Client A runs a transaction and ends it; client B opens one and holds it; A
    runs another. On PostgreSQL itself (or a session pool) A keeps its backend.
    Behind a transaction pooler B is handed the backend A just released (PgBouncer
    reuses the most recent one first), or A comes back on another: either way the
    backend ids differ. A prepared statement lost between A's transactions says
    the same thing.
    """
    try:
        async with engine.connect() as a, engine.connect() as b:
            first = (await a.execute(_BACKEND)).scalar()
            await a.commit()
            held = (await b.execute(_BACKEND)).scalar()
            if held == first:
                return True
            again = (await a.execute(_BACKEND)).scalar()
            await a.rollback()
            await b.rollback()
            return again != first
    except DBAPIError as exc:
        if _sqlstate(exc) in _STATEMENT_SQLSTATES:
            return True
        raise


def _sqlstate(exc: BaseException) -> str | None:
    orig = getattr(exc, "orig", None)
    state = getattr(orig, "sqlstate", None) or getattr(
        getattr(orig, "__cause__", None), "sqlstate", None
    )
    return state if isinstance(state, str) else None


def ensure_sqlite_dir(url: str) -> None:
    """Create the folder of an SQLite database file (the data dir on first start)."""
    path = make_url(url).database
    if path and path != ":memory:":
        Path(path).expanduser().parent.mkdir(parents=True, exist_ok=True)


def _configure_sqlite(engine: AsyncEngine) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Take transaction control away from the driver so BEGIN IMMEDIATE is ours.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Any) -> None:
        # Readers need no write lock: WAL lets them run beside the writer.
        if conn.get_execution_options().get(READ_ONLY):
            conn.exec_driver_sql("BEGIN")
        else:
            conn.exec_driver_sql("BEGIN IMMEDIATE")


READ_ONLY = "refundwatch_read_only"


class Database:
    """Holds the engine and hands out units of work."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self.sessions = async_sessionmaker(engine, expire_on_commit=False, autoflush=False)
        self.read_sessions = async_sessionmaker(
            engine.execution_options(**{READ_ONLY: True}), expire_on_commit=False, autoflush=False
        )

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """One unit of work: commits on success, rolls back on any exception."""
        async with self.sessions() as session, session.begin():
            yield session

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncSession]:
        """A transaction for reads only (on SQLite it takes no write lock)."""
        async with self.read_sessions() as session, session.begin():
            yield session

    async def dispose(self) -> None:
        await self.engine.dispose()
