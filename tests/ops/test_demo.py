"""`refundwatch demo`: a store cluster through the road, landing where each profile says."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI

from app.clock import FrozenClock
from app.config import Settings
from app.ingest.road import ingest
from app.main import create_app
from app.ops.demo import demo_events, load_demo
from tests.conftest import ADMIN_KEY, NOW
from tests.support import get_json, metrics, store_tiers


async def _load(app: FastAPI, clock: FrozenClock, **kw: Any) -> Any:
    return await load_demo(
        app.state.db,
        ingest,
        now=clock.now(),
        timezone="Asia/Shanghai",
        max_future=timedelta(minutes=5),
        **kw,
    )


async def test_the_demo_leaves_breached_approaching_and_fine_stores(
    app: FastAPI, client: httpx.AsyncClient, clock: FrozenClock
) -> None:
    summary = await _load(app, clock, stores=4, days=45)
    assert summary.rejected == 0 and summary.accepted == summary.events > 5000
    assert summary.alerts > 0

    risk = (await get_json(client, "/v1/risk", limit=500))["items"]
    states = {item["state"] for item in risk}
    assert {"breached", "approaching"} <= states

    profiles = {s.store_id: s.profile for s in summary.stores}
    assert list(profiles.values()) == ["breached", "approaching", "fine", "fine"]
    for store_id, profile in profiles.items():
        tiers = await store_tiers(client, store_id)
        if profile == "breached":
            assert tiers["demotion"]["state"] == tiers["listing_ban"]["state"] == "breached"
        elif profile == "approaching":
            assert tiers["demotion"]["state"] == "approaching"
            assert tiers["demotion"]["refunds_until_breach"] == 1
        else:
            assert {t["state"] for t in tiers.values()} == {"ok"}
    # The breached store's best-seller is past the delisting line, its niche product is near.
    products = {
        (item["product_id"], item["state"]) for item in risk if item["store_id"] == "shop-01"
    }
    assert any(state == "breached" for product, state in products if product)
    assert any(state == "approaching" for product, state in products if product)


async def test_the_demo_has_skus_couriers_pending_refunds_reason_changes_and_withdrawals() -> None:
    (store,) = demo_events(1, 30, NOW, "Asia/Shanghai")
    types = {e["type"] for e in store.events}
    assert types >= {
        "order.paid",
        "order.shipped",
        "order.delivered",
        "refund.requested",
        "refund.approved",
        "refund.return_shipped",
        "refund.return_received",
        "refund.succeeded",
        "refund.reason_changed",
        "refund.withdrawn",
    }
    assert all(e.get("sku_id") for e in store.events if e["type"] == "order.paid")
    assert {e["courier"] for e in store.events if e["type"] == "order.shipped"} >= {"中通", "圆通"}
    assert max(datetime.fromisoformat(e["occurred_at"]) for e in store.events) <= NOW
    # The same cluster again: the same ids and contents.
    assert demo_events(1, 30, NOW, "Asia/Shanghai")[0].events == store.events


async def test_a_second_demo_the_same_day_stores_nothing_new(
    app: FastAPI, client: httpx.AsyncClient, clock: FrozenClock
) -> None:
    first = await _load(app, clock, stores=2, days=10)
    before = await metrics(client, "shop-01")
    again = await _load(app, clock, stores=2, days=10)
    assert again.accepted == 0 and again.duplicates == first.accepted
    assert await metrics(client, "shop-01") == before


def test_the_demo_command_loads_a_cluster_the_server_then_shows(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("REFUNDWATCH_", "PROMETHEUS_"))}
    env.update(REFUNDWATCH_DATA_DIR=str(tmp_path), REFUNDWATCH_BOOTSTRAP_ADMIN_KEY=ADMIN_KEY)
    done = subprocess.run(
        [sys.executable, "-m", "app.cli", "demo", "--stores", "3"],
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "shop-01  breached" in done.stderr and "shop-02  approaching" in done.stderr

    import asyncio

    async def risk_states() -> set[str]:
        settings = Settings(data_dir=tmp_path, bootstrap_admin_key=ADMIN_KEY)  # type: ignore[arg-type]
        application = create_app(settings)
        async with (
            application.router.lifespan_context(application),
            httpx.AsyncClient(
                transport=httpx.ASGITransport(app=application),
                base_url="http://t",
                headers={"Authorization": f"Bearer {ADMIN_KEY}"},
            ) as c,
        ):
            items = (await get_json(c, "/v1/risk", limit=500))["items"]
        return {item["state"] for item in items}

    assert {"breached", "approaching"} <= asyncio.run(risk_states())
