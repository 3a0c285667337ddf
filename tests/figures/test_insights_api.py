"""The explaining figures through the API: hand-worked stories, bad input, the migration."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from alembic import command

from app.clock import FrozenClock
from app.config import Settings
from app.db.engine import Database, create_engine
from app.db.migrate import alembic_config
from app.figures.rebuild import rebuild_outdated_stores
from app.main import create_app
from tests.conftest import ADMIN_KEY
from tests.support import paid, post_events, refund_event, requested


def shipped(order: str, at: str, courier: str | None = None, **kw: Any) -> dict[str, Any]:
    event = {
        "event_id": kw.pop("event_id", f"ship-{order}-{at}"),
        "type": "order.shipped",
        "store_id": kw.pop("store", "s1"),
        "occurred_at": at,
        "order_id": order,
    }
    if courier is not None:
        event["courier"] = courier
    return event


STORY = [
    paid("o1", product="p1", sku_id="red", at="2026-11-20T10:00:00+08:00"),
    shipped("o1", "2026-11-20T20:00:00+08:00", "中通快递"),  # 10 h
    requested("r1", "o1", at="2026-11-22T10:00:00+08:00"),
    paid("o2", product="p1", sku_id="red", at="2026-11-20T10:00:00+08:00"),
    shipped("o2", "2026-11-21T10:00:00+08:00"),  # 24 h exactly: 24-48, no courier named
    shipped("o2", "2026-11-21T12:00:00+08:00", "圆通速递"),  # the courier comes later
    requested("r2", "o2", reason="not_as_described", kind="return_refund"),
    paid("o3", product="p1", sku_id="blue", at="2026-11-20T10:00:00+08:00"),
    shipped("o3", "2026-11-24T10:00:00+08:00", "中通快递"),  # 96 h
    paid("o4", product="p2", at="2026-11-21T10:00:00+08:00"),  # never shipped, no sku
    requested("r4", "o4", reason="changed_mind"),
    requested("r5", "o5", product_id="p1", sku_id="green"),  # a refund before its order
]


async def test_breakdowns_split_by_courier_hours_reason_and_kind(
    client: httpx.AsyncClient,
) -> None:
    await post_events(client, STORY)

    async def items(by: str, **params: Any) -> list[dict[str, Any]]:
        response = await client.get("/v1/stores/s1/breakdown", params={"by": by, **params})
        assert response.status_code == 200, response.text
        return response.json()["items"]  # type: ignore[no-any-return]

    assert await items("courier") == [
        {"key": "中通快递", "orders": 2, "quality_refunds": 1, "quality_refund_rate": "0.500000"},
        {"key": "圆通速递", "orders": 1, "quality_refunds": 1, "quality_refund_rate": "1.000000"},
        {"key": None, "orders": 1, "quality_refunds": 1, "quality_refund_rate": "1.000000"},
    ]
    assert await items("ship_hours") == [
        {"key": "0-24", "orders": 1, "quality_refunds": 1, "quality_refund_rate": "1.000000"},
        {"key": "24-48", "orders": 1, "quality_refunds": 1, "quality_refund_rate": "1.000000"},
        {"key": None, "orders": 1, "quality_refunds": 1, "quality_refund_rate": "1.000000"},
        {"key": "72+", "orders": 1, "quality_refunds": 0, "quality_refund_rate": "0.000000"},
    ]
    assert await items("reason") == [
        {"key": "quality_issue", "quality_refunds": 2},
        {"key": "not_as_described", "quality_refunds": 1},
    ]
    assert await items("kind") == [
        {"key": "refund_only", "quality_refunds": 2},
        {"key": "return_refund", "quality_refunds": 1},
    ]
    assert await items("courier", product_id="p2") == [
        {"key": None, "orders": 1, "quality_refunds": 0, "quality_refund_rate": "0.000000"}
    ]


async def test_skus_of_a_product_worst_first(client: httpx.AsyncClient) -> None:
    await post_events(client, STORY)
    response = await client.get("/v1/stores/s1/products/p1/skus")
    assert response.status_code == 200, response.text
    skus = [(s["sku_id"], s["orders"], s["quality_refunds"]) for s in response.json()["items"]]
    assert skus == [("red", 2, 2), ("green", 0, 1), ("blue", 1, 0)]


async def test_the_trend_compares_with_the_rate_a_week_earlier(
    client: httpx.AsyncClient,
) -> None:
    # 2 of 100 a week ago (in the window ending 11-19), 3 of 100 now.
    events = [paid(f"o{i}", at="2026-11-10T10:00:00+08:00") for i in range(100)]
    events += [requested(f"r{i}", f"o{i}", at="2026-11-12T10:00:00+08:00") for i in range(2)]
    events.append(requested("r9", "o9", at="2026-11-24T10:00:00+08:00"))
    await post_events(client, events)
    metrics = (await client.get("/v1/stores/s1/metrics")).json()
    assert metrics["trend"] == "rising"  # 0.03 − 0.02 = 0.01 ≥ 0.001
    before = (await client.get("/v1/stores/s1/metrics", params={"as_of": "2026-11-19"})).json()
    assert before["trend"] == "flat"  # 0.02 against 0.02 (11-12 is in both windows)
    empty = (await client.get("/v1/stores/s1/metrics", params={"as_of": "2026-11-01"})).json()
    assert empty["trend"] is None


async def test_a_breached_tier_says_when_its_count_clears(client: httpx.AsyncClient) -> None:
    events = [paid(f"o{i}", at="2026-11-01T10:00:00+08:00") for i in range(100)]
    days = ["2026-11-01", "2026-11-03", "2026-11-03", "2026-11-10", "2026-11-20", "2026-11-25"]
    events += [
        requested(f"r{i}", f"o{i}", at=f"{day}T12:00:00+08:00") for i, day in enumerate(days)
    ]
    await post_events(client, events)
    tiers = {t["tier"]: t for t in (await client.get("/v1/stores/s1/metrics")).json()["tiers"]}
    # 6 ≥ 5: breached. Dropping 11-01 leaves 5 (still ≥ 5); dropping 11-03 too leaves 3 < 5.
    # The window ending D holds D−29…D: 11-03 leaves it on 12-03.
    assert tiers["demotion"]["state"] == "breached"
    assert tiers["demotion"]["count_clears_on"] == "2026-12-03"
    assert tiers["listing_ban"]["count_clears_on"] is None
    alerts = (await client.get("/v1/alerts", params={"type": "alert.breached"})).json()["items"]
    assert alerts[0]["data"]["count_clears_on"] == "2026-12-03"
    assert alerts[0]["data"]["trend"] in ("rising", "flat", None)
    # A withdrawal takes the latest one out: 5 left, and 11-01 leaving is enough.
    await post_events(client, [refund_event("withdrawn", "r5", at="2026-11-25T18:00:00+08:00")])
    tiers = {t["tier"]: t for t in (await client.get("/v1/stores/s1/metrics")).json()["tiers"]}
    assert tiers["demotion"]["count_clears_on"] == "2026-12-01"
    risk = (await client.get("/v1/risk")).json()["items"]
    assert risk[0]["count_clears_on"] == "2026-12-01" and risk[0]["trend"] in ("rising", "flat")


async def test_the_platforms_figures_sit_beside_ours_with_the_drift(
    client: httpx.AsyncClient,
) -> None:
    events = [paid(f"o{i}", at="2026-11-20T10:00:00+08:00") for i in range(400)]
    events += [requested(f"r{i}", f"o{i}") for i in range(5)]
    await post_events(client, events)
    put = await client.put(
        "/v1/stores/s1/platform-figures/2026-11-25",
        json={"quality_refund_rate": "0.0150", "quality_refunds": 6, "orders": 400},
    )
    assert put.status_code == 200, put.text
    assert put.json()["drift"] == {
        "quality_refund_rate": "-0.002500",
        "quality_refunds": -1,
        "orders": 0,
    }
    await client.put("/v1/stores/s1/platform-figures/2026-11-20", json={"orders": 390})
    await client.put("/v1/stores/s1/platform-figures/2026-11-24", json={"quality_refunds": 5})
    days = (await client.get("/v1/stores/s1/platform-figures")).json()["days"]
    assert [d["day"] for d in days] == ["2026-11-20", "2026-11-24", "2026-11-25"]
    assert days[0]["ours"]["orders"] == 400 and days[0]["drift"]["orders"] == 10
    assert days[0]["drift"]["quality_refund_rate"] is None
    assert days[1]["ours"]["quality_refunds"] == 0 and days[1]["drift"]["quality_refunds"] == -5
    assert days[2]["ours"]["quality_refund_rate"] == "0.012500"


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("2026-11-25", {}, "body"),
        ("2026-11-25", {"quality_refund_rate": "1.5"}, "body.quality_refund_rate"),
        ("2026-11-25", {"quality_refund_rate": "0.0000001"}, "body.quality_refund_rate"),
        ("2026-11-25", {"orders": -1}, "body.orders"),
        ("2026-11-25", {"orders": 2**31}, "body.orders"),
        ("2026-11-25", {"quality_refunds": 1, "extra": 1}, "body.extra"),
        ("2026-11-27", {"orders": 1}, "path.day"),
        ("1999-12-31", {"orders": 1}, "path.day"),
        ("2026-02-30", {"orders": 1}, "path.day"),
    ],
)
async def test_bad_platform_figures_are_refused_naming_the_field(
    client: httpx.AsyncClient, path: str, body: dict[str, Any], field: str
) -> None:
    await post_events(client, [paid("o1")])
    response = await client.put(f"/v1/stores/s1/platform-figures/{path}", json=body)
    assert response.status_code == 422, response.text
    assert response.json()["errors"][0]["field"].startswith(field)


async def test_breakdown_refuses_an_unknown_split(client: httpx.AsyncClient) -> None:
    await post_events(client, [paid("o1")])
    response = await client.get("/v1/stores/s1/breakdown", params={"by": "colour"})
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "query.by"


async def test_the_migration_fills_couriers_and_skus_and_the_rebuild_the_buckets(
    app_settings: Settings, clock: FrozenClock
) -> None:
    application = create_app(app_settings, clock=clock)
    async with (
        application.router.lifespan_context(application),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=application),
            base_url="http://test",
            headers={"Authorization": f"Bearer {ADMIN_KEY}"},
        ) as client,
    ):
        await post_events(client, STORY)
        before = {
            by: (await client.get("/v1/stores/s1/breakdown", params={"by": by})).json()["items"]
            for by in ("courier", "ship_hours", "reason", "kind")
        }
        skus = (await client.get("/v1/stores/s1/products/p1/skus")).json()["items"]

    config = alembic_config(app_settings.database_url)
    command.downgrade(config, "0005")  # the schema before: no couriers, no SKU buckets
    command.upgrade(config, "head")
    db = Database(create_engine(app_settings))
    try:
        assert await rebuild_outdated_stores(db) == 1
        assert await rebuild_outdated_stores(db) == 0
    finally:
        await db.dispose()

    application = create_app(app_settings, clock=clock)
    async with (
        application.router.lifespan_context(application),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=application),
            base_url="http://test",
            headers={"Authorization": f"Bearer {ADMIN_KEY}"},
        ) as client,
    ):
        for by, items in before.items():
            got = (await client.get("/v1/stores/s1/breakdown", params={"by": by})).json()
            assert got["items"] == items, by
        assert (await client.get("/v1/stores/s1/products/p1/skus")).json()["items"] == skus
