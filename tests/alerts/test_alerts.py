"""Alerts (DESIGN §5): one alert per state change, written in the ingest's own request;
what an alert carries; /v1/alerts filters and paging; silences."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
import pytest

from app.clock import FrozenClock
from tests.conftest import NOW
from tests.support import (
    alert_types,
    all_alerts,
    assert_problem,
    build_store,
    get_json,
    metrics,
    orders,
    post_events,
    quality_refunds,
    refund_event,
    requested,
    store_tiers,
    withdrawals,
)

# --- transitions -----------------------------------------------------------------------


async def test_each_state_change_writes_one_alert_in_the_same_request(
    client: httpx.AsyncClient,
) -> None:
    # 100 orders over 20 products, 3 quality refunds: 2 short of demotion → ok.
    await build_store(client, "s1", 100, 3, products=20)
    assert await all_alerts(client, store_id="s1") == []

    # A 4th: 1 short → approaching.
    await post_events(client, quality_refunds("s1", [3]))
    alerts = await all_alerts(client, store_id="s1")
    assert [(a["type"], a["tier"], a["previous_state"], a["state"]) for a in alerts] == [
        ("alert.approaching", "demotion", "ok", "approaching")
    ]

    # A 5th: 5 in 100 → breached.
    await post_events(client, quality_refunds("s1", [4]))
    alerts = await all_alerts(client, store_id="s1")
    assert [(a["type"], a["previous_state"], a["state"]) for a in alerts] == [
        ("alert.breached", "approaching", "breached"),
        ("alert.approaching", "ok", "approaching"),
    ]

    # A 6th keeps it breached: no second alert.breached.
    await post_events(client, quality_refunds("s1", [5]))
    assert await alert_types(client, store_id="s1") == ["alert.approaching", "alert.breached"]

    # Four buyers withdraw: 2 in 100 → back to ok, resolved.
    await post_events(client, withdrawals("s1", range(4)))
    alerts = await all_alerts(client, store_id="s1")
    assert [(a["type"], a["previous_state"], a["state"]) for a in alerts[:1]] == [
        ("alert.resolved", "breached", "ok")
    ]
    assert len(alerts) == 3
    assert (await store_tiers(client, "s1"))["demotion"]["state"] == "ok"
    assert alerts[0]["data"]["figures"]["quality_refunds"] == 2
    assert alerts[0]["data"]["orders_to_recover"] is None


async def test_crossing_the_line_in_one_batch_writes_breached_from_ok(
    client: httpx.AsyncClient,
) -> None:
    await build_store(client, "s1", 100, 5, products=10)

    alerts = await all_alerts(client, store_id="s1")

    assert [(a["type"], a["tier"], a["previous_state"]) for a in alerts] == [
        ("alert.breached", "demotion", "ok")
    ]


async def test_events_that_change_no_state_write_no_alert(client: httpx.AsyncClient) -> None:
    await build_store(client, "s1", 100, 5, products=10)
    before = await all_alerts(client)

    # More orders (5 in 120 is still ≥ 1%), a second refund on an order that already
    # counts, a refund that is no quality refund.
    await post_events(client, orders("s1", 20, start=100, products=10))
    await post_events(client, [requested("r0-again", "o0", store="s1")])
    await post_events(client, quality_refunds("s1", [50], reason="changed_mind"))
    assert (await metrics(client, "s1"))["quality_refunds"] == 5

    assert await all_alerts(client) == before


async def test_a_duplicate_batch_writes_no_second_alert(client: httpx.AsyncClient) -> None:
    batch = orders("s1", 100, products=10) + quality_refunds("s1", range(5))
    await post_events(client, batch)
    again = await post_events(client, batch)

    assert again["duplicates"] == len(batch)
    assert await alert_types(client, store_id="s1") == ["alert.breached"]


async def test_a_product_breach_is_its_own_alert(client: httpx.AsyncClient) -> None:
    # p0 and p1: 100 orders each; p0 gets 5 refunds: 5 ≥ 3% × 100 → delisted.
    await post_events(
        client, orders("s1", 200, products=2) + quality_refunds("s1", [0, 2, 4, 6, 8])
    )

    delisting = await all_alerts(client, store_id="s1", tier="delisting")

    assert len(delisting) == 1
    alert = delisting[0]
    assert (alert["type"], alert["product_id"], alert["previous_state"]) == (
        "alert.breached",
        "p0",
        "ok",
    )
    data = alert["data"]
    assert (data["scope"], data["product_id"], data["store_id"]) == ("product", "p0", "s1")
    assert (data["figures"]["orders"], data["figures"]["quality_refunds"]) == (100, 5)
    assert data["orders_to_recover"] == 67  # 5 < 3% × (100 + m) once m ≥ 67
    assert data["top_products"] == [{"product_id": "p0", "quality_refunds": 5}]
    assert {p["refund_id"] for p in data["pending_refunds"]} == {"r0", "r2", "r4", "r6", "r8"}
    assert {p["product_id"] for p in data["pending_refunds"]} == {"p0"}
    assert await all_alerts(client, store_id="s1", product_id="p1") == []


# --- what an alert carries -------------------------------------------------------------


async def test_a_breach_alert_carries_what_the_seller_needs_to_act(
    client: httpx.AsyncClient,
) -> None:
    await post_events(
        client,
        orders("s1", 100, products=10)
        + quality_refunds("s1", range(3))
        + quality_refunds("s1", [3, 4], reason="not_as_described")
        + [refund_event("succeeded", "r2", store="s1")],  # counts, but can't be turned
    )

    (alert,) = await all_alerts(client, store_id="s1", type="alert.breached")
    data = alert["data"]

    assert alert["tier"] == data["tier"] == "demotion"
    assert data["alert_id"] == alert["alert_id"]
    assert (data["store_id"], data["product_id"], data["scope"]) == ("s1", None, "store")
    assert (data["state"], data["previous_state"]) == ("breached", "ok")
    assert data["figures"] == {
        "as_of": "2026-11-26",
        "window_days": 30,
        "orders": 100,
        "quality_refunds": 5,
        "applied_quality_refunds": 5,
        "pending_quality_refunds": 4,
        "quality_refund_rate": "0.050000",
    }
    assert (data["rate_threshold"], data["min_count"]) == ("0.01", 5)
    # 5 < 1% × (100 + m) once m ≥ 401.
    assert (data["refunds_until_breach"], data["orders_to_recover"]) == (0, 401)
    pending = sorted(data["pending_refunds"], key=lambda p: p["refund_id"])
    assert [
        (p["refund_id"], p["order_id"], p["product_id"], p["requested_on"]) for p in pending
    ] == [
        ("r0", "o0", "p0", "2026-11-25"),
        ("r1", "o1", "p1", "2026-11-25"),
        ("r3", "o3", "p3", "2026-11-25"),
        ("r4", "o4", "p4", "2026-11-25"),
    ]
    assert data["top_reasons"] == [
        {"reason": "quality_issue", "count": 3},
        {"reason": "not_as_described", "count": 2},
    ]
    assert data["top_products"] == [{"product_id": f"p{i}", "quality_refunds": 1} for i in range(5)]
    assert "s1" in data["advice"]["zh"] and "降权" in data["advice"]["zh"]
    assert "s1" in data["advice"]["en"] and "401" in data["advice"]["en"]


async def test_one_alert_is_read_by_its_id(client: httpx.AsyncClient) -> None:
    await build_store(client, "s1", 100, 5, products=10)
    (listed,) = await all_alerts(client, store_id="s1")

    one = await get_json(client, f"/v1/alerts/{listed['alert_id']}")

    assert one == listed


async def test_an_unknown_alert_is_404(client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/alerts/no-such-alert")
    assert_problem(response, 404, "alert_not_found")


# --- listing: filters and paging -------------------------------------------------------


@pytest.fixture
async def history(client: httpx.AsyncClient, clock: FrozenClock) -> None:
    """s1 breaches demotion at NOW; s2 approaches it an hour later; s1 recovers at +2 h."""
    await build_store(client, "s1", 100, 5, products=10)
    clock.advance(timedelta(hours=1))
    await build_store(client, "s2", 100, 4, products=10)
    clock.advance(timedelta(hours=1))
    await post_events(client, withdrawals("s1", range(5)))


@pytest.mark.usefixtures("history")
@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({}, [("s1", "alert.resolved"), ("s2", "alert.approaching"), ("s1", "alert.breached")]),
        ({"store_id": "s1"}, [("s1", "alert.resolved"), ("s1", "alert.breached")]),
        ({"type": "alert.approaching"}, [("s2", "alert.approaching")]),
        ({"tier": "demotion", "store_id": "s2"}, [("s2", "alert.approaching")]),
        ({"tier": "listing_ban"}, []),
        ({"store_id": "nobody"}, []),
        (
            {"since": (NOW + timedelta(minutes=30)).isoformat()},
            [("s1", "alert.resolved"), ("s2", "alert.approaching")],
        ),
        ({"since": (NOW + timedelta(hours=2)).isoformat()}, [("s1", "alert.resolved")]),
    ],
)
async def test_alerts_are_listed_newest_first_and_filtered(
    client: httpx.AsyncClient, params: dict[str, str], expected: list[tuple[str, str]]
) -> None:
    alerts = await all_alerts(client, **params)
    assert [(a["store_id"], a["type"]) for a in alerts] == expected


@pytest.mark.usefixtures("history")
async def test_alerts_page_with_a_cursor(client: httpx.AsyncClient) -> None:
    everything = (await get_json(client, "/v1/alerts"))["items"]
    pages: list[list[dict[str, Any]]] = []
    params: dict[str, Any] = {"limit": 1}
    for _ in range(10):
        page = await get_json(client, "/v1/alerts", **params)
        pages.append(page["items"])
        if page["next_cursor"] is None:
            break
        params["cursor"] = page["next_cursor"]

    assert [len(p) for p in pages] == [1, 1, 1]
    assert [p[0] for p in pages] == everything
    created = [a["created_at"] for a in everything]
    assert created == sorted(created, reverse=True)


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"type": "alert.exploded"}, "query.type"),
        ({"tier": "shadow_ban"}, "query.tier"),
        ({"since": "2026-11-26T04:00:00"}, "query.since"),  # no offset: which 04:00?
        ({"since": "yesterday"}, "query.since"),
        ({"cursor": "not-a-cursor"}, "query.cursor"),
    ],
)
async def test_alerts_refuse_a_bad_filter_naming_it(
    client: httpx.AsyncClient, params: dict[str, str], field: str
) -> None:
    response = await client.get("/v1/alerts", params=params)
    assert response.status_code == 422, response.text
    assert [e["field"] for e in response.json()["errors"]] == [field]


# --- silences --------------------------------------------------------------------------


async def subscribe_webhook(client: httpx.AsyncClient) -> int:
    response = await client.post(
        "/v1/webhooks", json={"url": "http://127.0.0.1:9/hook", "format": "standard"}
    )
    assert response.status_code == 201, response.text
    webhook_id: int = response.json()["id"]
    return webhook_id


async def delivered_alert_ids(client: httpx.AsyncClient, webhook_id: int) -> set[str]:
    page = await get_json(client, f"/v1/webhooks/{webhook_id}/deliveries")
    return {d["alert_id"] for d in page["items"]}


async def silence(client: httpx.AsyncClient, **body: Any) -> dict[str, Any]:
    response = await client.post(
        "/v1/silences", json={"until": "2026-12-01T00:00:00+08:00", **body}
    )
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


async def test_a_silenced_alert_is_written_and_the_state_changes_but_nothing_is_sent(
    client: httpx.AsyncClient,
) -> None:
    webhook_id = await subscribe_webhook(client)
    created = await silence(client, store_id="s1", tier="demotion", comment="talking to buyers")
    assert created["active"] is True

    await build_store(client, "s1", 100, 5, products=10)
    await build_store(client, "s2", 100, 5, products=10)

    (quiet,) = await all_alerts(client, store_id="s1")
    (loud,) = await all_alerts(client, store_id="s2")
    assert (quiet["type"], quiet["silenced"]) == ("alert.breached", True)
    assert (loud["type"], loud["silenced"]) == ("alert.breached", False)
    assert (await store_tiers(client, "s1"))["demotion"]["state"] == "breached"
    risk = (await get_json(client, "/v1/risk", store_id="s1"))["items"]
    assert [(i["tier"], i["state"]) for i in risk] == [("demotion", "breached")]
    assert await delivered_alert_ids(client, webhook_id) == {loud["alert_id"]}


async def test_a_silence_matches_only_its_scope_and_tier(client: httpx.AsyncClient) -> None:
    await silence(client, store_id="s1", product_id="p0")
    await silence(client, tier="listing_ban")  # every store

    # s1: 20 orders on p0, 5 refunds: demotion (store) and delisting (p0) breached.
    await build_store(client, "s1", 20, 5, products=1)
    # s2: 100 orders, 10 refunds: demotion and listing_ban breached.
    await build_store(client, "s2", 100, 10, products=10)

    flags = {
        (a["store_id"], a["product_id"], a["tier"]): a["silenced"] for a in await all_alerts(client)
    }
    assert flags == {
        ("s1", None, "demotion"): False,
        ("s1", "p0", "delisting"): True,
        ("s2", None, "demotion"): False,
        ("s2", None, "listing_ban"): True,
    }


async def test_silences_are_listed_and_ended(client: httpx.AsyncClient, clock: FrozenClock) -> None:
    first = await silence(client, store_id="s1")
    second = await silence(client, tier="delisting", until="2026-11-26T06:00:00Z")

    listed = (await get_json(client, "/v1/silences"))["items"]
    assert [s["id"] for s in listed] == [first["id"], second["id"]]
    assert listed[0]["store_id"] == "s1" and listed[1]["tier"] == "delisting"

    response = await client.delete(f"/v1/silences/{first['id']}")
    assert response.status_code == 204
    assert [s["id"] for s in (await get_json(client, "/v1/silences"))["items"]] == [second["id"]]
    assert_problem(await client.delete(f"/v1/silences/{first['id']}"), 404, "silence_not_found")

    # Past its `until`, a silence is no longer active, and no longer holds anything back.
    clock.set(NOW + timedelta(hours=3))
    assert (await get_json(client, "/v1/silences"))["items"] == []
    expired = (await get_json(client, "/v1/silences", include_expired="true"))["items"]
    assert [(s["id"], s["active"]) for s in expired] == [(second["id"], False)]
    await build_store(client, "s1", 20, 5, products=1)
    assert {a["silenced"] for a in await all_alerts(client, store_id="s1")} == {False}


@pytest.mark.parametrize(
    ("until", "code", "field_code"),
    [
        ("2026-11-26T03:59:59Z", "until_in_past", "until_in_past"),
        ("2026-11-26T12:00:00+08:00", "until_in_past", "until_in_past"),  # exactly now
        ("2026-12-01T00:00:00", "validation_error", "naive_until"),
        ("9999-12-31T23:59:59-14:00", "validation_error", "datetime_out_of_range"),
    ],
)
async def test_a_silence_that_would_never_be_active_is_refused(
    client: httpx.AsyncClient, until: str, code: str, field_code: str
) -> None:
    response = await client.post("/v1/silences", json={"store_id": "s1", "until": until})
    body = assert_problem(response, 422, code)
    assert [(e["field"], e["code"]) for e in body["errors"]] == [("body.until", field_code)]
    assert (await get_json(client, "/v1/silences", include_expired="true"))["items"] == []


async def test_a_silence_with_an_unknown_tier_is_refused(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/v1/silences", json={"tier": "shadow_ban", "until": "2026-12-01T00:00:00Z"}
    )
    body = assert_problem(response, 422, "validation_error")
    assert [e["field"] for e in body["errors"]] == ["body.tier"]
