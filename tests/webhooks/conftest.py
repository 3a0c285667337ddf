"""Fixtures for webhook integration tests: a loopback receiver and a hand-driven relay."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from fastapi import FastAPI

from app.clock import FrozenClock
from app.webhooks.relay import Relay
from tests.fakes.receiver import Receiver, running_receiver


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    async with running_receiver() as running:
        yield running


@pytest.fixture
def relay(app: FastAPI, clock: FrozenClock) -> Relay:
    """The relay on the app's database and settings; the test calls ``run_once``."""
    return Relay(app.state.db, app.state.settings, clock)
