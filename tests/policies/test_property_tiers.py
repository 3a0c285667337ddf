"""Tier states and alerts on random streams (DESIGN §4–5, §9).

Random, shuffled, duplicated event streams (tests/strategies.py) go through
``POST /v1/events`` in random batches, under the default policy or a randomly
drawn one. Then, for every store and product scope:

- each tier's ``state``, ``refunds_until_breach`` and ``orders_to_recover`` in
  ``/metrics`` and ``/products`` equal an independent implementation of DESIGN §4
  written below (exact ``Fraction`` arithmetic, brute-force searches for the
  headroom, nothing imported from ``app``), fed with the figures of tests/oracle.py;
- the alert history of each (scope, tier) in ``/v1/alerts`` is a consistent chain
  of state changes ending in the current state: the latest alert's state is the
  current one when that is approaching or breached, and when it is ok there is
  either no alert or the latest is ``alert.resolved``.

The ``client`` database lives for the whole test while Hypothesis runs many
examples in it, so each example uses fresh store and event ids.
"""

from __future__ import annotations

import os
import uuid
from collections import defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import date
from fractions import Fraction
from typing import Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.conftest import BACKENDS
from tests.oracle import OracleFigures, OraclePolicy, figures, products_with_data
from tests.strategies import event_streams, shuffled_with_duplicates
from tests.support import AT_RISK, all_alerts, assert_alert_chain, get_json, post_events

SQLITE, POSTGRES = BACKENDS
TODAY = date(2026, 11, 26)  # the frozen clock's day in Asia/Shanghai
STORES = ("s1", "s2")

_CI = os.environ.get("HYPOTHESIS_PROFILE") == "ci"
SQLITE_EXAMPLES = 80 if _CI else 20
POSTGRES_EXAMPLES = 30 if _CI else 15


def on_sqlite(test: Callable[..., Awaitable[None]]) -> Any:
    return pytest.mark.parametrize("database_url", [SQLITE], indirect=True)(test)


def on_postgres(test: Callable[..., Awaitable[None]]) -> Any:
    return pytest.mark.parametrize("database_url", [POSTGRES], indirect=True)(test)


# --- DESIGN §4, written independently ---------------------------------------------------


@dataclass(frozen=True)
class Line:
    tier: str
    scope: str
    rate: Fraction
    min_count: int


@dataclass(frozen=True)
class Warn:
    ratio: Fraction
    headroom: int
    min_orders: int


@dataclass(frozen=True)
class Expected:
    state: str
    refunds_until_breach: int | None
    orders_to_recover: int | None


def breaches(orders: int, count: int, line: Line) -> bool:
    """``count ≥ min_count`` and ``rate ≥ rate_threshold``, compared exactly as
    ``count ≥ rate_threshold × orders`` (DESIGN §4)."""
    return count >= line.min_count and count >= line.rate * orders


def expected_tier(orders: int, count: int, line: Line, warn: Warn) -> Expected:
    # refunds_until_breach: the fewest k ≥ 0 with breaches(orders, count + k), by search;
    # null when there are no orders.
    until: int | None = None
    if orders > 0:
        until = 0
        while not breaches(orders, count + until, line):
            until += 1
    breached = breaches(orders, count, line)
    if orders < warn.min_orders:
        state = "unrated"
    elif breached:
        state = "breached"
    elif (until is not None and until <= warn.headroom) or (
        count >= warn.ratio * line.min_count and count >= warn.ratio * line.rate * orders
    ):
        state = "approaching"
    else:
        state = "ok"
    # orders_to_recover: the fewest m ≥ 1 clean orders after which the line no longer holds.
    recover: int | None = None
    if state == "breached":
        recover = 1
        while breaches(orders + recover, count, line):
            recover += 1
    return Expected(state, until, recover)


# --- policies ---------------------------------------------------------------------------


@dataclass(frozen=True)
class DrawnPolicy:
    body: dict[str, Any] | None  # None: the default policy
    lines: tuple[Line, ...]
    warn: Warn
    window_days: int

    @property
    def oracle(self) -> OraclePolicy:
        return OraclePolicy(window_days=self.window_days)


DEFAULT = DrawnPolicy(
    body=None,
    lines=(
        Line("demotion", "store", Fraction(1, 100), 5),
        Line("listing_ban", "store", Fraction(2, 100), 10),
        Line("delisting", "product", Fraction(3, 100), 5),
    ),
    warn=Warn(Fraction(8, 10), 1, 0),
    window_days=30,
)

RATES = ("0.05", "0.1", "0.125", "0.2", "0.25", "0.3333", "0.5", "1")  # low lines: risk happens


@st.composite
def tier_lines(draw: st.DrawFn) -> list[dict[str, Any]]:
    names = draw(
        st.lists(
            st.sampled_from(
                (("demotion", "store"), ("listing_ban", "store"), ("delisting", "product"))
            ),
            min_size=1,
            unique=True,
        )
    )
    return [
        {
            "tier": tier,
            "scope": scope,
            "rate_threshold": draw(st.sampled_from(RATES)),
            "min_count": draw(st.integers(1, 3)),
        }
        for tier, scope in names
    ]


@st.composite
def policies(draw: st.DrawFn) -> DrawnPolicy:
    if draw(st.integers(0, 4)) == 0:
        return DEFAULT
    body: dict[str, Any] = {
        "name": f"drawn-{uuid.uuid4().hex[:10]}",
        "window_days": draw(st.sampled_from((30, 30, 7))),
        "warn_ratio": draw(st.sampled_from(("0.5", "0.8", "0.9"))),
        "warn_headroom": draw(st.integers(0, 2)),
        "min_orders": draw(st.sampled_from((0, 0, 0, 2, 4))),
        "tiers": draw(tier_lines()),
    }
    return DrawnPolicy(
        body=body,
        lines=tuple(
            Line(t["tier"], t["scope"], Fraction(t["rate_threshold"]), t["min_count"])
            for t in body["tiers"]
        ),
        warn=Warn(Fraction(body["warn_ratio"]), body["warn_headroom"], body["min_orders"]),
        window_days=body["window_days"],
    )


# --- one example ------------------------------------------------------------------------


def renamed(events: list[dict[str, Any]], prefix: str) -> list[dict[str, Any]]:
    """Fresh store and event ids for this example (the relative id order is kept)."""
    return [
        {**e, "event_id": f"{prefix}{e['event_id']}", "store_id": f"{prefix}{e['store_id']}"}
        for e in events
    ]


def seeds(stores: list[str]) -> list[dict[str, Any]]:
    """An order.shipped of an order never paid: creates the store, adds to no figure."""
    return [
        {
            "event_id": f"{store}-seed",
            "type": "order.shipped",
            "store_id": store,
            "occurred_at": "2026-11-01T00:00:00Z",
            "order_id": "seed",
        }
        for store in stores
    ]


async def apply_policy(client: httpx.AsyncClient, policy: DrawnPolicy, stores: list[str]) -> None:
    if policy.body is None:
        return
    response = await client.post("/v1/policies", json=policy.body)
    assert response.status_code == 201, response.text
    policy_id = response.json()["id"]
    for store in stores:
        response = await client.patch(f"/v1/stores/{store}", json={"policy_id": policy_id})
        assert response.status_code == 200, response.text


async def send(client: httpx.AsyncClient, stream: list[dict[str, Any]], sizes: list[int]) -> None:
    position = 0
    for size in sizes:
        batch = stream[position : position + size]
        position += size
        if batch:
            assert (await post_events(client, batch))["rejected"] == 0
    assert position >= len(stream)


def expected_of(f: OracleFigures, policy: DrawnPolicy, scope: str) -> dict[str, Expected]:
    return {
        line.tier: expected_tier(f.orders, f.quality_refunds, line, policy.warn)
        for line in policy.lines
        if line.scope == scope
    }


def got_of(tiers: list[dict[str, Any]]) -> dict[str, Expected]:
    return {
        t["tier"]: Expected(t["state"], t["refunds_until_breach"], t["orders_to_recover"])
        for t in tiers
    }


async def product_items(client: httpx.AsyncClient, store: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    params: dict[str, Any] = {"limit": 100}
    while True:
        page = await get_json(client, f"/v1/stores/{store}/products", **params)
        items += page["items"]
        if page["next_cursor"] is None:
            return items
        params["cursor"] = page["next_cursor"]


async def check_store(
    client: httpx.AsyncClient, events: list[dict[str, Any]], store: str, policy: DrawnPolicy
) -> None:
    oracle_policy = policy.oracle
    current: dict[tuple[str | None, str], str] = {}

    # The store scope.
    body = await get_json(client, f"/v1/stores/{store}/metrics")
    assert body["as_of"] == TODAY.isoformat()
    store_figures = figures(events, store_id=store, as_of=TODAY, policy=oracle_policy)
    assert (body["orders"], body["quality_refunds"]) == (
        store_figures.orders,
        store_figures.quality_refunds,
    )
    expected = expected_of(store_figures, policy, "store")
    assert got_of(body["tiers"]) == expected, (store, store_figures)
    current.update({(None, tier): e.state for tier, e in expected.items()})

    # Every product scope with data in the window.
    with_data = products_with_data(events, store_id=store, as_of=TODAY, policy=oracle_policy)
    items = await product_items(client, store)
    assert sorted(i["product_id"] for i in items) == sorted(with_data)
    for item in items:
        expected = expected_of(with_data[item["product_id"]], policy, "product")
        assert got_of(item["tiers"]) == expected, (store, item["product_id"])
        current.update({(item["product_id"], tier): e.state for tier, e in expected.items()})

    # The alerts: one chain per (scope, tier), ending in the state above.
    history: dict[tuple[str | None, str], list[dict[str, Any]]] = defaultdict(list)
    for alert in reversed(await all_alerts(client, store_id=store)):
        history[(alert["product_id"], alert["tier"])].append(alert)
    for key, alerts in history.items():
        product_id, tier = key
        if key not in current:
            # A product with nothing left in the window (or a tier the policy no
            # longer has): its figures are all zero.
            zero = figures(
                events,
                store_id=store,
                as_of=TODAY,
                policy=oracle_policy,
                product_id=product_id,
            )
            assert product_id is not None and zero.orders == zero.quality_refunds == 0
            scoped = expected_of(zero, policy, "product")
            current[key] = scoped[tier].state
        assert_alert_chain(alerts, current[key], (store, product_id, tier))
    for key, state in current.items():
        if key not in history:
            assert state not in AT_RISK, (store, key, state)


async def check_example(client: httpx.AsyncClient, data: st.DataObject) -> None:
    prefix = f"{uuid.uuid4().hex[:8]}-"
    events = renamed(data.draw(event_streams(stores=STORES, max_orders=10), label="events"), prefix)
    stores = [f"{prefix}{s}" for s in STORES]
    stream = data.draw(shuffled_with_duplicates(events), label="stream")
    sizes = data.draw(
        st.lists(st.integers(1, 25), min_size=1, max_size=6).map(lambda s: [*s, len(stream)]),
        label="batch sizes",
    )
    policy = data.draw(policies(), label="policy")

    store_seeds = seeds(stores)
    await post_events(client, store_seeds)
    await apply_policy(client, policy, stores)
    await send(client, stream, sizes)

    for store in stores:
        await check_store(client, store_seeds + events, store, policy)


@on_sqlite
@settings(max_examples=SQLITE_EXAMPLES)
@given(data=st.data())
async def test_tiers_and_alerts_match_an_independent_evaluation_sqlite(
    client: httpx.AsyncClient, data: st.DataObject
) -> None:
    await check_example(client, data)


@on_postgres
@settings(max_examples=POSTGRES_EXAMPLES)
@given(data=st.data())
async def test_tiers_and_alerts_match_an_independent_evaluation_postgres(
    client: httpx.AsyncClient, data: st.DataObject
) -> None:
    await check_example(client, data)


# --- the independent evaluation, checked on DESIGN's own example -------------------------


def test_the_independent_evaluation_reads_design_section_4_as_written() -> None:
    demotion, listing_ban, _ = DEFAULT.lines
    assert expected_tier(400, 5, demotion, DEFAULT.warn) == Expected("breached", 0, 101)
    assert expected_tier(400, 4, demotion, DEFAULT.warn) == Expected("approaching", 1, None)
    assert expected_tier(400, 8, listing_ban, DEFAULT.warn) == Expected("approaching", 2, None)
    assert expected_tier(400, 5, listing_ban, DEFAULT.warn) == Expected("ok", 5, None)
    assert expected_tier(0, 0, demotion, DEFAULT.warn) == Expected("ok", None, None)
    assert expected_tier(3, 0, demotion, Warn(Fraction(8, 10), 1, 4)).state == "unrated"
