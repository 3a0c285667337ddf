"""What an admin does from the console: silence, acknowledge, retry, recover, import; and the
alerts, webhooks and connections pages that show the results."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from pathlib import Path

import httpx
from fastapi import FastAPI

from app.clock import FrozenClock
from app.webhooks.relay import Relay
from tests.console.helpers import page_csrf, signed_in
from tests.fakes.receiver import Receiver, Reply, running_receiver
from tests.imports import exports
from tests.support import breach_demotion, deliveries, get_json, parse_time, subscribe

ALERT = re.compile(r'<li class="alert-item[^"]*" data-alert-id="([^"]+)" data-store-id="([^"]+)"')


async def alert_ids(client: httpx.AsyncClient) -> list[str]:
    return [a["alert_id"] for a in (await get_json(client, "/v1/alerts"))["items"]]


# --------------------------------------------------------------------------- alerts


async def test_silencing_from_the_console_creates_the_silence_the_api_lists(
    console: httpx.AsyncClient, client: httpx.AsyncClient, clock: FrozenClock
) -> None:
    await breach_demotion(client, "s1")
    await signed_in(console)
    page = await console.get("/console/alerts")
    assert [store for _, store in ALERT.findall(page.text)] == ["s1"]
    csrf = await page_csrf(console, "/console/alerts")
    response = await console.post(
        "/console/silences",
        data={
            "csrf_token": csrf,
            "store_id": "s1",
            "tier": "demotion",
            "hours": "24",
            "comment": "talking to the buyers",
            "back": "/console/alerts?store_id=s1",
        },
    )
    assert response.status_code == 303
    assert response.headers["location"] == "/console/alerts?store_id=s1&notice=silenced&n=24"
    (silence,) = (await get_json(client, "/v1/silences"))["items"]
    assert (silence["store_id"], silence["tier"], silence["comment"]) == (
        "s1",
        "demotion",
        "talking to the buyers",
    )
    assert parse_time(silence["until"]) == clock.now() + timedelta(hours=24)
    shown = await console.get(response.headers["location"])
    assert "已静默 24 小时" in shown.text and 'data-silence-id="' in shown.text


async def test_a_silence_with_a_made_up_tier_or_duration_is_refused(
    console: httpx.AsyncClient, client: httpx.AsyncClient
) -> None:
    await signed_in(console)
    csrf = await page_csrf(console, "/console/alerts")
    for form in (
        {"hours": "5"},
        {"hours": "24", "tier": "death"},
        {"hours": "24", "store_id": "a b"},
    ):
        response = await console.post("/console/silences", data={"csrf_token": csrf, **form})
        assert response.status_code == 422, form
    assert (await get_json(client, "/v1/silences"))["items"] == []


async def test_acknowledging_an_alert_records_who_and_when(
    console: httpx.AsyncClient, client: httpx.AsyncClient
) -> None:
    await breach_demotion(client, "s1", "s2")
    first, second = await alert_ids(client)
    await signed_in(console)
    csrf = await page_csrf(console, "/console/alerts")
    response = await console.post(f"/console/alerts/{first}/acknowledge", data={"csrf_token": csrf})
    assert response.status_code == 303
    assert response.headers["location"] == "/console/alerts?notice=acknowledged"
    again = await console.post(f"/console/alerts/{first}/acknowledge", data={"csrf_token": csrf})
    assert again.status_code == 303  # acknowledging twice keeps the first

    page = (await console.get("/console/alerts")).text
    item = re.search(rf'data-alert-id="{first}".*?</li>', page, re.S)
    assert item is not None and "bootstrap 于" in item.group(0) and "已确认" in item.group(0)
    open_only = (await console.get("/console/alerts?unacknowledged=1")).text
    assert [alert for alert, _ in ALERT.findall(open_only)] == [second]


async def test_acknowledging_an_unknown_alert_is_a_404_page(console: httpx.AsyncClient) -> None:
    await signed_in(console)
    csrf = await page_csrf(console, "/console/alerts")
    response = await console.post("/console/alerts/nope/acknowledge", data={"csrf_token": csrf})
    assert response.status_code == 404 and "nope" in response.text


async def test_the_alerts_page_pages_back_in_time(
    console: httpx.AsyncClient, client: httpx.AsyncClient
) -> None:
    await breach_demotion(client, *[f"s{i}" for i in range(55)])
    await signed_in(console)
    first = (await console.get("/console/alerts")).text
    assert len(ALERT.findall(first)) == 50
    older = re.search(r'href="(/console/alerts\?cursor=[^"]+)" rel="next"', first)
    assert older is not None
    second = (await console.get(older.group(1).replace("&amp;", "&"))).text
    assert len(ALERT.findall(second)) == 5
    assert not set(ALERT.findall(first)) & set(ALERT.findall(second))


# --------------------------------------------------------------------------- webhooks


async def failed_delivery(
    client: httpx.AsyncClient, receiver: Receiver, relay: Relay
) -> tuple[int, int]:
    """A subscription whose one delivery the receiver refused (400: failed at once)."""
    sub = await subscribe(client, receiver.url)
    await breach_demotion(client, "s1")
    receiver.reply(Reply(400, {}, b"no"))
    assert await relay.run_once() == 1
    (delivery,) = await deliveries(client, sub["id"])
    assert delivery["status"] == "failed"
    return sub["id"], delivery["id"]


def stat(html: str, webhook_id: int, name: str) -> int:
    card = re.search(rf'data-webhook-id="{webhook_id}".*?</section>', html, re.S)
    assert card is not None
    found = re.search(rf'data-stat="{name}"><dt>[^<]*</dt><dd>(\d+)</dd>', card.group(0))
    assert found is not None
    return int(found.group(1))


async def test_the_webhooks_page_counts_deliveries_and_shows_each_attempt(
    console: httpx.AsyncClient, client: httpx.AsyncClient, relay: Relay
) -> None:
    async with running_receiver() as receiver:
        webhook_id, delivery_id = await failed_delivery(client, receiver, relay)
    await signed_in(console)
    html = (await console.get("/console/webhooks")).text
    assert (stat(html, webhook_id, "delivered"), stat(html, webhook_id, "failed")) == (0, 1)
    row = re.search(
        rf'<tr data-delivery-id="{delivery_id}" data-status="failed">.*?</tr>', html, re.S
    )
    assert row is not None
    assert "HTTP 400" in row.group(0) and 'data-action="retry"' in row.group(0)


async def test_retry_from_the_console_sends_the_delivery_again(
    console: httpx.AsyncClient, client: httpx.AsyncClient, relay: Relay
) -> None:
    async with running_receiver() as receiver:
        webhook_id, delivery_id = await failed_delivery(client, receiver, relay)
        await signed_in(console)
        csrf = await page_csrf(console, "/console/webhooks")
        response = await console.post(
            f"/console/deliveries/{delivery_id}/retry",
            data={"csrf_token": csrf, "back": "/console/webhooks"},
        )
        assert response.status_code == 303
        assert response.headers["location"] == f"/console/webhooks?notice=retried&n={delivery_id}"
        (delivery,) = await deliveries(client, webhook_id)
        assert delivery["status"] == "pending"
        assert await relay.run_once() == 1
    html = (await console.get("/console/webhooks")).text
    assert (stat(html, webhook_id, "delivered"), stat(html, webhook_id, "failed")) == (1, 0)
    assert len(receiver.requests) == 2


async def test_recover_queues_a_subscriptions_failed_deliveries_again(
    console: httpx.AsyncClient, client: httpx.AsyncClient, relay: Relay
) -> None:
    async with running_receiver() as receiver:
        webhook_id, _ = await failed_delivery(client, receiver, relay)
    await signed_in(console)
    csrf = await page_csrf(console, "/console/webhooks")
    response = await console.post(
        f"/console/webhooks/{webhook_id}/recover", data={"csrf_token": csrf, "since": "1d"}
    )
    assert response.status_code == 303
    assert response.headers["location"] == "/console/webhooks?notice=recovered&n=1"
    (delivery,) = await deliveries(client, webhook_id)
    assert delivery["status"] == "pending"
    unknown = await console.post(
        "/console/webhooks/999/recover", data={"csrf_token": csrf, "since": "1d"}
    )
    assert unknown.status_code == 404


async def test_robot_tokens_in_webhook_urls_are_not_shown(
    console: httpx.AsyncClient, client: httpx.AsyncClient
) -> None:
    await subscribe(
        client, "http://127.0.0.1:9/robot/send?access_token=SECRET123", format="dingtalk"
    )
    await signed_in(console)
    html = (await console.get("/console/webhooks")).text
    assert "SECRET123" not in html and "http://127.0.0.1:9/robot/send?…" in html


# --------------------------------------------------------------------------- connections, imports


async def upload(console: httpx.AsyncClient, path: Path, **fields: str) -> httpx.Response:
    csrf = await page_csrf(console, "/console/connections")
    with path.open("rb") as handle:
        return await console.post(
            "/console/imports",
            data={"csrf_token": csrf, **fields},
            files={"file": (path.name, handle, "text/csv")},
        )


async def test_an_uploaded_export_is_imported_like_post_v1_imports(
    app: FastAPI, console: httpx.AsyncClient, client: httpx.AsyncClient, tmp_path: Path
) -> None:
    records = list(exports.iter_orders(5, 120, start=datetime(2026, 10, 20), days=30))
    path = exports.write_orders_csv(tmp_path / "订单导出.csv", records)
    await signed_in(console)
    response = await upload(console, path, store_id="pdd-1")
    assert response.status_code == 303
    import_id = int(response.headers["location"].rsplit("n=", 1)[1])
    await app.state.imports.wait()
    body = await get_json(client, f"/v1/imports/{import_id}")
    assert (body["status"], body["store_id"], body["format"]) == (
        "succeeded",
        "pdd-1",
        "pdd-orders",
    )
    expected = exports.expected_order_events(records, "pdd-1")
    assert body["events"]["accepted"] == len(expected)

    page = (await console.get(response.headers["location"])).text
    assert f'<tr data-import-id="{import_id}" data-status="succeeded">' in page
    assert "订单导出.csv" in page
    detail = await console.get(f"/console/imports/{import_id}")
    assert detail.status_code == 200 and "pdd-orders" in detail.text


async def test_a_file_that_is_no_export_is_refused_on_the_page(
    console: httpx.AsyncClient, client: httpx.AsyncClient, tmp_path: Path
) -> None:
    path = tmp_path / "notes.csv"
    path.write_text("name,colour\nshirt,red\n", encoding="utf-8")
    await signed_in(console)
    response = await upload(console, path, store_id="pdd-1")
    assert response.status_code == 422
    assert 'data-upload-error="1"' in response.text
    assert (await get_json(client, "/v1/imports"))["items"] == []
    no_store = await upload(
        console,
        exports.write_orders_csv(tmp_path / "o.csv", exports.orders(3, 5)),
    )
    assert no_store.status_code == 422 and 'data-upload-error="1"' in no_store.text


async def test_an_upload_needs_an_admin_key(
    console: httpx.AsyncClient, client: httpx.AsyncClient, tmp_path: Path
) -> None:
    key = (await client.post("/v1/api-keys", json={"name": "r", "scopes": ["read"]})).json()
    await signed_in(console, key["key"])
    path = exports.write_orders_csv(tmp_path / "o.csv", exports.orders(3, 5))
    response = await upload(console, path, store_id="pdd-1")
    assert response.status_code == 403
    assert (await get_json(client, "/v1/imports"))["items"] == []


async def test_connections_show_their_status_and_the_development_key_once(
    console: httpx.AsyncClient, client: httpx.AsyncClient
) -> None:
    await signed_in(console)
    assert 'data-notice="development-key"' not in (await console.get("/console/connections")).text
    for store in ("s1", "s2"):
        response = await client.post(
            "/v1/connections",
            json={
                "platform": "pdd",
                "store_id": store,
                "client_id": "c",
                "client_secret": "secret",
                "access_token": "token",
            },
        )
        assert response.status_code == 201, response.text
    html = (await console.get("/console/connections")).text
    assert html.count('data-notice="development-key"') == 1
    rows = re.findall(r'<tr data-connection-id="\d+" data-status="([^"]+)">', html)
    assert rows == ["backfilling", "backfilling"]
    assert "secret" not in html.replace("secret.key", "").replace("SECRET_KEY", "")
