"""Tier states over HTTP (DESIGN §4, §7): /metrics and /products tiers, /v1/risk, what-if.

Every expected number below is worked out by hand from DESIGN §4 in the comment
next to it, never read back from the service.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.support import (
    all_alerts,
    assert_problem,
    build_store,
    get_json,
    metrics,
    post_events,
    product_tiers,
    quality_refunds,
    store_tiers,
)

# Every refund of these stories is requested on 2026-11-25: with none after it, a
# 30-day window drops them on 2026-12-25 (count_clears_on of a breached tier).
CLEARS = "2026-12-25"


def tier(
    name: str,
    state: str,
    threshold: str,
    min_count: int,
    until_breach: int | None,
    to_recover: int | None,
    scope: str = "store",
    clears: str | None = None,
) -> dict[str, Any]:
    return {
        "count_clears_on": clears,
        "tier": name,
        "scope": scope,
        "state": state,
        "rate_threshold": threshold,
        "min_count": min_count,
        "refunds_until_breach": until_breach,
        "orders_to_recover": to_recover,
    }


# --- GET /metrics: the store-scope tiers -----------------------------------------------


async def test_five_in_four_hundred_breaches_demotion_and_needs_101_clean_orders(
    client: httpx.AsyncClient,
) -> None:
    await build_store(client, "s1", 400, 5, products=10)

    body = await metrics(client, "s1")

    assert (body["orders"], body["quality_refunds"]) == (400, 5)
    assert body["quality_refund_rate"] == "0.012500"
    assert body["tiers"] == [
        # 5 ≥ 5 and 5 ≥ 1% × 400 = 4: breached; under the line once 5 < 1% × (400 + m),
        # i.e. 400 + m > 500: m = 101.
        # With no new quality refunds, the refunds of 11-25 leave the window on 12-25.
        tier("demotion", "breached", "0.01", 5, 0, 101, clears=CLEARS),
        # count line: 10 − 5 = 5; rate line: 2% × 400 = 8 − 5 = 3 → 5 more.
        # Not within 1 of the line; 5 < 0.8 × 10: ok.
        tier("listing_ban", "ok", "0.02", 10, 5, None),
    ]


async def test_eight_in_four_hundred_is_two_short_of_a_listing_ban_and_approaching_it(
    client: httpx.AsyncClient,
) -> None:
    await build_store(client, "s1", 400, 8, products=10)

    tiers = await store_tiers(client, "s1")

    # 8 ≥ 5 and 8 ≥ 1% × 400 = 4: breached; under once 8 < 1% × (400 + m): m = 401.
    assert tiers["demotion"] == tier("demotion", "breached", "0.01", 5, 0, 401, clears=CLEARS)
    # count line: 10 − 8 = 2 more; rate: 8 ≥ 8 already. 2 > headroom 1, but 8 ≥ 0.8 × 10
    # and 8 ≥ 0.8 × 2% × 400 = 6.4: approaching by the warn ratio.
    assert tiers["listing_ban"] == tier("listing_ban", "approaching", "0.02", 10, 2, None)


async def test_four_in_a_hundred_is_one_refund_from_demotion(
    client: httpx.AsyncClient,
) -> None:
    await build_store(client, "s1", 100, 4, products=10)

    tiers = await store_tiers(client, "s1")

    # count line 5 − 4 = 1, rate line 1 − 4 < 0 → 1 more ≤ headroom 1: approaching.
    assert tiers["demotion"] == tier("demotion", "approaching", "0.01", 5, 1, None)
    # max(10 − 4, 2 − 4) = 6; 4 < 0.8 × 10: ok.
    assert tiers["listing_ban"] == tier("listing_ban", "ok", "0.02", 10, 6, None)


async def test_one_in_a_hundred_and_one_orders_is_exactly_under_a_one_percent_line(
    client: httpx.AsyncClient,
) -> None:
    # A policy with a 1-refund line: exactness at the boundary (1/100 is 1%, 1/101 is not).
    response = await client.put(
        "/v1/policies/1",
        json={
            "name": "default",
            "warn_headroom": 0,
            "tiers": [
                {"tier": "demotion", "scope": "store", "rate_threshold": "0.01", "min_count": 1}
            ],
        },
    )
    assert response.status_code == 200, response.text
    await build_store(client, "s100", 100, 1)
    await build_store(client, "s101", 101, 1)

    assert (await store_tiers(client, "s100"))["demotion"] == tier(
        "demotion", "breached", "0.01", 1, 0, 1, clears=CLEARS
    )
    # 1 < 1% × 101 = 1.01: one more refund breaches; 1 ≥ 0.8 and 1 ≥ 0.808: approaching.
    assert (await store_tiers(client, "s101"))["demotion"] == tier(
        "demotion", "approaching", "0.01", 1, 1, None
    )


async def test_a_store_with_no_orders_has_no_headroom_figure(client: httpx.AsyncClient) -> None:
    # Refunds whose orders were paid before the window: count without any order in it.
    response = await client.post(
        "/v1/events",
        json={
            "events": [
                {
                    "event_id": "only-refund",
                    "type": "refund.requested",
                    "store_id": "s1",
                    "occurred_at": "2026-11-25T12:00:00+08:00",
                    "refund_id": "r1",
                    "order_id": "o1",
                    "kind": "refund_only",
                    "reason": "quality_issue",
                }
            ]
        },
    )
    assert response.status_code == 200, response.text

    body = await metrics(client, "s1")

    assert (body["orders"], body["quality_refunds"], body["quality_refund_rate"]) == (0, 1, None)
    for status in body["tiers"]:
        assert status["refunds_until_breach"] is None
        assert status["state"] == "ok"


async def test_an_earlier_as_of_judges_the_tiers_on_that_window(
    client: httpx.AsyncClient,
) -> None:
    await build_store(client, "s1", 100, 5, products=10)

    # On 2026-11-24 the refunds (requested on the 25th) are not in the window yet.
    body = await metrics(client, "s1", as_of="2026-11-24")

    assert (body["orders"], body["quality_refunds"]) == (100, 0)
    assert body["tiers"][0] == tier("demotion", "ok", "0.01", 5, 5, None)


# --- GET /products: the product-scope tiers --------------------------------------------


async def test_products_carry_the_delisting_tier(client: httpx.AsyncClient) -> None:
    # p0: 100 orders, 5 refunds; p1: 100 orders, 4 refunds; p2: 100 orders, none.
    await build_store(client, "s1", 300, 0, products=3)
    await post_events(
        client, quality_refunds("s1", [0, 3, 6, 9, 12]) + quality_refunds("s1", [1, 4, 7, 10])
    )

    page = await get_json(client, "/v1/stores/s1/products")
    assert [p["product_id"] for p in page["items"]] == ["p0", "p1", "p2"]  # worst first
    tiers = await product_tiers(client, "s1")

    # p0: 5 ≥ 5 and 5 ≥ 3% × 100: breached; under once 5 < 3% × (100 + m): 100 + m ≥ 167.
    assert tiers["p0"] == {
        "delisting": tier("delisting", "breached", "0.03", 5, 0, 67, "product", clears=CLEARS)
    }
    # p1: max(5 − 4, 3 − 4) = 1 more ≤ headroom: approaching.
    assert tiers["p1"] == {
        "delisting": tier("delisting", "approaching", "0.03", 5, 1, None, "product")
    }
    # p2: max(5, 3) = 5 more: ok.
    assert tiers["p2"] == {"delisting": tier("delisting", "ok", "0.03", 5, 5, None, "product")}
    # The store: 9 in 300 ≥ 1%, 9 ≥ 5: demotion breached; 9 < 10: listing_ban approaching.
    store = await store_tiers(client, "s1")
    assert store["demotion"]["state"] == "breached"
    assert store["listing_ban"]["state"] == "approaching"
    assert {t["tier"] for t in (await metrics(client, "s1"))["tiers"]} == {
        "demotion",
        "listing_ban",
    }


# --- GET /v1/risk ----------------------------------------------------------------------


@pytest.fixture
async def risky_stores(client: httpx.AsyncClient) -> None:
    """Four stores; products spread 10 ways except in risk-d.

    risk-a: 100 orders, 5 refunds → demotion breached (5 refunds).
    risk-b: 100 orders, 6 refunds → demotion breached (6 refunds).
    risk-c: 100 orders, 4 refunds → demotion approaching (1 refund to go).
    risk-d: 20 orders on one product, 5 refunds → demotion and p0's delisting breached.
    calm:   100 orders, 1 refund → nothing at risk.
    """
    await build_store(client, "risk-a", 100, 5, products=10)
    await build_store(client, "risk-b", 100, 6, products=10)
    await build_store(client, "risk-c", 100, 4, products=10)
    await build_store(client, "risk-d", 20, 5, products=1)
    await build_store(client, "calm", 100, 1, products=10)


def keys(items: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    return [
        (i["store_id"], i["product_id"], i["tier"], i["state"], i["refunds_until_breach"])
        for i in items
    ]


WORST_FIRST = [
    ("risk-b", None, "demotion", "breached", 0),  # breached, 0 to go, most refunds (6)
    ("risk-a", None, "demotion", "breached", 0),
    ("risk-d", None, "demotion", "breached", 0),
    ("risk-d", "p0", "delisting", "breached", 0),
    ("risk-c", None, "demotion", "approaching", 1),
]


@pytest.mark.usefixtures("risky_stores")
async def test_risk_lists_breached_then_approaching_fewest_refunds_to_go_first(
    client: httpx.AsyncClient,
) -> None:
    body = await get_json(client, "/v1/risk")

    assert keys(body["items"]) == WORST_FIRST
    assert body["next_cursor"] is None
    first = body["items"][0]
    assert (first["orders"], first["quality_refunds"], first["quality_refund_rate"]) == (
        100,
        6,
        "0.060000",
    )
    assert first["orders_to_recover"] == 501  # 6 < 1% × (100 + m) once m ≥ 501
    assert first["rate_threshold"] == "0.01" and first["min_count"] == 5
    assert first["as_of"] == "2026-11-26"


@pytest.mark.usefixtures("risky_stores")
@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"state": "approaching"}, WORST_FIRST[4:]),
        ({"state": "breached"}, WORST_FIRST[:4]),
        ({"tier": "delisting"}, WORST_FIRST[3:4]),
        ({"tier": "listing_ban"}, []),
        ({"store_id": "risk-d"}, WORST_FIRST[2:4]),
        ({"store_id": "calm"}, []),
        ({"store_id": "risk-c", "state": "breached"}, []),
    ],
)
async def test_risk_filters(
    client: httpx.AsyncClient, params: dict[str, str], expected: list[tuple[Any, ...]]
) -> None:
    assert keys((await get_json(client, "/v1/risk", **params))["items"]) == expected


@pytest.mark.usefixtures("risky_stores")
async def test_risk_pages_with_a_cursor(client: httpx.AsyncClient) -> None:
    seen: list[dict[str, Any]] = []
    params: dict[str, Any] = {"limit": 2}
    for _ in range(10):
        page = await get_json(client, "/v1/risk", **params)
        assert len(page["items"]) <= 2
        seen += page["items"]
        if page["next_cursor"] is None:
            break
        params["cursor"] = page["next_cursor"]
    assert keys(seen) == WORST_FIRST


async def test_risk_refuses_an_unknown_filter_value(client: httpx.AsyncClient) -> None:
    assert_problem(await client.get("/v1/risk", params={"state": "ok"}), 422, "validation_error")
    response = await client.get("/v1/risk", params={"tier": "shadow_ban"})
    assert_problem(response, 422, "validation_error")


# --- POST what-if ----------------------------------------------------------------------


async def test_what_if_one_more_refund_breaches_and_stores_nothing(
    client: httpx.AsyncClient,
) -> None:
    await build_store(client, "s1", 100, 4, products=10)
    before = await metrics(client, "s1")
    alerts_before = await all_alerts(client, store_id="s1")

    response = await client.post("/v1/stores/s1/what-if", json={"extra_quality_refunds": 1})

    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["orders"], body["quality_refunds"], body["quality_refund_rate"]) == (
        100,
        5,
        "0.050000",
    )
    by_tier = {t["tier"]: t for t in body["tiers"]}
    assert by_tier["demotion"] == {
        **tier("demotion", "breached", "0.01", 5, 0, 401),
        "current_state": "approaching",
    }
    assert by_tier["listing_ban"] == {
        **tier("listing_ban", "ok", "0.02", 10, 5, None),
        "current_state": "ok",
    }
    assert await metrics(client, "s1") == before
    assert await all_alerts(client, store_id="s1") == alerts_before
    assert await all_alerts(client, store_id="s1", type="alert.breached") == []


async def test_what_if_more_clean_orders_recover_a_breached_store(
    client: httpx.AsyncClient,
) -> None:
    await build_store(client, "s1", 100, 5, products=10)
    before = await metrics(client, "s1")

    recovered = (await client.post("/v1/stores/s1/what-if", json={"extra_orders": 401})).json()
    short = (await client.post("/v1/stores/s1/what-if", json={"extra_orders": 400})).json()

    # 5 < 1% × 501 = 5.01: back under the line, and 1 more refund (6 ≥ 5.01) breaches again.
    assert recovered["tiers"][0] == {
        **tier("demotion", "approaching", "0.01", 5, 1, None),
        "current_state": "breached",
    }
    # 5 ≥ 1% × 500: still on the line, and 1 more order would fix it.
    assert short["tiers"][0]["state"] == "breached"
    assert short["tiers"][0]["orders_to_recover"] == 1
    assert await metrics(client, "s1") == before


async def test_what_if_for_a_product_answers_its_delisting_tier(
    client: httpx.AsyncClient,
) -> None:
    await build_store(client, "s1", 100, 4, products=1)

    response = await client.post(
        "/v1/stores/s1/what-if",
        json={"product_id": "p0", "extra_quality_refunds": 1, "extra_orders": 50},
    )

    body = response.json()
    assert (body["product_id"], body["orders"], body["quality_refunds"]) == ("p0", 150, 5)
    # 5 ≥ 5 and 5 ≥ 3% × 150 = 4.5: breached; under once 5 < 3% × (150 + m): m = 17.
    assert body["tiers"] == [
        {
            **tier("delisting", "breached", "0.03", 5, 0, 17, "product"),
            "current_state": "approaching",
        }
    ]


async def test_what_if_refuses_negative_extras_and_unknown_stores(
    client: httpx.AsyncClient,
) -> None:
    await build_store(client, "s1", 10, 0)
    response = await client.post("/v1/stores/s1/what-if", json={"extra_orders": -1})
    body = assert_problem(response, 422, "validation_error")
    assert [e["field"] for e in body["errors"]] == ["body.extra_orders"]
    response = await client.post("/v1/stores/nope/what-if", json={"extra_orders": 1})
    assert_problem(response, 404, "store_not_found")
