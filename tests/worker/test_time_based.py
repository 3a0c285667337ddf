"""What time alone changes (DESIGN §4–5): the window slides at each store's midnight,
reminders fall due. No sleeping: the frozen clock moves, and the jobs of
app.worker.jobs are called directly with the instant they run at.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
from fastapi import FastAPI

from app.clock import FrozenClock
from app.worker.jobs import run_time_based, send_reminders, slide_windows
from tests.conftest import NOW
from tests.support import (
    alert_types,
    all_alerts,
    build_store,
    metrics,
    orders,
    post_events,
    quality_refunds,
    store_tiers,
)

SHANGHAI_MIDNIGHT = datetime(2026, 11, 26, 16, 0, tzinfo=UTC)  # 2026-11-27 00:00 +08:00
UTC_MIDNIGHT = datetime(2026, 11, 27, 0, 0, tzinfo=UTC)
SECOND = timedelta(seconds=1)


async def breached_by_old_refunds(client: httpx.AsyncClient, store: str) -> None:
    """5 quality refunds requested on 2026-10-28 (the window's first day on 11-26) on
    orders paid the day before, and 95 clean orders from 11-20: demotion breached
    until the 28th leaves the window."""
    await post_events(
        client,
        orders(store, 5, products=10, at="2026-10-27T12:00:00+08:00")
        + orders(store, 95, start=5, products=10)
        + quality_refunds(store, range(5), at="2026-10-28T12:00:00+08:00"),
    )
    body = await metrics(client, store)
    assert (body["orders"], body["quality_refunds"]) == (95, 5)
    assert (await store_tiers(client, store))["demotion"]["state"] == "breached"


# --- the window slides at midnight -----------------------------------------------------


async def test_refunds_leaving_the_window_at_midnight_resolve_a_breach_with_no_events(
    app: FastAPI, client: httpx.AsyncClient, clock: FrozenClock
) -> None:
    await breached_by_old_refunds(client, "s1")

    assert await slide_windows(app.state.db, SHANGHAI_MIDNIGHT - SECOND) == 1
    assert await alert_types(client, store_id="s1") == ["alert.breached"]

    clock.set(SHANGHAI_MIDNIGHT)
    assert await slide_windows(app.state.db, SHANGHAI_MIDNIGHT) == 1

    alerts = await all_alerts(client, store_id="s1")
    assert [(a["type"], a["tier"], a["previous_state"], a["state"]) for a in alerts] == [
        ("alert.resolved", "demotion", "breached", "ok"),
        ("alert.breached", "demotion", "ok", "breached"),
    ]
    assert alerts[0]["created_at"].startswith("2026-11-26T16:00:00")
    assert alerts[0]["data"]["figures"]["as_of"] == "2026-11-27"
    assert alerts[0]["data"]["figures"]["quality_refunds"] == 0
    assert (await metrics(client, "s1"))["quality_refunds"] == 0
    assert (await client.get("/v1/risk")).json()["items"] == []


async def test_a_utc_store_rolls_eight_hours_after_a_shanghai_store(
    app: FastAPI, client: httpx.AsyncClient, clock: FrozenClock
) -> None:
    await breached_by_old_refunds(client, "shanghai")
    await breached_by_old_refunds(client, "utc")
    response = await client.patch("/v1/stores/utc", json={"timezone": "UTC"})
    assert response.status_code == 200, response.text
    # 2026-10-28 12:00 +08:00 is 04:00 on the 28th in UTC as well: still in the window.
    assert (await store_tiers(client, "utc"))["demotion"]["state"] == "breached"

    clock.set(SHANGHAI_MIDNIGHT)
    await slide_windows(app.state.db, SHANGHAI_MIDNIGHT)
    assert (await store_tiers(client, "shanghai"))["demotion"]["state"] == "ok"
    assert (await store_tiers(client, "utc"))["demotion"]["state"] == "breached"
    assert await alert_types(client, store_id="utc") == ["alert.breached"]

    clock.set(UTC_MIDNIGHT - SECOND)
    await slide_windows(app.state.db, UTC_MIDNIGHT - SECOND)
    assert await alert_types(client, store_id="utc") == ["alert.breached"]

    clock.set(UTC_MIDNIGHT)
    await slide_windows(app.state.db, UTC_MIDNIGHT)
    assert await alert_types(client, store_id="utc") == ["alert.breached", "alert.resolved"]
    assert await alert_types(client, store_id="shanghai") == ["alert.breached", "alert.resolved"]


async def test_orders_leaving_the_window_can_breach_a_line_with_no_events(
    app: FastAPI, client: httpx.AsyncClient, clock: FrozenClock
) -> None:
    # p0: 160 orders paid on 10-28 and 10 on 11-20, 5 quality refunds on 11-25.
    # Today 5 < 3% × 170 = 5.1: one refund short of delisting (approaching).
    await post_events(
        client,
        orders("s1", 160, at="2026-10-28T12:00:00+08:00")
        + orders("s1", 10, start=160)
        + quality_refunds("s1", range(160, 165)),
    )
    assert await alert_types(client, tier="delisting") == ["alert.approaching"]

    clock.set(SHANGHAI_MIDNIGHT)
    await slide_windows(app.state.db, SHANGHAI_MIDNIGHT)

    # Tomorrow the 160 orders are gone: 5 in 10 breaches.
    alerts = await all_alerts(client, tier="delisting")
    assert [(a["type"], a["product_id"], a["previous_state"]) for a in alerts] == [
        ("alert.breached", "p0", "approaching"),
        ("alert.approaching", "p0", "ok"),
    ]
    assert alerts[0]["data"]["figures"]["orders"] == 10


async def test_a_store_is_slid_once_a_day(
    app: FastAPI, client: httpx.AsyncClient, clock: FrozenClock
) -> None:
    await breached_by_old_refunds(client, "s1")
    clock.set(SHANGHAI_MIDNIGHT)

    assert await slide_windows(app.state.db, SHANGHAI_MIDNIGHT) == 1
    assert await slide_windows(app.state.db, SHANGHAI_MIDNIGHT) == 0
    assert await slide_windows(app.state.db, SHANGHAI_MIDNIGHT + timedelta(hours=23)) == 0
    assert await alert_types(client, store_id="s1") == ["alert.breached", "alert.resolved"]


# --- reminders -------------------------------------------------------------------------


async def test_a_scope_still_breached_after_the_interval_is_reminded_once(
    app: FastAPI, client: httpx.AsyncClient, clock: FrozenClock
) -> None:
    await build_store(client, "s1", 100, 5, products=10)  # breached at NOW

    assert await send_reminders(app.state.db, NOW + timedelta(hours=24) - SECOND) == 0
    assert await alert_types(client, store_id="s1") == ["alert.breached"]

    at = NOW + timedelta(hours=24)
    clock.set(at)
    assert await send_reminders(app.state.db, at) == 1
    assert await send_reminders(app.state.db, at) == 0  # the same instant: not doubled

    alerts = await all_alerts(client, store_id="s1")
    assert [(a["type"], a["previous_state"], a["state"]) for a in alerts] == [
        ("alert.reminder", "breached", "breached"),
        ("alert.breached", "ok", "breached"),
    ]
    reminder = alerts[0]
    assert reminder["created_at"].startswith("2026-11-27T04:00:00")
    assert reminder["data"]["orders_to_recover"] == 401  # 5 < 1% × (100 + m) once m ≥ 401
    assert reminder["data"]["figures"]["as_of"] == "2026-11-27"

    # The next one is an interval after the last alert, not after the breach.
    assert await send_reminders(app.state.db, at + timedelta(hours=24) - SECOND) == 0
    assert await send_reminders(app.state.db, at + timedelta(hours=24)) == 1
    assert await alert_types(client, store_id="s1") == [
        "alert.breached",
        "alert.reminder",
        "alert.reminder",
    ]


async def test_an_approaching_scope_is_reminded_and_an_ok_one_is_not(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    await build_store(client, "near", 100, 4, products=10)  # approaching
    await build_store(client, "calm", 100, 1, products=10)  # ok

    assert await send_reminders(app.state.db, NOW + timedelta(hours=24)) == 1

    assert await alert_types(client, store_id="near") == ["alert.approaching", "alert.reminder"]
    assert await all_alerts(client, store_id="calm") == []


async def test_a_resolved_scope_gets_no_reminder(
    app: FastAPI, client: httpx.AsyncClient, clock: FrozenClock
) -> None:
    await breached_by_old_refunds(client, "s1")
    clock.set(SHANGHAI_MIDNIGHT)
    await slide_windows(app.state.db, SHANGHAI_MIDNIGHT)  # resolved

    later = NOW + timedelta(days=3)
    clock.set(later)
    await run_time_based(app.state.db, later)

    assert await alert_types(client, store_id="s1") == ["alert.breached", "alert.resolved"]


async def test_the_reminder_interval_comes_from_the_policy(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    response = await client.put(
        "/v1/policies/1", json={"name": "default", "reminder_interval_seconds": 3600}
    )
    assert response.status_code == 200, response.text
    await build_store(client, "s1", 100, 5, products=10)

    assert await send_reminders(app.state.db, NOW + timedelta(minutes=59)) == 0
    assert await send_reminders(app.state.db, NOW + timedelta(hours=1)) == 1
    assert await send_reminders(app.state.db, NOW + timedelta(hours=2)) == 1
    assert await alert_types(client, type="alert.reminder") == ["alert.reminder"] * 2


async def test_the_scheduled_run_slides_and_reminds_without_doubling(
    app: FastAPI, client: httpx.AsyncClient, clock: FrozenClock
) -> None:
    await build_store(client, "s1", 100, 5, products=10)
    at = NOW + timedelta(hours=24)  # a new day in Shanghai, and the reminder is due
    clock.set(at)

    await run_time_based(app.state.db, at)
    await run_time_based(app.state.db, at)

    assert await alert_types(client, store_id="s1") == ["alert.breached", "alert.reminder"]


async def test_a_silenced_scope_is_still_reminded_but_held_back(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    await build_store(client, "s1", 100, 5, products=10)
    response = await client.post(
        "/v1/silences", json={"store_id": "s1", "until": "2026-12-31T00:00:00Z"}
    )
    assert response.status_code == 201, response.text

    assert await send_reminders(app.state.db, NOW + timedelta(hours=24)) == 1

    (reminder,) = await all_alerts(client, type="alert.reminder")
    assert reminder["silenced"] is True
