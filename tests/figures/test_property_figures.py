"""Honest figures (DESIGN §9): incremental figures equal a recomputation from raw events.

Random, shuffled, duplicated event streams (tests/strategies.py) go through
``POST /v1/events`` in random batch sizes; every store's ``/metrics`` and every
product of ``/products`` must then equal tests/oracle.py, for two as_of days.

The ``client`` fixture (and its database) lives for the whole test function while
Hypothesis runs many examples in it, so each example renames its stores and event
ids with a fresh prefix: examples never see each other's data, and the relative
order of event ids (which breaks ties) is kept.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Awaitable, Callable
from datetime import date
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import insert, select

from app.policies.models import DEFAULT_POLICY_ID, Policy
from tests.conftest import BACKENDS
from tests.oracle import OracleFigures, OraclePolicy, figures, products_with_data
from tests.strategies import event_streams, shuffled_with_duplicates
from tests.support import post_events

SQLITE, POSTGRES = BACKENDS
AS_OF_DAYS = (date(2026, 11, 26), date(2026, 11, 10))
STORES = ("s1", "s2")
FIGURES = ("orders", "quality_refunds", "applied_quality_refunds", "pending_quality_refunds")

# Examples per test, (SQLite, PostgreSQL): modest by default so the suite takes
# seconds; HYPOTHESIS_PROFILE=ci runs four times as many (about 2-3 minutes in all).
_SCALE = 4 if os.environ.get("HYPOTHESIS_PROFILE") == "ci" else 1
DEFAULT_EXAMPLES = (25 * _SCALE, 15 * _SCALE)  # the main property: default policy
VARIANT_EXAMPLES = (12 * _SCALE, 8 * _SCALE)  # latest basis, time-zone change, concurrency


def on_sqlite(test: Callable[..., Awaitable[None]]) -> Any:
    return pytest.mark.parametrize("database_url", [SQLITE], indirect=True)(test)


def on_postgres(test: Callable[..., Awaitable[None]]) -> Any:
    return pytest.mark.parametrize("database_url", [POSTGRES], indirect=True)(test)


# --- one example -----------------------------------------------------------------------


def renamed(events: list[dict[str, Any]], prefix: str) -> list[dict[str, Any]]:
    """The same stream under fresh store and event ids (same relative id order)."""
    return [
        {**e, "event_id": f"{prefix}{e['event_id']}", "store_id": f"{prefix}{e['store_id']}"}
        for e in events
    ]


def as_oracle(body: dict[str, Any]) -> OracleFigures:
    return OracleFigures(**{name: body[name] for name in (*FIGURES, "quality_refund_rate")})


async def send_in_batches(
    client: httpx.AsyncClient,
    stream: list[dict[str, Any]],
    sizes: list[int],
    seen: set[str] | None = None,
) -> None:
    """POST the stream in batches; each first sight of an id is accepted, each resend a
    duplicate, nothing rejected. ``seen``: the ids sent before (updated)."""
    seen = set() if seen is None else seen
    position = 0
    for size in sizes:
        batch = stream[position : position + size]
        position += size
        if not batch:
            break
        body = await post_events(client, batch)
        expected = []
        for event in batch:
            expected.append("duplicate" if event["event_id"] in seen else "accepted")
            seen.add(event["event_id"])
        got = [r["status"] for r in body["results"]]
        assert got == expected, [r for r in body["results"] if r["status"] == "rejected"]
        assert [r["event_id"] for r in body["results"]] == [e["event_id"] for e in batch]
        assert body["rejected"] == 0
    assert position >= len(stream)


async def all_products(
    client: httpx.AsyncClient, store: str, as_of: date, limit: int
) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    params: dict[str, Any] = {"as_of": as_of.isoformat(), "limit": limit}
    while True:
        response = await client.get(f"/v1/stores/{store}/products", params=params)
        assert response.status_code == 200, response.text
        page = response.json()
        items += page["items"]
        if page["next_cursor"] is None:
            return items
        params["cursor"] = page["next_cursor"]


async def assert_matches_oracle(
    client: httpx.AsyncClient,
    events: list[dict[str, Any]],
    stores: list[str],
    *,
    policy: OraclePolicy = OraclePolicy(),
    zones: dict[str, str] | None = None,
    page_size: int = 2,
) -> None:
    """Every store's metrics and products equal the oracle's, on each AS_OF_DAYS day.
    ``zones``: a store's time zone when it is not the default Asia/Shanghai."""
    for store in stores:
        tz = (zones or {}).get(store, "Asia/Shanghai")
        has_events = any(e["store_id"] == store for e in events)
        for as_of in AS_OF_DAYS:
            response = await client.get(
                f"/v1/stores/{store}/metrics", params={"as_of": as_of.isoformat()}
            )
            if not has_events:
                assert response.status_code == 404, response.text
                continue
            assert response.status_code == 200, response.text
            expected = figures(events, store_id=store, as_of=as_of, tz=tz, policy=policy)
            assert as_oracle(response.json()) == expected, (store, as_of)

            products = await all_products(client, store, as_of, page_size)
            got = {p["product_id"]: as_oracle(p) for p in products}
            assert len(got) == len(products), "a product was listed twice"
            assert got == products_with_data(
                events, store_id=store, as_of=as_of, tz=tz, policy=policy
            ), (store, as_of)


def example_of(
    draw: st.DataObject, *, max_resends: int = 10
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[int], list[str]]:
    """(events, shuffled stream with resends, batch sizes, store ids) for one example."""
    prefix = f"{uuid.uuid4().hex[:8]}-"
    events = renamed(draw.draw(event_streams(stores=STORES), label="events"), prefix)
    stream = draw.draw(shuffled_with_duplicates(events, max_resends=max_resends), label="stream")
    sizes = draw.draw(
        st.lists(st.integers(1, 40), min_size=1, max_size=8).map(
            lambda s: [*s, max(1, len(stream))]  # whatever is left goes in a last batch
        ),
        label="batch sizes",
    )
    return events, stream, sizes, [f"{prefix}{s}" for s in STORES]


# --- default policy --------------------------------------------------------------------


async def check_default_policy(client: httpx.AsyncClient, data: st.DataObject) -> None:
    events, stream, sizes, stores = example_of(data)
    await send_in_batches(client, stream, sizes)
    await assert_matches_oracle(client, events, stores)


@on_sqlite
@settings(max_examples=DEFAULT_EXAMPLES[0])
@given(data=st.data())
async def test_figures_equal_a_recomputation_sqlite(
    client: httpx.AsyncClient, data: st.DataObject
) -> None:
    await check_default_policy(client, data)


@on_postgres
@settings(max_examples=DEFAULT_EXAMPLES[1])
@given(data=st.data())
async def test_figures_equal_a_recomputation_postgres(
    client: httpx.AsyncClient, data: st.DataObject
) -> None:
    await check_default_policy(client, data)


# --- reason_basis "latest" -------------------------------------------------------------

LATEST = OraclePolicy(reason_basis="latest")


@pytest.fixture
async def latest_policy_id(app: FastAPI) -> int:
    """A copy of the default policy with reason_basis "latest", inserted directly."""
    table = Policy.__table__
    async with app.state.db.transaction() as session:
        default = (
            (await session.execute(select(table).where(table.c.id == DEFAULT_POLICY_ID)))
            .mappings()
            .one()
        )
        values = {**default, "name": "latest reason", "reason_basis": "latest"}
        del values["id"]
        policy_id: int = (
            await session.execute(insert(table).values(values).returning(table.c.id))
        ).scalar_one()
    assert default["reason_basis"] == "first"
    assert default["window_days"] == LATEST.window_days
    assert frozenset(default["quality_reasons"]) == LATEST.quality_reasons
    return policy_id


async def check_latest_basis(
    client: httpx.AsyncClient, policy_id: int, data: st.DataObject
) -> None:
    """Some batches under the default policy, then the switch to "latest" (a rebuild),
    then the rest folded incrementally under "latest"."""
    events, stream, sizes, stores = example_of(data)
    # Each store exists from the start (an order.shipped of an order never paid adds
    # nothing to any figure), so the switch can happen before any of its real events.
    seeds = [
        {
            "event_id": f"{store}-seed",
            "type": "order.shipped",
            "store_id": store,
            "occurred_at": "2026-11-01T00:00:00Z",
            "order_id": "seed",
        }
        for store in stores
    ]
    events = seeds + events
    split = data.draw(st.integers(0, len(sizes)), label="switch after batch")
    seen: set[str] = set()
    await send_in_batches(client, seeds, [len(seeds)], seen)
    await send_in_batches(client, stream[: sum(sizes[:split])], sizes[:split], seen)
    for store in stores:
        response = await client.patch(f"/v1/stores/{store}", json={"policy_id": policy_id})
        assert response.status_code == 200, response.text
        assert response.json()["policy_id"] == policy_id
    await send_in_batches(client, stream[sum(sizes[:split]) :], sizes[split:] or [1], seen)
    await assert_matches_oracle(client, events, stores, policy=LATEST)


@on_sqlite
@settings(max_examples=VARIANT_EXAMPLES[0])
@given(data=st.data())
async def test_latest_reason_basis_equals_a_recomputation_sqlite(
    client: httpx.AsyncClient, latest_policy_id: int, data: st.DataObject
) -> None:
    await check_latest_basis(client, latest_policy_id, data)


@on_postgres
@settings(max_examples=VARIANT_EXAMPLES[1])
@given(data=st.data())
async def test_latest_reason_basis_equals_a_recomputation_postgres(
    client: httpx.AsyncClient, latest_policy_id: int, data: st.DataObject
) -> None:
    await check_latest_basis(client, latest_policy_id, data)


# --- a time-zone change ----------------------------------------------------------------

NEW_YORK = "America/New_York"


async def check_time_zone_change(client: httpx.AsyncClient, data: st.DataObject) -> None:
    """Some batches in Shanghai, the switch to New York (a rebuild), the rest folded in
    New York: the figures are New York's recomputation. Streams cluster near midnights
    in both zones, so many events change day."""
    events, stream, sizes, stores = example_of(data, max_resends=3)
    split = data.draw(st.integers(1, len(sizes)), label="switch after batch")
    seen: set[str] = set()
    await send_in_batches(client, stream[: sum(sizes[:split])], sizes[:split], seen)
    present = {e["store_id"] for e in stream[: sum(sizes[:split])]}
    for store in sorted(present):
        response = await client.patch(f"/v1/stores/{store}", json={"timezone": NEW_YORK})
        assert response.status_code == 200, response.text
    await send_in_batches(client, stream[sum(sizes[:split]) :], sizes[split:] or [1], seen)
    # A store first seen after the switch stays in the default zone.
    zones = {store: NEW_YORK for store in present}
    await assert_matches_oracle(client, events, stores, zones=zones, page_size=100)


@on_sqlite
@settings(max_examples=VARIANT_EXAMPLES[0])
@given(data=st.data())
async def test_a_time_zone_change_equals_a_recomputation_sqlite(
    client: httpx.AsyncClient, data: st.DataObject
) -> None:
    await check_time_zone_change(client, data)


@on_postgres
@settings(max_examples=VARIANT_EXAMPLES[1])
@given(data=st.data())
async def test_a_time_zone_change_equals_a_recomputation_postgres(
    client: httpx.AsyncClient, data: st.DataObject
) -> None:
    await check_time_zone_change(client, data)


# --- concurrent batches ----------------------------------------------------------------


async def check_concurrent_batches(client: httpx.AsyncClient, data: st.DataObject) -> None:
    """The batches all at once: each event id is accepted exactly once in all, every
    other copy is a duplicate, and the figures are still the recomputation."""
    events, stream, sizes, stores = example_of(data)
    batches: list[list[dict[str, Any]]] = []
    position = 0
    for size in sizes:
        if stream[position : position + size]:
            batches.append(stream[position : position + size])
        position += size
    responses = await asyncio.gather(
        *(client.post("/v1/events", json={"events": batch}) for batch in batches)
    )
    accepted: list[str] = []
    duplicates = 0
    for batch, response in zip(batches, responses, strict=True):
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["rejected"] == 0, body
        assert [r["event_id"] for r in body["results"]] == [e["event_id"] for e in batch]
        accepted += [r["event_id"] for r in body["results"] if r["status"] == "accepted"]
        duplicates += body["duplicates"]
    assert sorted(accepted) == sorted({e["event_id"] for e in events})
    assert duplicates == len(stream) - len(events)
    await assert_matches_oracle(client, events, stores, page_size=100)


@on_sqlite
@settings(max_examples=VARIANT_EXAMPLES[0])
@given(data=st.data())
async def test_concurrent_batches_equal_a_recomputation_sqlite(
    client: httpx.AsyncClient, data: st.DataObject
) -> None:
    await check_concurrent_batches(client, data)


@on_postgres
# Separate transactions, as several API processes run them (SQLite above merges them
# by group commit).
@pytest.mark.parametrize("ingest_group_max_events", [0])
@settings(max_examples=VARIANT_EXAMPLES[1])
@given(data=st.data())
async def test_concurrent_batches_equal_a_recomputation_postgres(
    client: httpx.AsyncClient, data: st.DataObject
) -> None:
    await check_concurrent_batches(client, data)
