"""PostgreSQL for the bench: fresh databases, a few facts and counts, settling after a load."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import asyncpg

from bench.cpu import OUR_DATABASES

PG_SETTINGS = ("shared_buffers", "fsync", "synchronous_commit", "max_connections", "work_mem")


@contextlib.asynccontextmanager
async def connection(url: str) -> AsyncIterator[Any]:
    conn = await asyncpg.connect(url)
    try:
        yield conn
    finally:
        await conn.close()


async def pg_execute(url: str, sql: str) -> None:
    async with connection(url) as conn:
        await conn.execute(sql)


async def pg_fetchval(url: str, sql: str) -> Any:
    async with connection(url) as conn:
        return await conn.fetchval(sql)


async def pg_admin(server_url: str, sql: str) -> None:
    """Run ``sql`` on the server's ``postgres`` database (CREATE / DROP DATABASE)."""
    await pg_execute(server_url + "/postgres", sql)


async def pg_sessions(url: str) -> int:
    """Sessions ever opened to this database (pg_stat_database, PostgreSQL 14+)."""
    async with connection(url) as conn:
        await conn.execute("SELECT pg_stat_clear_snapshot()")
        return int(
            await conn.fetchval(
                "SELECT sessions FROM pg_stat_database WHERE datname = current_database()"
            )
            or 0
        )


async def server_facts(server_url: str) -> tuple[str, dict[str, str]]:
    """(version, the settings that matter for these figures) of the PostgreSQL server."""
    url = server_url + "/postgres"
    version = await pg_fetchval(url, "SHOW server_version")
    return version, {name: await pg_fetchval(url, f"SHOW {name}") for name in PG_SETTINGS}


async def settle(url: str) -> None:
    """What autovacuum and the checkpointer do to a production database, done now.

    Right after a bulk load the visibility map is empty (index-only scans visit the
    heap), first reads set hint bits and the checkpointer is still writing the load
    out: that is the load's cost, not the read's.
    """
    await pg_execute(url, "VACUUM (ANALYZE)")
    await pg_execute(url, "CHECKPOINT")


class Databases:
    """Fresh databases on one PostgreSQL server, named ``<prefix>_<tag>``; drop_all drops them."""

    def __init__(self, server_url: str, tag: str) -> None:
        self.server_url, self.tag = server_url, tag
        self.created: list[str] = []

    async def create(self, prefix: str) -> str:
        """Create ``<prefix>_<tag>`` and return its URL."""
        name = f"{prefix}_{self.tag}"
        await pg_admin(self.server_url, f'CREATE DATABASE "{name}"')
        self.created.append(name)
        OUR_DATABASES.add(name)
        return f"{self.server_url}/{name}"

    async def drop(self, name: str) -> list[str]:
        """Drop one database created here (before the run ends); the error, if any."""
        if name not in self.created:
            return [f"{name} was not created by this run: not dropped"]
        self.created.remove(name)
        try:
            await pg_admin(self.server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        except Exception as exc:
            self.created.append(name)  # drop_all tries again at the end
            return [f"could not drop {name}: {exc}"]
        return []

    async def drop_all(self) -> list[str]:
        """Drop every database created here; the errors, one line each (cleaning goes on)."""
        errors = []
        for name in self.created:
            try:
                await pg_admin(self.server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            except Exception as exc:  # report, keep cleaning
                errors.append(f"could not drop {name}: {exc}")
        self.created = []
        return errors
