"""PostgreSQL behind a transaction pooler: refused unless configured, and working when it is.

The PgBouncer half runs under scripts/pgbouncer_suite.py (it sets
REFUNDWATCH_TEST_PGBOUNCER_URL and REFUNDWATCH_DB_PGBOUNCER=true); on a direct
PostgreSQL the same tests check that nothing is refused and the job lock holds.
"""

from __future__ import annotations

import asyncio

import pytest

from app.clock import FrozenClock
from app.config import Settings
from app.db.engine import Database, PoolingRefused, create_engine, transaction_pooled
from app.main import create_app
from app.worker.jobs import singleton
from tests.conftest import BACKENDS, PGBOUNCER_URL

postgres_only = pytest.mark.parametrize("database_url", BACKENDS[1:], indirect=True)
behind_pgbouncer = pytest.mark.skipif(
    not PGBOUNCER_URL, reason="needs REFUNDWATCH_TEST_PGBOUNCER_URL (scripts/pgbouncer_suite.py)"
)


@postgres_only
async def test_the_pool_is_judged_for_what_it_is(app_settings: Settings) -> None:
    engine = create_engine(app_settings.model_copy(update={"db_pgbouncer": False}))
    try:
        assert await transaction_pooled(engine) is bool(PGBOUNCER_URL)
    finally:
        await engine.dispose()


@behind_pgbouncer
@postgres_only
async def test_a_transaction_pooler_is_refused_at_start_naming_the_setting(
    app_settings: Settings, clock: FrozenClock
) -> None:
    unaware = create_app(app_settings.model_copy(update={"db_pgbouncer": False}), clock=clock)
    with pytest.raises(PoolingRefused, match="REFUNDWATCH_DB_PGBOUNCER=true"):
        async with unaware.router.lifespan_context(unaware):
            pass


@postgres_only
async def test_a_periodic_job_runs_once_across_replicas(app_settings: Settings) -> None:
    first, second = (Database(create_engine(app_settings)) for _ in range(2))
    try:
        async with singleton(first, "a-job") as mine:
            assert mine
            async with singleton(second, "a-job") as theirs:
                assert not theirs  # held by the first, whichever server connection it got
            await asyncio.sleep(0)
        async with singleton(second, "a-job") as theirs:
            assert theirs  # released with the first's transaction
    finally:
        await first.dispose()
        await second.dispose()
