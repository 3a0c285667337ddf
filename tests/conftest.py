"""Fixtures: a migrated database per test (SQLite always, PostgreSQL when configured).

The schema is built by the Alembic migrations once per backend into a template;
each test gets a fresh copy (a file copy on SQLite, CREATE DATABASE … TEMPLATE
on PostgreSQL), so tests never see each other's rows.

PostgreSQL tests run when REFUNDWATCH_TEST_POSTGRES_URL is set (e.g.
postgresql://postgres@127.0.0.1:5432/postgres); otherwise they skip, saying so.
With REFUNDWATCH_TEST_PGBOUNCER_URL too (scripts/pgbouncer_suite.py sets it), the
service under test reaches each test database through that PgBouncer, while
databases are created and dropped on PostgreSQL directly.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from hypothesis import HealthCheck, settings

from app.clock import FrozenClock
from app.config import Settings
from app.db.migrate import upgrade_to_head
from app.main import create_app

settings.register_profile(
    "default", deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
settings.register_profile(
    "ci", deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))

ADMIN_KEY = "rw_test_admin_key_0123456789abcdef"
NOW = datetime(2026, 11, 26, 4, 0, tzinfo=UTC)  # 12:00 in Shanghai
POSTGRES_URL = os.environ.get("REFUNDWATCH_TEST_POSTGRES_URL")
PGBOUNCER_URL = os.environ.get("REFUNDWATCH_TEST_PGBOUNCER_URL")

BACKENDS = [
    "sqlite",
    pytest.param(
        "postgres",
        marks=[
            pytest.mark.postgres,
            pytest.mark.skipif(
                not POSTGRES_URL,
                reason="PostgreSQL tests need REFUNDWATCH_TEST_POSTGRES_URL "
                "(e.g. postgresql://postgres@127.0.0.1:5432/postgres)",
            ),
        ],
    ),
]


def _pg_admin_url() -> str:
    assert POSTGRES_URL
    return POSTGRES_URL


def _with_database(url: str, name: str) -> str:
    base, _, _ = url.rpartition("/")
    return f"{base}/{name}"


async def _pg_execute(sql: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(_pg_admin_url().replace("postgresql+asyncpg://", "postgresql://"))
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "template.db"
    upgrade_to_head(f"sqlite:///{path}")
    return path


@pytest.fixture(scope="session")
def postgres_template() -> Iterator[str]:
    name = f"rw_template_{uuid.uuid4().hex[:10]}"
    asyncio.run(_pg_execute(f'CREATE DATABASE "{name}"'))
    try:
        upgrade_to_head(_with_database(_pg_admin_url(), name))
        yield name
    finally:
        asyncio.run(_pg_execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        template: Path = request.getfixturevalue("sqlite_template")
        path = tmp_path / "test.db"
        shutil.copyfile(template, path)
        yield f"sqlite:///{path}"
        return
    template_name: str = request.getfixturevalue("postgres_template")
    name = f"rw_test_{uuid.uuid4().hex[:12]}"
    asyncio.run(_pg_execute(f'CREATE DATABASE "{name}" TEMPLATE "{template_name}"'))
    try:
        yield _with_database(PGBOUNCER_URL or _pg_admin_url(), name)
    finally:
        asyncio.run(_pg_execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(NOW)


@pytest.fixture
def ingest_group_max_events() -> int:
    """Group commit as shipped; parametrize this name to change it for a test."""
    return Settings.model_fields["ingest_group_max_events"].default  # type: ignore[no-any-return]


@pytest.fixture
def app_settings(database_url: str, ingest_group_max_events: int) -> Settings:
    return Settings(
        environment="test",
        database_url=database_url,
        bootstrap_admin_key=ADMIN_KEY,  # type: ignore[arg-type]
        webhook_allowed_networks="127.0.0.0/8",
        db_pool_size=5,
        ingest_group_max_events=ingest_group_max_events,
    )


@pytest.fixture
async def app(app_settings: Settings, clock: FrozenClock) -> AsyncIterator[FastAPI]:
    application = create_app(app_settings, clock=clock)
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url="http://test",
        headers={"Authorization": f"Bearer {ADMIN_KEY}"},
    ) as http:
        yield http
