"""The bulk road (a file import's: the stores' locks held exclusively) answers as the
ordinary road does, on both databases.

On PostgreSQL a bulk first reads which ids are known and COPYs the rest straight
into ``events``; an id that turns up between the two (another writer) undoes the
COPY and the batch takes the ordinary upsert. Both roads are run here on the
same events, and the second one is forced.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from app.clock import FrozenClock
from app.db import dialect
from app.events import repository
from app.events.validation import validate_batch
from app.ingest import road
from tests.support import paid, post_events

BULK = dialect.COPY_FROM_ROWS + 500  # large enough for the COPY road on PostgreSQL


def _events() -> list[dict[str, Any]]:
    return [paid(f"o{i}", product=f"p{i % 5}", event_id=f"e{i}") for i in range(BULK)]


async def _ingest_bulk(app: FastAPI, clock: FrozenClock, events: list[dict[str, Any]]) -> Any:
    batch = validate_batch(events, now=clock.now(), max_future=timedelta(minutes=5))
    async with app.state.db.transaction() as session:
        outcome = await road.ingest(
            session,
            batch,
            now=clock.now(),
            default_timezone="Asia/Shanghai",
            lock_whole_stores=True,
        )
    return outcome.answer


async def _known_first(client: httpx.AsyncClient, events: list[dict[str, Any]]) -> None:
    """The first 300 events stored already, 10 more with the same id and other content."""
    for start in range(0, 300, 100):
        await post_events(client, events[start : start + 100])
    conflicting = [{**e, "amount": "1.00"} for e in events[300:310]]
    for e in conflicting:
        e["order_id"] = "other-" + e["order_id"]
    await post_events(client, [{**e, "event_id": e["event_id"]} for e in conflicting])


def _statuses(answer: Any) -> list[tuple[str | None, str, str | None]]:
    return [(r.event_id, r.status, r.error.code if r.error else None) for r in answer.results]


@pytest.mark.parametrize("race", [False, True], ids=["pre-checked", "id-arrives-meanwhile"])
async def test_the_bulk_road_answers_and_counts_as_the_ordinary_one(
    app: FastAPI,
    client: httpx.AsyncClient,
    clock: FrozenClock,
    monkeypatch: pytest.MonkeyPatch,
    race: bool,
) -> None:
    postgres = app.state.db.engine.dialect.name == "postgresql"
    if race and not postgres:
        pytest.skip("SQLite takes the upsert always: there is no COPY to undo")
    events = _events()
    await _known_first(client, events)
    copies: list[bool] = []
    real_copy = dialect.copy_new_rows
    real_hashes = repository.stored_hashes
    hidden = [race]

    copied_tables: list[str] = []

    async def spy_copy(*args: Any) -> bool:
        ok = await real_copy(*args)
        if args[1].name == "events":
            copies.append(ok)
        elif ok:
            copied_tables.append(args[1].name)
        return ok

    async def hide_once(session: Any, ids: Any) -> dict[str, bytes]:
        if hidden[0]:  # as if the known ids were written after the pre-check
            hidden[0] = False
            return {}
        return await real_hashes(session, ids)

    monkeypatch.setattr(repository, "copy_new_rows", spy_copy)
    monkeypatch.setattr(repository, "stored_hashes", hide_once)
    answer = await _ingest_bulk(app, clock, events)

    assert (answer.accepted, answer.duplicates, answer.rejected) == (BULK - 310, 300, 10)
    expected = (
        [(f"e{i}", "duplicate", None) for i in range(300)]
        + [(f"e{i}", "rejected", "event_id_conflict") for i in range(300, 310)]
        + [(f"e{i}", "accepted", None) for i in range(310, BULK)]
    )
    assert _statuses(answer) == expected
    if postgres:
        assert copies == [not race]  # the race undid the COPY and took the upsert
        # the orders none of the stored events named are new: copied, not upserted
        assert copied_tables == ["orders"]
    metrics = (await client.get("/v1/stores/s1/metrics")).json()
    assert metrics["orders"] == BULK  # 300 before, 10 conflicting, BULK - 310 now

    again = await _ingest_bulk(app, clock, events)  # everything known: no COPY at all
    assert (again.accepted, again.duplicates, again.rejected) == (0, 300 + BULK - 310, 10)
    assert (await client.get("/v1/stores/s1/metrics")).json() == metrics


async def test_new_states_copied_in_fall_back_to_the_upsert_when_one_exists_after_all(
    app: FastAPI, client: httpx.AsyncClient, clock: FrozenClock
) -> None:
    """Orders not read from the database are copied straight in; should one exist after
    all, the copy is undone (its savepoint) and every row takes the upsert."""
    from app.events.fold import Contribution, OrderState

    events = _events()
    await post_events(client, events[:100])  # orders o0…o99 exist
    keys = [("s1", f"o{i}") for i in range(BULK)]
    orders = {k: OrderState(store_id=k[0], order_id=k[1], amount="9.99") for k in keys}
    nothing = Contribution()
    async with app.state.db.transaction() as session:
        # told that none is stored: on PostgreSQL the copy meets o0 and is undone
        await repository.save_orders(
            session, keys, orders, dict.fromkeys(keys, nothing), stored=set()
        )
    async with app.state.db.read() as session:
        from sqlalchemy import text

        result = await session.execute(text("SELECT order_id, amount FROM orders"))
        rows = {order_id: amount for order_id, amount in result}
    assert len(rows) == BULK and set(rows.values()) == {"9.99"}
