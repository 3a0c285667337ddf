"""The prologue of every per-store route, declared once: the store (or 404) and its day."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Annotated

from fastapi import Depends, Path, Query

from app.api.deps import ClockDep, ReadSessionDep
from app.api.params import STORE_ID, Day
from app.stores.rules import StoreContext
from app.stores.service import require_store

StoreIdPath = Annotated[
    str,
    Path(
        description="The store's id (1–64 of A-Za-z0-9._:-, as its events carry it)",
        examples=["s1"],
        min_length=1,
        max_length=64,
        pattern=STORE_ID,
    ),
]
AsOfQuery = Annotated[
    Day | None,
    Query(
        description="The window's last day (YYYY-MM-DD, 1970–2099); default today in the "
        "store's time zone",
        examples=["2026-11-26"],
    ),
]


@dataclass(frozen=True, slots=True)
class StoreDay:
    """A store and the day its figures are read for."""

    ctx: StoreContext
    as_of: date

    @property
    def store_id(self) -> str:
        return self.ctx.store_id

    @property
    def window(self) -> tuple[date, date]:
        return self.ctx.window(self.as_of)


async def store_context(store_id: StoreIdPath, session: ReadSessionDep) -> StoreContext:
    return await require_store(session, store_id)


StoreDep = Annotated[StoreContext, Depends(store_context)]


async def store_day(ctx: StoreDep, clock: ClockDep, as_of: AsOfQuery = None) -> StoreDay:
    return StoreDay(ctx, as_of or ctx.today(clock.now()))


StoreDayDep = Annotated[StoreDay, Depends(store_day)]
