"""Fixtures of the console's tests: the browser plumbing, and a cookie-keeping browser client.

``console`` talks to the same app as ``client`` (the API, with the admin key) but carries no
key: like a browser, it has only the cookies the console sets.
"""

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from app.clock import FrozenClock
from app.config import Settings
from app.webhooks.relay import Relay
from tests.conftest import ADMIN_KEY
from tests.console.browser import chromium as chromium
from tests.console.browser import live_server as live_server


@pytest.fixture
def app_settings(database_url: str, ingest_group_max_events: int, tmp_path: Path) -> Settings:
    """The suite's settings, with the data folder (uploads, the development key file) kept
    inside the test's own temporary folder."""
    return Settings(
        environment="test",
        database_url=database_url,
        data_dir=tmp_path / "data",
        bootstrap_admin_key=ADMIN_KEY,  # type: ignore[arg-type]
        webhook_allowed_networks="127.0.0.0/8",
        db_pool_size=5,
        ingest_group_max_events=ingest_group_max_events,
    )


@pytest.fixture
async def console(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://test"
    ) as browser:
        yield browser


@pytest.fixture
def relay(app: FastAPI, clock: FrozenClock) -> Relay:
    """The relay on the app's database and settings; the test calls ``run_once``."""
    return Relay(app.state.db, app.state.settings, clock)
