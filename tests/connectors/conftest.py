"""The connector tests' world: the loopback fake gateway, an app on it, the service, a syncer.

The fake and the service share one frozen clock; the sync's waits (rate limiter,
backoff) advance it instead of sleeping.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from app.clock import FrozenClock
from app.config import Settings
from app.connectors.pdd.sync import Syncer
from app.main import create_app
from tests.conftest import ADMIN_KEY
from tests.fakes.pdd_gateway import FakePddGateway, running_fake_gateway

SECRET = "app-secret-of-the-fake-0123456789"
TOKEN = "store-token-abcdef0123456789"


@pytest.fixture
async def fake(clock: FrozenClock) -> AsyncIterator[FakePddGateway]:
    async with running_fake_gateway(clock) as gateway:
        gateway.add_app("app-1", SECRET)
        yield gateway


@pytest.fixture
def connector_settings(app_settings: Settings, fake: FakePddGateway, tmp_path: Path) -> Settings:
    return app_settings.model_copy(
        update={
            "pdd_gateway_url": fake.url,
            "pdd_calls_per_minute": 100_000,
            "data_dir": tmp_path / "data",
        }
    )


@pytest.fixture
async def connector_app(connector_settings: Settings, clock: FrozenClock) -> AsyncIterator[FastAPI]:
    application = create_app(connector_settings, clock=clock)
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
async def api(connector_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=connector_app),
        base_url="http://test",
        headers={"Authorization": f"Bearer {ADMIN_KEY}"},
    ) as client:
        yield client


@pytest.fixture
async def syncer(
    connector_app: FastAPI, connector_settings: Settings, clock: FrozenClock
) -> AsyncIterator[Syncer]:
    async def advance(seconds: float) -> None:
        clock.advance(timedelta(seconds=seconds))

    running = Syncer(connector_app.state.db, connector_settings, clock, sleep=advance)
    yield running
    await running.close()
