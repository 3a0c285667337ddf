"""The migrations are the only way the schema changes (DESIGN §8): they must build
exactly what the models declare, and walk down and up again cleanly."""

from __future__ import annotations

import asyncio
from pathlib import Path

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

import app.models  # noqa: F401  (every table on the metadata)
from app.config import Settings
from app.db.base import Base
from app.db.engine import create_engine
from app.db.migrate import alembic_config, head_revision


async def _inspect(database_url: str) -> tuple[list[object], set[str]]:
    """The difference between the database and the models, and the events table's indexes."""
    engine = create_engine(Settings(database_url=database_url, environment="test"))
    try:
        async with engine.connect() as connection:
            diff = await connection.run_sync(
                lambda sync: list(compare_metadata(MigrationContext.configure(sync), Base.metadata))
            )
            indexes = await connection.run_sync(
                lambda sync: {ix["name"] or "" for ix in inspect(sync).get_indexes("events")}
            )
        return diff, indexes
    finally:
        await engine.dispose()


def test_the_migrated_schema_is_what_the_models_declare(database_url: str) -> None:
    diff, _ = asyncio.run(_inspect(database_url))
    assert diff == []


def test_the_migrations_walk_down_to_nothing_and_up_again(database_url: str) -> None:
    config = alembic_config(database_url)
    command.downgrade(config, "0002")
    _, indexes = asyncio.run(_inspect(database_url))
    assert "ix_events_store_id_occurred_at" in indexes
    command.downgrade(config, "base")
    command.upgrade(config, "head")
    diff, indexes = asyncio.run(_inspect(database_url))
    assert head_revision() == _latest_revision()
    assert "ix_events_store_id_occurred_at" not in indexes
    assert diff == []


def _latest_revision() -> str:
    versions = Path(__file__).resolve().parent.parent / "migrations" / "versions"
    return max(p.name[:4] for p in versions.glob("[0-9][0-9][0-9][0-9]_*.py"))
