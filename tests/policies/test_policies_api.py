"""/v1/policies and a store's policy (DESIGN §4, §7): lines, validation, re-evaluation."""

from __future__ import annotations

import copy
from typing import Any

import httpx
import pytest

from tests.support import (
    all_alerts,
    assert_problem,
    build_store,
    metrics,
    orders,
    post_events,
    quality_refunds,
    store_tiers,
)

DEFAULT_TIERS = [
    {"tier": "demotion", "scope": "store", "rate_threshold": "0.01", "min_count": 5},
    {"tier": "listing_ban", "scope": "store", "rate_threshold": "0.02", "min_count": 10},
    {"tier": "delisting", "scope": "product", "rate_threshold": "0.03", "min_count": 5},
]


def policy_body(name: str = "strict", **changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": name,
        "window_days": 30,
        "quality_reasons": ["quality_issue", "not_as_described"],
        "reason_basis": "first",
        "warn_ratio": "0.8",
        "warn_headroom": 1,
        "min_orders": 0,
        "reminder_interval_seconds": 86400,
        "tiers": copy.deepcopy(DEFAULT_TIERS),
    }
    body.update(changes)
    return body


def with_demotion(**line: Any) -> list[dict[str, Any]]:
    tiers = copy.deepcopy(DEFAULT_TIERS)
    tiers[0].update(line)
    return tiers


async def create_policy(client: httpx.AsyncClient, **changes: Any) -> dict[str, Any]:
    response = await client.post("/v1/policies", json=policy_body(**changes))
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def use_policy(client: httpx.AsyncClient, store: str, policy_id: int) -> None:
    response = await client.patch(f"/v1/stores/{store}", json={"policy_id": policy_id})
    assert response.status_code == 200, response.text
    assert response.json()["policy_id"] == policy_id


# --- the default policy ----------------------------------------------------------------


async def test_the_default_policy_exists_with_the_three_documented_tiers(
    client: httpx.AsyncClient,
) -> None:
    body = (await client.get("/v1/policies/1")).json()

    assert body["id"] == 1
    assert body["tiers"] == DEFAULT_TIERS
    assert body["window_days"] == 30
    assert sorted(body["quality_reasons"]) == ["not_as_described", "quality_issue"]
    assert body["reason_basis"] == "first"
    assert body["warn_ratio"] == "0.8"
    assert (body["warn_headroom"], body["min_orders"]) == (1, 0)
    assert body["reminder_interval_seconds"] == 24 * 3600


async def test_a_new_store_uses_the_default_policy_and_is_counted_on_it(
    client: httpx.AsyncClient,
) -> None:
    await build_store(client, "s1", 10, 0)

    assert (await client.get("/v1/stores/s1")).json()["policy_id"] == 1
    assert (await client.get("/v1/policies/1")).json()["stores"] == 1


async def test_an_unknown_policy_is_404(client: httpx.AsyncClient) -> None:
    assert_problem(await client.get("/v1/policies/999"), 404, "policy_not_found")
    response = await client.put("/v1/policies/999", json=policy_body())
    assert_problem(response, 404, "policy_not_found")
    assert_problem(await client.delete("/v1/policies/999"), 404, "policy_not_found")


# --- create and validate ---------------------------------------------------------------


async def test_creating_a_policy_returns_it_and_lists_it(client: httpx.AsyncClient) -> None:
    created = await create_policy(
        client,
        name="strict",
        quality_reasons=["quality_issue", "破损"],
        tiers=with_demotion(rate_threshold="0.005", min_count=3),
        warn_headroom=2,
    )

    assert created["id"] > 1
    assert created["name"] == "strict"
    assert sorted(created["quality_reasons"]) == ["damaged", "quality_issue"]
    assert created["tiers"][0] == {
        "tier": "demotion",
        "scope": "store",
        "rate_threshold": "0.005",
        "min_count": 3,
    }
    assert created["warn_headroom"] == 2
    assert created["stores"] == 0
    assert (await client.get(f"/v1/policies/{created['id']}")).json() == created
    listed = (await client.get("/v1/policies")).json()["items"]
    assert [p["id"] for p in listed] == [1, created["id"]]


async def test_a_second_policy_with_the_same_name_is_a_conflict(
    client: httpx.AsyncClient,
) -> None:
    await create_policy(client, name="strict")
    response = await client.post("/v1/policies", json=policy_body(name="strict"))
    assert_problem(response, 409, "policy_name_taken")


def _tier(**changes: Any) -> list[dict[str, Any]]:
    return with_demotion(**changes)


INVALID_POLICIES = [
    pytest.param({"tiers": _tier(rate_threshold="0")}, "body.tiers.0.rate_threshold", id="rate-0"),
    pytest.param(
        {"tiers": _tier(rate_threshold="1.5")}, "body.tiers.0.rate_threshold", id="rate-1.5"
    ),
    pytest.param({"tiers": _tier(min_count=0)}, "body.tiers.0.min_count", id="min_count-0"),
    pytest.param({"tiers": _tier(tier="shadow_ban")}, "body.tiers.0.tier", id="unknown-tier"),
    pytest.param({"tiers": _tier(scope="region")}, "body.tiers.0.scope", id="unknown-scope"),
    pytest.param({"warn_ratio": "1"}, "body.warn_ratio", id="warn_ratio-1"),
    pytest.param(
        {"quality_reasons": ["quality_issue", "ugly"]},
        "body.quality_reasons",
        id="unknown-reason",
    ),
    pytest.param(
        {"tiers": [*DEFAULT_TIERS, {**DEFAULT_TIERS[0], "rate_threshold": "0.05"}]},
        "body.tiers",
        id="duplicate-tier-and-scope",
    ),
]


@pytest.mark.parametrize(("changes", "field"), INVALID_POLICIES)
async def test_an_invalid_policy_is_refused_naming_the_field(
    client: httpx.AsyncClient, changes: dict[str, Any], field: str
) -> None:
    for response in (
        await client.post("/v1/policies", json=policy_body(**changes)),
        await client.put("/v1/policies/1", json=policy_body(name="default", **changes)),
    ):
        body = assert_problem(response, 422, "validation_error")
        fields = [e["field"] for e in body["errors"]]
        assert any(f == field or f.startswith(field + ".") for f in fields), fields

    # Nothing was created and the default policy is unchanged.
    assert len((await client.get("/v1/policies")).json()["items"]) == 1
    assert (await client.get("/v1/policies/1")).json()["tiers"] == DEFAULT_TIERS


async def test_an_unknown_reason_is_refused_with_the_list_of_valid_ones(
    client: httpx.AsyncClient,
) -> None:
    response = await client.post("/v1/policies", json=policy_body(quality_reasons=["ugly"]))
    body = assert_problem(response, 422, "validation_error")
    assert "quality_issue" in body["detail"] and "not_as_described" in body["detail"]


# --- replace: every store on the policy is re-evaluated --------------------------------


async def test_lowering_a_line_breaches_a_store_and_writes_an_alert(
    client: httpx.AsyncClient,
) -> None:
    # 100 orders, 4 quality refunds: one refund short of demotion (approaching).
    await build_store(client, "s1", 100, 4, products=10)
    policy = await create_policy(client, name="tuned")
    await use_policy(client, "s1", policy["id"])
    assert (await store_tiers(client, "s1"))["demotion"]["state"] == "approaching"
    before = await all_alerts(client, store_id="s1", tier="demotion")
    assert [a["type"] for a in before] == ["alert.approaching"]

    response = await client.put(
        f"/v1/policies/{policy['id']}",
        json=policy_body(name="tuned", tiers=with_demotion(min_count=4)),
    )
    assert response.status_code == 200, response.text
    assert response.json()["tiers"][0]["min_count"] == 4

    demotion = (await store_tiers(client, "s1"))["demotion"]
    assert demotion["state"] == "breached"
    assert demotion["min_count"] == 4
    assert demotion["orders_to_recover"] == 301  # 4 < 1% × (100 + m) once m ≥ 301
    alerts = await all_alerts(client, store_id="s1", tier="demotion")
    assert [a["type"] for a in alerts] == ["alert.breached", "alert.approaching"]
    assert alerts[0]["previous_state"] == "approaching"
    assert alerts[0]["data"]["min_count"] == 4
    risk = (await client.get("/v1/risk", params={"store_id": "s1"})).json()["items"]
    assert [(i["tier"], i["state"]) for i in risk] == [("demotion", "breached")]


async def test_replacing_the_default_policy_re_evaluates_every_store_on_it(
    client: httpx.AsyncClient,
) -> None:
    await build_store(client, "s1", 100, 3, products=10)
    await build_store(client, "s2", 100, 2, products=10)
    other = await create_policy(client, name="other")
    await build_store(client, "s3", 100, 3, products=10)
    await use_policy(client, "s3", other["id"])

    response = await client.put(
        "/v1/policies/1",
        json=policy_body(name="default", tiers=with_demotion(rate_threshold="0.005", min_count=2)),
    )
    assert response.status_code == 200, response.text

    # s1: 3 ≥ 2 and 3 ≥ 0.005 × 100 → breached; s2: 2 ≥ 0.5 → breached.
    for store in ("s1", "s2"):
        assert (await store_tiers(client, store))["demotion"]["state"] == "breached"
        types = [a["type"] for a in await all_alerts(client, store_id=store, tier="demotion")]
        assert types == ["alert.breached"]
    # s3 is on another policy: untouched.
    assert (await store_tiers(client, "s3"))["demotion"]["state"] == "ok"
    assert await all_alerts(client, store_id="s3") == []


async def test_raising_a_line_resolves_a_breached_store(client: httpx.AsyncClient) -> None:
    await build_store(client, "s1", 100, 5, products=10)
    assert (await store_tiers(client, "s1"))["demotion"]["state"] == "breached"

    response = await client.put(
        "/v1/policies/1", json=policy_body(name="default", tiers=with_demotion(min_count=20))
    )
    assert response.status_code == 200, response.text

    assert (await store_tiers(client, "s1"))["demotion"]["state"] == "ok"
    alerts = await all_alerts(client, store_id="s1", tier="demotion")
    assert [(a["type"], a["previous_state"]) for a in alerts] == [
        ("alert.resolved", "breached"),
        ("alert.breached", "ok"),
    ]


async def test_replacing_the_quality_reasons_recomputes_the_figures(
    client: httpx.AsyncClient,
) -> None:
    await post_events(
        client,
        orders("s1", 100, products=10)
        + quality_refunds("s1", range(3))
        + quality_refunds("s1", range(3, 5), reason="damaged"),
    )
    assert (await metrics(client, "s1"))["quality_refunds"] == 3

    response = await client.put(
        "/v1/policies/1",
        json=policy_body(name="default", quality_reasons=["quality_issue", "damaged"]),
    )
    assert response.status_code == 200, response.text

    body = await metrics(client, "s1")
    assert body["quality_refunds"] == 5
    assert {t["tier"]: t["state"] for t in body["tiers"]}["demotion"] == "breached"


# --- delete ----------------------------------------------------------------------------


async def test_a_policy_in_use_cannot_be_deleted(client: httpx.AsyncClient) -> None:
    policy = await create_policy(client)
    await build_store(client, "s1", 10, 0)
    await use_policy(client, "s1", policy["id"])

    assert_problem(await client.delete(f"/v1/policies/{policy['id']}"), 409, "policy_in_use")
    assert (await client.get(f"/v1/policies/{policy['id']}")).status_code == 200


async def test_the_default_policy_cannot_be_deleted(client: httpx.AsyncClient) -> None:
    assert_problem(await client.delete("/v1/policies/1"), 409, "policy_is_default")
    assert (await client.get("/v1/policies/1")).status_code == 200


async def test_an_unused_policy_is_deleted(client: httpx.AsyncClient) -> None:
    policy = await create_policy(client)
    await build_store(client, "s1", 10, 0)
    await use_policy(client, "s1", policy["id"])
    await use_policy(client, "s1", 1)  # moved off it: no longer in use

    response = await client.delete(f"/v1/policies/{policy['id']}")
    assert response.status_code == 204
    assert_problem(await client.get(f"/v1/policies/{policy['id']}"), 404, "policy_not_found")


# --- a store's policy ------------------------------------------------------------------


async def test_a_store_pointed_at_a_policy_counting_damaged_is_recomputed_and_alerted(
    client: httpx.AsyncClient,
) -> None:
    # 4 quality refunds + 2 damaged in 100 orders: one short of demotion on the default.
    await post_events(
        client,
        orders("s1", 100, products=10)
        + quality_refunds("s1", range(4))
        + quality_refunds("s1", range(4, 6), reason="damaged"),
    )
    before = await metrics(client, "s1")
    assert (before["quality_refunds"], before["quality_refund_rate"]) == (4, "0.040000")
    policy = await create_policy(
        client, name="with damaged", quality_reasons=["quality_issue", "not_as_described", "破损"]
    )

    await use_policy(client, "s1", policy["id"])

    after = await metrics(client, "s1")
    assert after["quality_refunds"] == after["applied_quality_refunds"] == 6
    assert after["quality_refund_rate"] == "0.060000"
    demotion = {t["tier"]: t for t in after["tiers"]}["demotion"]
    assert demotion["state"] == "breached"
    assert demotion["orders_to_recover"] == 501  # 6 < 1% of 601
    alerts = await all_alerts(client, store_id="s1", tier="demotion")
    assert [(a["type"], a["previous_state"]) for a in alerts] == [
        ("alert.breached", "approaching"),
        ("alert.approaching", "ok"),
    ]
    assert alerts[0]["data"]["figures"]["quality_refunds"] == 6
    reasons = {r["reason"]: r["count"] for r in alerts[0]["data"]["top_reasons"]}
    assert reasons == {"quality_issue": 4, "damaged": 2}

    # And back: the damaged refunds stop counting again.
    await use_policy(client, "s1", 1)
    assert (await metrics(client, "s1"))["quality_refunds"] == 4
    assert (await store_tiers(client, "s1"))["demotion"]["state"] == "approaching"


async def test_pointing_a_store_at_an_unknown_policy_is_refused(
    client: httpx.AsyncClient,
) -> None:
    await build_store(client, "s1", 10, 0)
    response = await client.patch("/v1/stores/s1", json={"policy_id": 999})
    body = assert_problem(response, 422, "unknown_policy")
    assert [e["field"] for e in body["errors"]] == ["body.policy_id"]
    assert (await client.get("/v1/stores/s1")).json()["policy_id"] == 1
