"""Dependencies declared once: the database, the clock, settings, a read session.

All are ``async def``: FastAPI runs a plain ``def`` dependency in a worker thread,
a hop that costs more than these lookups themselves.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

from app.clock import Clock
from app.config import Settings
from app.db.engine import Database


async def get_db(request: Request) -> Database:
    db: Database = request.app.state.db
    return db


async def get_clock(request: Request) -> Clock:
    clock: Clock = request.app.state.clock
    return clock


async def get_app_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


DatabaseDep = Annotated[Database, Depends(get_db)]
ClockDep = Annotated[Clock, Depends(get_clock)]
SettingsDep = Annotated[Settings, Depends(get_app_settings)]


async def read_session(db: DatabaseDep) -> AsyncIterator[AsyncSession]:
    """A session for reads; writes open ``db.transaction()`` explicitly in the route."""
    async with db.read() as session:
        yield session


ReadSessionDep = Annotated[AsyncSession, Depends(read_session)]
