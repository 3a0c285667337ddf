"""Alembic environment: async engine, our naming convention, every model imported."""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy import pool
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from app.config import to_async_url
from app.db.engine import postgres_connect_args
from app.models import Base

config = context.config
target_metadata = Base.metadata


def run_migrations_offline() -> None:
    context.configure(
        url=to_async_url(config.get_main_option("sqlalchemy.url") or ""),
        target_metadata=target_metadata,
        literal_binds=True,
        render_as_batch=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def do_run_migrations(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        transaction_per_migration=True,
    )
    with context.begin_transaction():
        context.run_migrations()


async def run_async_migrations() -> None:
    url = to_async_url(config.get_main_option("sqlalchemy.url") or "")
    # Statement caches off on PostgreSQL: a migration must also run through PgBouncer
    # in transaction pooling, and it has no hot path to speed up.
    connect_args = postgres_connect_args(pgbouncer=True) if url.startswith("postgresql") else {}
    engine = create_async_engine(url, poolclass=pool.NullPool, connect_args=connect_args)
    async with engine.connect() as connection:
        await connection.run_sync(do_run_migrations)
    await engine.dispose()


def run_migrations_online() -> None:
    connectable = config.attributes.get("connection")
    if connectable is not None:
        do_run_migrations(connectable)
        return
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        asyncio.run(run_async_migrations())
    else:  # called from inside a running loop: run in a fresh thread's loop
        import threading

        errors: list[BaseException] = []

        def runner() -> None:
            try:
                asyncio.run(run_async_migrations())
            except BaseException as exc:  # re-raised below
                errors.append(exc)

        thread = threading.Thread(target=runner)
        thread.start()
        thread.join()
        if errors:
            raise errors[0]


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
