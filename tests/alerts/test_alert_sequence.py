"""Alerts in commit order: `seq`, and `GET /v1/alerts?after=` that a poller can rely on.

An alert's id and created_at are taken when it is written; its transaction may
commit later than one that wrote after it. A poller asking for "everything after
the last one I saw" by id or time could then pass over the late one for good.
`seq` is given at commit, under one row lock, so a visible seq n means every
smaller seq is visible too.
"""

from __future__ import annotations

import asyncio
import random
import uuid
from datetime import datetime

import httpx
import pytest
from fastapi import FastAPI

from app.alerts import repository
from app.alerts.models import Alert
from app.db.engine import Database
from tests.conftest import NOW
from tests.support import breach_demotion, get_json


async def _poll_all(client: httpx.AsyncClient, after: int = 0) -> list[dict[str, object]]:
    seen: list[dict[str, object]] = []
    while True:
        page = await get_json(client, "/v1/alerts", after=after, limit=2)
        seen += page["items"]
        if not page["items"]:
            return seen
        after = page["items"][-1]["seq"]


async def test_alerts_are_numbered_in_commit_order_and_read_oldest_first_after_a_seq(
    client: httpx.AsyncClient,
) -> None:
    for store in ("s1", "s2", "s3"):
        await breach_demotion(client, store)
    newest_first = (await get_json(client, "/v1/alerts"))["items"]
    seqs = [a["seq"] for a in newest_first]
    assert seqs == sorted(seqs, reverse=True) and len(set(seqs)) == len(seqs) == 3
    polled = await _poll_all(client)
    assert [a["alert_id"] for a in polled] == [a["alert_id"] for a in reversed(newest_first)]
    later = await get_json(client, "/v1/alerts", after=polled[0]["seq"])
    assert [a["seq"] for a in later["items"]] == [a["seq"] for a in polled[1:]]
    # The filters still apply.
    only_s2 = await get_json(client, "/v1/alerts", after=0, store_id="s2")
    assert [a["store_id"] for a in only_s2["items"]] == ["s2"]


async def test_paging_after_a_seq_with_the_cursor(client: httpx.AsyncClient) -> None:
    for store in ("s1", "s2", "s3"):
        await breach_demotion(client, store)
    first = await get_json(client, "/v1/alerts", after=0, limit=2)
    second = await get_json(client, "/v1/alerts", after=0, limit=2, cursor=first["next_cursor"])
    seqs = [a["seq"] for a in first["items"] + second["items"]]
    assert seqs == sorted(seqs) and len(seqs) == 3 and second["next_cursor"] is None


def _alert(store_id: str, now: datetime) -> Alert:
    return Alert(
        alert_id=str(uuid.uuid4()),
        type="alert.breached",
        store_id=store_id,
        product_id=None,
        tier="demotion",
        state="breached",
        previous_state="ok",
        silenced=False,
        created_at=now,
        payload={},
    )


async def test_a_poller_never_skips_an_alert_that_commits_late(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    db: Database = app.state.db
    if db.dialect != "postgresql":
        pytest.skip("SQLite runs one writer at a time: commits cannot overtake each other")
    rng = random.Random(7)
    writers = 40

    async def write(n: int) -> int:
        async with db.transaction() as session:
            alert = _alert(f"w{n}", NOW)
            await repository.insert_alerts(session, [alert])
            # Written now, committed later: later writers commit before this one.
            await asyncio.sleep(rng.uniform(0, 0.05))
            return alert.id

    seen: list[dict[str, object]] = []
    done = asyncio.Event()

    async def poll() -> None:
        after = 0
        while True:
            finished = done.is_set()
            page = await get_json(client, "/v1/alerts", after=after, limit=500)
            seen.extend(page["items"])
            if page["items"]:
                after = page["items"][-1]["seq"]
            elif finished:
                return
            await asyncio.sleep(0.002)

    poller = asyncio.create_task(poll())
    ids = await asyncio.gather(*(write(n) for n in range(writers)))
    done.set()
    await poller

    committed = await get_json(client, "/v1/alerts", limit=500)
    assert len(committed["items"]) == writers
    assert sorted(a["alert_id"] for a in seen) == sorted(a["alert_id"] for a in committed["items"])
    seqs = [a["seq"] for a in seen]
    assert seqs == list(range(1, writers + 1))
    # The race happened: commits overtook each other, so reading "after the last id"
    # would have skipped some of these.
    commit_order = [a["store_id"] for a in sorted(committed["items"], key=lambda a: a["seq"])]
    id_order = [f"w{n}" for n in sorted(range(writers), key=lambda n: ids[n])]
    assert commit_order != id_order, "every commit came in id order: the race was not exercised"
