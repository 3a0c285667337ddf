"""The figures over HTTP (DESIGN §3, §7): metrics, products, history, refunds, stores."""

from __future__ import annotations

import asyncio
import base64
from datetime import date, timedelta
from typing import Any

import httpx
import orjson
import pytest
from fastapi import FastAPI
from sqlalchemy import text, update

from app.figures.rebuild import rebuild_store_figures
from app.stores.models import Store
from app.stores.repository import load_context
from tests.conftest import BACKENDS
from tests.oracle import OracleFigures, figures, products_with_data
from tests.support import paid, post_events, refund_event, requested

PROBLEM_JSON = "application/problem+json"
FIGURES = ("orders", "quality_refunds", "applied_quality_refunds", "pending_quality_refunds")
TODAY = date(2026, 11, 26)


def counts(body: dict[str, Any]) -> tuple[int, ...]:
    return tuple(body[name] for name in FIGURES)


def as_oracle(body: dict[str, Any]) -> OracleFigures:
    return OracleFigures(**{name: body[name] for name in (*FIGURES, "quality_refund_rate")})


async def metrics(
    client: httpx.AsyncClient, store: str = "s1", as_of: date | None = None
) -> dict[str, Any]:
    params = {"as_of": as_of.isoformat()} if as_of else {}
    response = await client.get(f"/v1/stores/{store}/metrics", params=params)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def all_products(
    client: httpx.AsyncClient, store: str = "s1", as_of: date | None = None, limit: int = 100
) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    params: dict[str, Any] = {"limit": limit}
    if as_of:
        params["as_of"] = as_of.isoformat()
    for _ in range(1000):
        response = await client.get(f"/v1/stores/{store}/products", params=params)
        assert response.status_code == 200, response.text
        page = response.json()
        assert len(page["items"]) <= limit
        items += page["items"]
        if page["next_cursor"] is None:
            return items
        assert page["items"], "a page before the end must not be empty"
        params["cursor"] = page["next_cursor"]
    raise AssertionError("pagination did not end")


async def refunds(client: httpx.AsyncClient, store: str = "s1", **params: Any) -> dict[str, Any]:
    response = await client.get(f"/v1/stores/{store}/refunds", params=params)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def refund_ids(client: httpx.AsyncClient, **params: Any) -> set[str]:
    return {item["refund_id"] for item in (await refunds(client, **params))["items"]}


def assert_problem(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM_JSON)
    body: dict[str, Any] = response.json()
    assert body["status"] == status and body["code"] == code
    assert body["title"] and body["detail"]
    return body


# --- the metrics shape -----------------------------------------------------------------


async def test_store_metrics_have_the_documented_shape(client: httpx.AsyncClient) -> None:
    await post_events(
        client,
        [paid(f"o{i}") for i in range(4)]
        + [requested("r1", "o1"), requested("r2", "o2"), refund_event("succeeded", "r2")],
    )
    body = await metrics(client)
    assert body["store_id"] == "s1"
    assert body["as_of"] == "2026-11-26"
    assert body["window_days"] == 30
    assert counts(body) == (4, 2, 2, 1)
    assert body["quality_refund_rate"] == "0.500000"
    assert isinstance(body["tiers"], list) and body["tiers"]
    for tier in body["tiers"]:
        assert tier["scope"] == "store"
        assert tier["tier"] in {"demotion", "listing_ban"}
        assert tier["state"] in {"ok", "approaching", "breached", "unrated"}
        assert isinstance(tier["rate_threshold"], str)
        assert isinstance(tier["min_count"], int)
        assert "refunds_until_breach" in tier and "orders_to_recover" in tier
    by_tier = {t["tier"]: t for t in body["tiers"]}
    assert by_tier["demotion"]["rate_threshold"] in {"0.01", "0.010000"}
    assert by_tier["demotion"]["min_count"] == 5
    # 2 of 4: 3 more refunds reach 5 and the rate is far above 1%.
    assert by_tier["demotion"]["refunds_until_breach"] == 3
    assert by_tier["demotion"]["orders_to_recover"] is None


async def test_a_store_with_no_orders_has_no_rate(client: httpx.AsyncClient) -> None:
    await post_events(client, [refund_event("succeeded", "r1")])
    body = await metrics(client)
    assert counts(body) == (0, 0, 0, 0)
    assert body["quality_refund_rate"] is None


@pytest.mark.parametrize(
    "path", ["metrics", "metrics/history", "products", "refunds", ""], ids=lambda p: p or "store"
)
async def test_unknown_store_is_404(client: httpx.AsyncClient, path: str) -> None:
    url = "/v1/stores/nowhere" + (f"/{path}" if path else "")
    body = assert_problem(await client.get(url), 404, "store_not_found")
    assert "nowhere" in body["detail"]


# --- the window ------------------------------------------------------------------------


async def test_as_of_moves_the_window(client: httpx.AsyncClient) -> None:
    # With as_of 11-20 the window is 10-22 … 11-20 (30 days, as_of included).
    await post_events(
        client,
        [
            paid("o-31", at="2026-10-20T12:00:00+08:00"),  # 31 days before: out
            paid("o-30", at="2026-10-21T23:59:59+08:00"),  # 30 days before: just out
            paid("o-29", at="2026-10-22T00:00:00+08:00"),  # 29 days before: first day in
            paid("o-0", at="2026-11-20T23:59:59+08:00"),  # as_of itself: in
            paid("o+1", at="2026-11-21T00:00:00+08:00"),  # after as_of: out
        ],
    )
    body = await metrics(client, as_of=date(2026, 11, 20))
    assert body["as_of"] == "2026-11-20"
    assert body["orders"] == 2
    assert (await metrics(client, as_of=date(2026, 11, 21)))["orders"] == 2  # o-0, o+1
    assert (await metrics(client, as_of=date(2026, 11, 19)))["orders"] == 2  # o-30, o-29
    assert (await metrics(client, as_of=date(2026, 10, 20)))["orders"] == 1
    assert (await metrics(client, as_of=date(2026, 10, 19)))["orders"] == 0
    assert (await metrics(client))["orders"] == 2  # today 11-26: o-0 and o+1
    bad = await client.get("/v1/stores/s1/metrics", params={"as_of": "yesterday"})
    assert_problem(bad, 422, "validation_error")


async def test_days_are_the_store_time_zone_days(client: httpx.AsyncClient) -> None:
    # 2026-11-25T16:30Z is 00:30 on 11-26 in Shanghai: today, not yesterday.
    await post_events(client, [paid("o1", at="2026-11-25T16:30:00Z")])
    assert (await metrics(client, as_of=date(2026, 11, 25)))["orders"] == 0
    assert (await metrics(client, as_of=date(2026, 11, 26)))["orders"] == 1


# --- the refund rules ------------------------------------------------------------------


async def test_succeeded_before_requested_counts_once_requested_arrives(
    client: httpx.AsyncClient,
) -> None:
    await post_events(client, [paid("o1"), refund_event("succeeded", "r1")])
    assert counts(await metrics(client)) == (1, 0, 0, 0)
    assert await refund_ids(client) == set()
    await post_events(client, [requested("r1", "o1")])
    assert counts(await metrics(client)) == (1, 1, 1, 0)
    (item,) = (await refunds(client))["items"]
    assert item["outcome"] == "succeeded" and item["counted"] and not item["pending"]


async def test_withdrawn_refund_leaves_the_count(client: httpx.AsyncClient) -> None:
    await post_events(client, [paid("o1"), requested("r1", "o1")])
    assert counts(await metrics(client)) == (1, 1, 1, 1)
    await post_events(client, [refund_event("withdrawn", "r1")])
    # Still an application by the buyer, no longer counted.
    assert counts(await metrics(client)) == (1, 0, 1, 0)
    assert (await metrics(client))["quality_refund_rate"] == "0.000000"


async def test_rejected_refund_leaves_the_count(client: httpx.AsyncClient) -> None:
    await post_events(client, [paid("o1"), requested("r1", "o1"), refund_event("rejected", "r1")])
    assert counts(await metrics(client)) == (1, 0, 1, 0)


async def test_latest_lifecycle_event_decides_whatever_the_arrival_order(
    client: httpx.AsyncClient,
) -> None:
    # Withdrawn at 15:00, then a later (16:00) approval that arrives first.
    await post_events(
        client,
        [
            paid("o1"),
            refund_event("approved", "r1", at="2026-11-25T16:00:00+08:00"),
            requested("r1", "o1"),
        ],
    )
    await post_events(client, [refund_event("withdrawn", "r1", at="2026-11-25T15:00:00+08:00")])
    assert counts(await metrics(client)) == (1, 1, 1, 1)


async def test_appeal_upheld_excludes_and_a_later_appeal_rejected_restores(
    client: httpx.AsyncClient,
) -> None:
    await post_events(client, [paid("o1"), requested("r1", "o1"), refund_event("succeeded", "r1")])
    assert counts(await metrics(client)) == (1, 1, 1, 0)
    await post_events(client, [refund_event("appeal_upheld", "r1", at="2026-11-25T18:00:00+08:00")])
    assert counts(await metrics(client)) == (1, 0, 1, 0)
    (item,) = (await refunds(client))["items"]
    assert item["appeal"] == "upheld" and not item["counted"]
    assert "appeal" in item["why"]
    await post_events(
        client, [refund_event("appeal_rejected", "r1", at="2026-11-25T20:00:00+08:00")]
    )
    assert counts(await metrics(client)) == (1, 1, 1, 0)
    # An older appeal result arriving late changes nothing: the latest one stands.
    await post_events(client, [refund_event("appeal_upheld", "r1", at="2026-11-25T17:00:00+08:00")])
    assert counts(await metrics(client)) == (1, 1, 1, 0)


async def test_two_quality_refunds_on_one_order_count_once(client: httpx.AsyncClient) -> None:
    await post_events(
        client,
        [
            paid("o1"),
            requested("r1", "o1", at="2026-11-20T10:00:00+08:00"),
            requested("r2", "o1", reason="not_as_described", at="2026-11-24T10:00:00+08:00"),
        ],
    )
    assert counts(await metrics(client)) == (1, 1, 1, 1)
    # The earliest counted one gives the day; withdraw it and the later one takes over.
    await post_events(client, [refund_event("withdrawn", "r1", at="2026-11-21T10:00:00+08:00")])
    assert counts(await metrics(client)) == (1, 1, 1, 1)
    await post_events(client, [refund_event("withdrawn", "r2", at="2026-11-25T10:00:00+08:00")])
    assert counts(await metrics(client)) == (1, 0, 1, 0)


async def test_pending_becomes_zero_once_the_refund_succeeds(client: httpx.AsyncClient) -> None:
    await post_events(
        client,
        [
            paid("o1"),
            requested("r1", "o1"),
            refund_event("approved", "r1"),
            refund_event("return_shipped", "r1", at="2026-11-25T16:00:00+08:00"),
        ],
    )
    assert counts(await metrics(client)) == (1, 1, 1, 1)
    await post_events(client, [refund_event("succeeded", "r1", at="2026-11-25T18:00:00+08:00")])
    assert counts(await metrics(client)) == (1, 1, 1, 0)


async def test_pending_needs_every_counted_refund_of_the_order_open(
    client: httpx.AsyncClient,
) -> None:
    await post_events(
        client,
        [
            paid("o1"),
            requested("r1", "o1", at="2026-11-20T10:00:00+08:00"),
            requested("r2", "o1", at="2026-11-21T10:00:00+08:00"),
            refund_event("succeeded", "r2", at="2026-11-22T10:00:00+08:00"),
        ],
    )
    assert counts(await metrics(client)) == (1, 1, 1, 0)


async def test_reason_changed_does_not_change_quality_under_first_basis(
    client: httpx.AsyncClient,
) -> None:
    await post_events(
        client,
        [
            paid("o1"),
            requested("r1", "o1", reason="quality_issue"),
            paid("o2"),
            requested("r2", "o2", reason="changed_mind"),
        ],
    )
    assert counts(await metrics(client)) == (2, 1, 1, 1)
    await post_events(
        client,
        [
            refund_event("reason_changed", "r1", reason="changed_mind"),
            refund_event("reason_changed", "r2", reason="质量问题"),
        ],
    )
    assert counts(await metrics(client)) == (2, 1, 1, 1)
    items = {i["refund_id"]: i for i in (await refunds(client))["items"]}
    assert items["r1"]["reason"] == "quality_issue" and items["r1"]["quality"]
    assert items["r2"]["reason"] == "changed_mind" and not items["r2"]["quality"]
    # …but an earlier reason_changed is the first reason (an earlier event carries it).
    await post_events(
        client,
        [refund_event("reason_changed", "r2", reason="damaged", at="2026-11-25T11:00:00+08:00")],
    )
    items = {i["refund_id"]: i for i in (await refunds(client))["items"]}
    assert items["r2"]["reason"] == "damaged"


async def test_latest_paid_event_decides_the_order_day_and_product(
    client: httpx.AsyncClient,
) -> None:
    await post_events(
        client,
        [
            paid("o1", product="p1", at="2026-11-20T10:00:00+08:00"),
            paid("o1", product="p2", at="2026-11-22T10:00:00+08:00"),
            requested("r1", "o1"),
        ],
    )
    assert (await metrics(client, as_of=date(2026, 11, 21)))["orders"] == 0
    products = {p["product_id"]: counts(p) for p in await all_products(client)}
    assert products == {"p2": (1, 1, 1, 1)}


# --- products --------------------------------------------------------------------------


def product_story() -> list[dict[str, Any]]:
    """p1 breaches delisting (5/5), p2 is one refund away (4/4), p3 is ok, p4 is clean."""
    events: list[dict[str, Any]] = []
    for product, n_orders, n_refunds in (("p3", 10, 1), ("p1", 5, 5), ("p4", 3, 0), ("p2", 4, 4)):
        for i in range(n_orders):
            events.append(paid(f"{product}-o{i}", product=product))
            if i < n_refunds:
                events.append(requested(f"{product}-r{i}", f"{product}-o{i}"))
    # An order with no product at all counts only at store scope.
    events.append(requested("r-orphan", "o-unpaid"))
    return events


async def test_products_are_listed_worst_first_and_match_a_recomputation(
    client: httpx.AsyncClient,
) -> None:
    events = product_story()
    await post_events(client, events)
    items = await all_products(client)
    assert [p["product_id"] for p in items] == ["p1", "p2", "p3", "p4"]
    delisting = {p["product_id"]: p["tiers"][0] for p in items}
    assert all(len(p["tiers"]) == 1 for p in items)
    assert delisting["p1"]["tier"] == "delisting" and delisting["p1"]["scope"] == "product"
    assert delisting["p1"]["state"] == "breached"
    assert delisting["p2"]["state"] == "approaching"
    assert delisting["p2"]["refunds_until_breach"] == 1
    assert delisting["p3"]["state"] == "ok"
    assert delisting["p4"]["state"] == "ok"

    expected = products_with_data(events, store_id="s1", as_of=TODAY)
    assert {p["product_id"]: as_oracle(p) for p in items} == expected
    store = await metrics(client)
    assert as_oracle(store) == figures(events, store_id="s1", as_of=TODAY)
    assert store["quality_refunds"] == 11  # 10 products' refunds + the orphan


async def test_products_paginate_with_a_cursor(client: httpx.AsyncClient) -> None:
    await post_events(client, product_story())
    whole = await all_products(client)
    walked: list[dict[str, Any]] = []
    cursor: str | None = None
    pages = 0
    while True:
        params: dict[str, Any] = {"limit": 1}
        if cursor:
            params["cursor"] = cursor
        page = (await client.get("/v1/stores/s1/products", params=params)).json()
        pages += 1
        assert len(page["items"]) == 1
        walked += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert pages == 4
    assert walked == whole
    assert await all_products(client, limit=3) == whole
    bad = await client.get("/v1/stores/s1/products", params={"cursor": "!!not-ours!!"})
    assert_problem(bad, 422, "invalid_cursor")


async def test_products_with_nothing_in_the_window_are_left_out(
    client: httpx.AsyncClient,
) -> None:
    await post_events(
        client,
        [paid("o1", product="old", at="2026-09-01T10:00:00+08:00"), paid("o2", product="new")],
    )
    assert [p["product_id"] for p in await all_products(client)] == ["new"]
    old = await all_products(client, as_of=date(2026, 9, 1))
    assert [p["product_id"] for p in old] == ["old"]


# --- history ---------------------------------------------------------------------------


async def test_history_has_one_point_a_day_ending_with_the_metrics_of_that_day(
    client: httpx.AsyncClient,
) -> None:
    events = [
        paid("o1", at="2026-10-25T10:00:00+08:00"),
        paid("o2", at="2026-11-01T10:00:00+08:00"),
        requested("r2", "o2", at="2026-11-02T10:00:00+08:00"),
        paid("o3", at="2026-11-20T10:00:00+08:00"),
        requested("r3", "o3", at="2026-11-21T10:00:00+08:00"),
        refund_event("succeeded", "r3", at="2026-11-22T10:00:00+08:00"),
    ]
    await post_events(client, events)

    response = await client.get(
        "/v1/stores/s1/metrics/history", params={"from": "2026-11-10", "to": "2026-11-26"}
    )
    assert response.status_code == 200, response.text
    history = response.json()
    assert history["store_id"] == "s1" and history["window_days"] == 30
    points = history["points"]
    days = [date.fromisoformat(p["day"]) for p in points]
    assert days == [date(2026, 11, 10) + timedelta(days=i) for i in range(17)]
    for point, day in zip(points, days, strict=True):
        assert as_oracle(point) == figures(events, store_id="s1", as_of=day), day
    for day in (date(2026, 11, 10), date(2026, 11, 23), date(2026, 11, 26)):
        point = points[days.index(day)]
        assert as_oracle(point) == as_oracle(await metrics(client, as_of=day))

    default = (await client.get("/v1/stores/s1/metrics/history")).json()["points"]
    assert len(default) == 30 and default[-1]["day"] == "2026-11-26"
    assert as_oracle(default[-1]) == as_oracle(await metrics(client))

    backwards = await client.get(
        "/v1/stores/s1/metrics/history", params={"from": "2026-11-26", "to": "2026-11-10"}
    )
    assert_problem(backwards, 422, "invalid_range")


# --- refunds ---------------------------------------------------------------------------


def refund_story() -> list[dict[str, Any]]:
    return [
        paid("o1"),
        paid("o2"),
        paid("o3"),
        paid("o4"),
        requested("r1", "o1", at="2026-11-20T10:00:00+08:00"),  # quality, open: counts
        requested("r5", "o1", at="2026-11-22T10:00:00+08:00"),  # quality, open, 2nd on o1
        requested("r2", "o2"),  # quality, withdrawn
        refund_event("withdrawn", "r2"),
        requested("r3", "o3", reason="changed_mind"),  # not quality
        refund_event("succeeded", "r3"),
        requested("r4", "o4", reason="描述不符"),  # quality, succeeded: counts, not pending
        refund_event("succeeded", "r4"),
    ]


async def test_refunds_filter_by_quality_outcome_and_pending(client: httpx.AsyncClient) -> None:
    await post_events(client, refund_story())
    assert counts(await metrics(client)) == (4, 2, 3, 1)
    assert await refund_ids(client) == {"r1", "r2", "r3", "r4", "r5"}
    assert await refund_ids(client, quality="true") == {"r1", "r2", "r4", "r5"}
    assert await refund_ids(client, quality="false") == {"r3"}
    assert await refund_ids(client, outcome="open") == {"r1", "r5"}
    assert await refund_ids(client, outcome="withdrawn") == {"r2"}
    assert await refund_ids(client, outcome="succeeded") == {"r3", "r4"}
    assert await refund_ids(client, pending="true") == {"r1", "r5"}
    assert await refund_ids(client, pending="false") == {"r2", "r3", "r4"}
    assert await refund_ids(client, quality="true", outcome="succeeded") == {"r4"}
    bad = await client.get("/v1/stores/s1/refunds", params={"outcome": "lost"})
    assert bad.status_code == 422


async def test_refunds_say_why_they_count_or_not(client: httpx.AsyncClient) -> None:
    await post_events(client, refund_story())
    items = {i["refund_id"]: i for i in (await refunds(client))["items"]}

    r1 = items["r1"]
    assert (r1["quality"], r1["counted"], r1["counts_for_order"], r1["pending"]) == (
        True,
        True,
        True,
        True,
    )
    assert r1["outcome"] == "open" and r1["order_id"] == "o1" and r1["kind"] == "refund_only"
    assert r1["requested_on"] == "2026-11-20"
    assert r1["why"].startswith("counts")

    r5 = items["r5"]
    assert r5["counted"] and not r5["counts_for_order"]
    assert "earlier" in r5["why"]

    r2 = items["r2"]
    assert r2["quality"] and not r2["counted"] and not r2["counts_for_order"]
    assert r2["outcome"] == "withdrawn" and "withdrawn" in r2["why"]

    r3 = items["r3"]
    assert not r3["quality"] and not r3["counted"] and r3["reason"] == "changed_mind"
    assert "not a quality refund" in r3["why"]

    r4 = items["r4"]
    assert r4["reason"] == "not_as_described"
    assert r4["counted"] and r4["counts_for_order"] and not r4["pending"]
    assert r4["outcome"] == "succeeded"

    # The refunds that put an order in the count are exactly quality_refunds.
    counting = [i for i in items.values() if i["counts_for_order"]]
    assert len(counting) == (await metrics(client))["quality_refunds"]


async def test_refunds_paginate_and_follow_the_window(client: httpx.AsyncClient) -> None:
    await post_events(client, refund_story())
    seen: list[str] = []
    cursor: str | None = None
    while True:
        params: dict[str, Any] = {"limit": 2}
        if cursor:
            params["cursor"] = cursor
        page = await refunds(client, **params)
        seen += [i["refund_id"] for i in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert sorted(seen) == ["r1", "r2", "r3", "r4", "r5"] and len(seen) == 5
    assert seen[:2] == ["r1", "r5"]  # by requested_at
    assert await refund_ids(client, as_of="2026-11-21") == {"r1"}
    assert await refund_ids(client, as_of="2026-11-19") == set()


# --- stores ----------------------------------------------------------------------------

NY = "America/New_York"


def timezone_story() -> list[dict[str, Any]]:
    return [
        # 00:30 on 11-25 in Shanghai is 11:30 on 11-24 in New York.
        paid("o1", product="p1", at="2026-11-25T00:30:00+08:00"),
        requested("r1", "o1", at="2026-11-25T00:40:00+08:00"),
        # 00:30 on 10-26 in Shanghai is still 10-25 in New York (EDT).
        paid("o2", product="p2", at="2026-10-26T00:30:00+08:00"),
        requested("r2", "o2", at="2026-10-26T00:45:00+08:00"),
        # 20:00 on 11-24 in New York is 09:00 on 11-25 in Shanghai.
        paid("o3", product="p1", at="2026-11-24T20:00:00-05:00"),
    ]


async def test_a_new_time_zone_keeps_figures_equal_to_a_recomputation(
    client: httpx.AsyncClient,
) -> None:
    events = timezone_story()
    await post_events(client, events)
    days = [date(2026, 11, 24), date(2026, 11, 25), date(2026, 11, 23), date(2026, 10, 26)]
    for day in days:
        assert as_oracle(await metrics(client, as_of=day)) == figures(
            events, store_id="s1", as_of=day
        ), day
    assert (await metrics(client, as_of=date(2026, 11, 24)))["orders"] == 1  # only o2

    response = await client.patch("/v1/stores/s1", json={"timezone": NY})
    assert response.status_code == 200, response.text
    assert response.json()["timezone"] == NY
    assert (await client.get("/v1/stores/s1")).json()["timezone"] == NY

    for day in days:
        expected = figures(events, store_id="s1", as_of=day, tz=NY)
        assert as_oracle(await metrics(client, as_of=day)) == expected, day
        products = await all_products(client, as_of=day)
        assert {p["product_id"]: as_oracle(p) for p in products} == products_with_data(
            events, store_id="s1", as_of=day, tz=NY
        ), day
    # o1 and o3 moved into 11-24, o2 and r2 out of the window to 10-25.
    assert counts(await metrics(client, as_of=date(2026, 11, 24))) == (2, 1, 1, 1)
    assert counts(await metrics(client, as_of=date(2026, 11, 23))) == (1, 1, 1, 1)
    # "Today" is now New York's: 2026-11-25 23:00 there when Shanghai is at noon on 11-26.
    assert (await metrics(client))["as_of"] == "2026-11-25"

    # New events fold in the new zone too.
    later = [paid("o4", product="p2", at="2026-11-25T00:30:00+08:00")]
    await post_events(client, later)
    events += later
    for day in days:
        expected = figures(events, store_id="s1", as_of=day, tz=NY)
        assert as_oracle(await metrics(client, as_of=day)) == expected, day

    # And back again.
    assert (await client.patch("/v1/stores/s1", json={"timezone": "Asia/Shanghai"})).is_success
    for day in days:
        expected = figures(events, store_id="s1", as_of=day)
        assert as_oracle(await metrics(client, as_of=day)) == expected, day


async def test_unknown_time_zone_is_refused_naming_the_field(client: httpx.AsyncClient) -> None:
    await post_events(client, [paid("o1")])
    response = await client.patch("/v1/stores/s1", json={"timezone": "Mars/Olympus_Mons"})
    body = assert_problem(response, 422, "validation_error")
    fields = [e["field"] for e in body["errors"]]
    assert any(f.endswith("timezone") for f in fields), fields
    assert "Mars/Olympus_Mons" in str(body)
    assert (await client.get("/v1/stores/s1")).json()["timezone"] == "Asia/Shanghai"


async def test_patch_of_an_unknown_store_is_404(client: httpx.AsyncClient) -> None:
    response = await client.patch("/v1/stores/nowhere", json={"name": "x"})
    assert_problem(response, 404, "store_not_found")


async def test_patch_name_only_keeps_the_figures(client: httpx.AsyncClient) -> None:
    await post_events(client, [paid("o1"), requested("r1", "o1")])
    before = await metrics(client)
    response = await client.patch("/v1/stores/s1", json={"name": "旗舰店"})
    assert response.status_code == 200 and response.json()["name"] == "旗舰店"
    assert response.json()["timezone"] == "Asia/Shanghai"
    assert await metrics(client) == before


async def test_stores_are_listed_with_cursor_pagination(client: httpx.AsyncClient) -> None:
    names = ["s3", "s1", "a.b", "s2", "z:9"]
    await post_events(client, [paid("o1", store=name) for name in names])
    walked: list[str] = []
    cursor: str | None = None
    pages = 0
    while True:
        params: dict[str, Any] = {"limit": 2}
        if cursor:
            params["cursor"] = cursor
        response = await client.get("/v1/stores", params=params)
        assert response.status_code == 200, response.text
        page = response.json()
        pages += 1
        walked += [item["store_id"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert pages == 3
    assert walked == sorted(names)
    whole = (await client.get("/v1/stores")).json()
    assert [s["store_id"] for s in whole["items"]] == sorted(names)
    assert whole["next_cursor"] is None
    first = whole["items"][0]
    assert first["timezone"] == "Asia/Shanghai" and first["window_days"] == 30
    assert first["policy_id"] == 1 and first["name"] is None


WAITING_FOR_AN_ADVISORY_LOCK = text(
    "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted "
    "AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
)


@pytest.mark.parametrize("database_url", [BACKENDS[1]], indirect=True)
async def test_events_folded_while_a_time_zone_change_commits_use_the_new_zone(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    """PostgreSQL, two transactions: a batch that arrives while a time-zone rebuild holds
    the store's lock must fold with the zone that rebuild commits, not the one before."""
    first = [paid("o1", at="2026-11-20T10:00:00+08:00")]
    await post_events(client, first)
    late = [paid("o2", product="p2", at="2026-11-25T00:30:00+08:00")]  # 11-24 in New York

    db = app.state.db
    async with db.transaction() as session:
        # What PATCH /v1/stores/s1 does: change the row, rebuild under the exclusive lock.
        await session.execute(update(Store).where(Store.store_id == "s1").values(timezone=NY))
        ctx = await load_context(session, "s1")
        assert ctx is not None and ctx.timezone == NY
        await rebuild_store_figures(session, ctx)

        ingest = asyncio.create_task(client.post("/v1/events", json={"events": late}))
        async with db.engine.connect() as probe:
            for _ in range(500):
                waiting = await probe.scalar(WAITING_FOR_AN_ADVISORY_LOCK)
                if waiting or ingest.done():
                    break
                await asyncio.sleep(0.01)
        assert not ingest.done(), "the batch should wait for the rebuild's lock"
    response = await ingest
    assert response.status_code == 200 and response.json()["accepted"] == 1

    events = first + late
    for day in (date(2026, 11, 24), date(2026, 11, 25)):
        expected = figures(events, store_id="s1", as_of=day, tz=NY)
        assert as_oracle(await metrics(client, as_of=day)) == expected, day
        products = {p["product_id"]: as_oracle(p) for p in await all_products(client, as_of=day)}
        assert products == products_with_data(events, store_id="s1", as_of=day, tz=NY), day


def forged(position: Any) -> str:
    """A well-formed cursor holding a position this API never issues for that list."""
    return base64.urlsafe_b64encode(orjson.dumps(position)).decode().rstrip("=")


@pytest.mark.parametrize(
    ("path", "position"),
    [
        ("/v1/stores", 5),
        ("/v1/stores", {"store_id": "s1"}),
        ("/v1/stores", True),
        ("/v1/stores/s1/products", "p1"),
        ("/v1/stores/s1/products", -1),
        ("/v1/stores/s1/products", [1]),
        ("/v1/stores/s1/refunds", 5),
        ("/v1/stores/s1/refunds", ["not a time", "r1"]),
        ("/v1/stores/s1/refunds", ["2026-11-25T04:00:00+00:00"]),
        ("/v1/stores/s1/refunds", ["2026-11-25T04:00:00", "r1"]),
        ("/v1/stores/s1/refunds", ["2026-11-25T04:00:00+00:00", 7]),
    ],
)
async def test_a_forged_cursor_is_refused_not_a_crash(
    client: httpx.AsyncClient, path: str, position: Any
) -> None:
    await post_events(client, [paid("o1"), requested("r1", "o1")])
    response = await client.get(path, params={"cursor": forged(position)})
    body = assert_problem(response, 422, "invalid_cursor")
    assert body["errors"][0]["field"] == "query.cursor"
    garbled = await client.get(path, params={"cursor": "%%%not base64"})
    assert_problem(garbled, 422, "invalid_cursor")


async def test_a_store_name_with_a_nul_character_is_refused(client: httpx.AsyncClient) -> None:
    await post_events(client, [paid("o1")])
    response = await client.patch("/v1/stores/s1", json={"name": "旗舰\u0000店"})
    body = assert_problem(response, 422, "validation_error")
    assert [e["field"] for e in body["errors"]] == ["body.name"]
    assert (await client.get("/v1/stores/s1")).json()["name"] is None


@pytest.mark.parametrize(
    ("path", "name", "value"),
    [
        ("/v1/stores/s1/metrics/history", "to", "0"),
        ("/v1/stores/s1/metrics/history", "from", "1700000000"),
        ("/v1/stores/s1/platform-figures", "to", "0"),
        ("/v1/stores/s1/platform-figures", "from", "2026-11-26T00:00:00"),
    ],
)
async def test_a_day_in_a_query_is_written_yyyy_mm_dd_not_a_unix_time(
    client: httpx.AsyncClient, path: str, name: str, value: str
) -> None:
    """Found by schemathesis: pydantic's lax date took ``to=0`` as 1970-01-01 (a Unix time)
    and answered 200 with a history reaching back to 1969."""
    await post_events(client, [paid("o1", at="2026-11-20T10:00:00+08:00")])
    response = await client.get(path, params={name: value})
    body = assert_problem(response, 422, "validation_error")
    assert any(error["field"] == f"query.{name}" for error in body["errors"]), body
