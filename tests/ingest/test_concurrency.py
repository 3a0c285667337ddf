"""Concurrent writers on PostgreSQL (DESIGN §5, §8): no doubled alert, no lost
transition, no deadlock. SQLite serialises writers (BEGIN IMMEDIATE), so these
run on PostgreSQL only.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text

from app.db.dialect import lock_key, lock_keys
from tests.conftest import BACKENDS
from tests.support import (
    all_alerts,
    assert_alert_chain,
    build_store,
    orders,
    quality_refunds,
    store_tiers,
    withdrawals,
)

_, POSTGRES = BACKENDS
pytestmark = [
    pytest.mark.parametrize("database_url", [POSTGRES], indirect=True),
    # Separate transactions are what several API processes run; group commit merges
    # the requests one process holds at once (app/ingest/group_commit.py).
    pytest.mark.parametrize(
        "ingest_group_max_events", [0, 1000], ids=["separate-transactions", "group-commit"]
    ),
]


async def post_concurrently(client: httpx.AsyncClient, batches: list[list[dict[str, Any]]]) -> None:
    responses = await asyncio.gather(
        *(client.post("/v1/events", json={"events": batch}) for batch in batches)
    )
    for response in responses:
        assert response.status_code == 200, response.text
        assert response.json()["rejected"] == 0, response.text


async def assert_store_alerts_consistent(client: httpx.AsyncClient, store: str) -> None:
    """Every store-scope tier's alert history is a chain ending in the state of /metrics."""
    current = {name: t["state"] for name, t in (await store_tiers(client, store)).items()}
    history: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for alert in reversed(await all_alerts(client, store_id=store)):
        if alert["product_id"] is None:
            history[alert["tier"]].append(alert)
    for tier, state in current.items():
        assert_alert_chain(history.get(tier, []), state, (store, None, tier))


@pytest.mark.parametrize("round_", range(3))
async def test_concurrent_batches_crossing_the_line_write_one_breach_alert(
    client: httpx.AsyncClient, round_: int
) -> None:
    # 100 orders, 3 quality refunds: ok. Eight concurrent batches bring one refund each:
    # 11 in 100 breaches demotion (≥ 5, ≥ 1) and the listing ban (≥ 10, ≥ 2).
    store = f"race-{round_}"
    await build_store(client, store, 100, 3, products=20)

    await post_concurrently(client, [quality_refunds(store, [i]) for i in range(3, 11)])

    tiers = await store_tiers(client, store)
    assert {name: t["state"] for name, t in tiers.items()} == {
        "demotion": "breached",
        "listing_ban": "breached",
    }
    for tier in ("demotion", "listing_ban"):
        breached = await all_alerts(client, store_id=store, tier=tier, type="alert.breached")
        assert len(breached) == 1, breached
        assert breached[0]["data"]["figures"]["quality_refunds"] >= 5
    await assert_store_alerts_consistent(client, store)


async def test_concurrent_refunds_and_withdrawals_end_in_the_state_of_the_figures(
    client: httpx.AsyncClient,
) -> None:
    # 100 orders, 6 refunds (breached). Concurrently: 5 withdrawals and 3 new refunds,
    # one per batch, so the count wanders across the line and back: 6 − 5 + 3 = 4.
    await build_store(client, "s1", 100, 6, products=10)
    batches = [withdrawals("s1", [i]) for i in range(5)]
    batches += [quality_refunds("s1", [i]) for i in range(6, 9)]

    await post_concurrently(client, batches)

    body = (await client.get("/v1/stores/s1/metrics")).json()
    assert body["quality_refunds"] == 4
    assert {t["tier"]: t["state"] for t in body["tiers"]}["demotion"] == "approaching"
    await assert_store_alerts_consistent(client, "s1")


async def test_batches_touching_several_stores_in_any_order_do_not_deadlock(
    client: httpx.AsyncClient,
) -> None:
    stores = ["a", "b", "c"]
    for store in stores:
        await build_store(client, store, 100, 0, products=5)
    # Each batch names the stores in another order, with refunds on several products.
    batches = []
    for k in range(8):
        batch: list[dict[str, Any]] = []
        for store in stores[k % 3 :] + stores[: k % 3]:
            batch += quality_refunds(store, [k])
            batch += orders(store, 1, start=100 + k, products=5)
        batches.append(batch)

    await post_concurrently(client, batches)

    for store in stores:
        body = (await client.get(f"/v1/stores/{store}/metrics")).json()
        assert (body["orders"], body["quality_refunds"]) == (108, 8)
        breached = await all_alerts(client, store_id=store, tier="demotion", type="alert.breached")
        assert len(breached) == 1
        await assert_store_alerts_consistent(client, store)


# --- a policy edit racing an ingest ------------------------------------------------------


# Only this test's database: other databases on the server have their own waiters.
WAITING_ADVISORY_LOCKS = """
SELECT count(*) FROM pg_locks
WHERE locktype = 'advisory' AND NOT granted
  AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
"""


async def wait_for_lock_waiters(app: FastAPI, count: int) -> None:
    """Until ``count`` advisory-lock requests are waiting (no sleeping: each check is a
    round trip, which lets the waiting requests run)."""
    async with app.state.db.engine.connect() as conn:
        for _ in range(5000):
            waiting = (await conn.execute(text(WAITING_ADVISORY_LOCKS))).scalar_one()
            await conn.commit()
            if waiting >= count:
                return
    raise AssertionError(f"never saw {count} waiting lock requests")


async def test_an_ingest_that_waited_for_a_policy_edit_is_judged_by_the_new_lines(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    # 100 orders, 4 refunds: approaching on the default line (≥ 5). The new line (≥ 4)
    # breaches it; one more clean order keeps it breached (4 ≥ 1% × 101).
    await build_store(client, "s1", 100, 4, products=10)
    new_policy = {
        "name": "default",
        "tiers": [{"tier": "demotion", "scope": "store", "rate_threshold": "0.01", "min_count": 4}],
    }

    # Hold the store scope's evaluation lock, so both writers queue behind it: first the
    # policy edit, then an ingest that read the store's policy before the edit committed.
    async with app.state.db.transaction() as session:
        await lock_keys(session, [lock_key("scope", "s1", "")])
        edit = asyncio.create_task(client.put("/v1/policies/1", json=new_policy))
        await wait_for_lock_waiters(app, 1)
        ingest = asyncio.create_task(
            client.post("/v1/events", json={"events": orders("s1", 1, start=100)})
        )
        await wait_for_lock_waiters(app, 2)
    assert (await edit).status_code == 200
    assert (await ingest).status_code == 200

    assert (await store_tiers(client, "s1"))["demotion"]["state"] == "breached"
    alerts = await all_alerts(client, store_id="s1", tier="demotion")
    assert [(a["type"], a["previous_state"]) for a in alerts] == [
        ("alert.breached", "approaching"),
        ("alert.approaching", "ok"),
    ]
    risk = (await client.get("/v1/risk", params={"store_id": "s1"})).json()["items"]
    assert [(i["tier"], i["state"]) for i in risk] == [("demotion", "breached")]


async def test_an_ingest_that_waited_for_a_rebuild_folds_with_the_new_quality_reasons(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    await build_store(client, "s1", 100, 3, products=10)
    counting_damaged = {"name": "default", "quality_reasons": ["quality_issue", "damaged"]}

    # Hold the store lock that a rebuild takes, so both writers queue behind it: first
    # the policy edit (which rebuilds), then a batch with a damaged refund.
    async with app.state.db.transaction() as session:
        await lock_keys(session, [lock_key("store", "s1")])
        edit = asyncio.create_task(client.put("/v1/policies/1", json=counting_damaged))
        await wait_for_lock_waiters(app, 1)
        ingest = asyncio.create_task(
            client.post(
                "/v1/events", json={"events": quality_refunds("s1", [50], reason="damaged")}
            )
        )
        await wait_for_lock_waiters(app, 2)
    assert (await edit).status_code == 200
    assert (await ingest).status_code == 200

    # 3 quality refunds and the damaged one, which counts under the new policy.
    body = (await client.get("/v1/stores/s1/metrics")).json()
    assert body["quality_refunds"] == 4
