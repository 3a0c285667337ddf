"""End to end: events in, alert, outbox row, relay, a real HTTP receiver on loopback.

The relay is driven by hand (``run_once``) on the test's FrozenClock, so every
step is deterministic and nothing sleeps.
"""

from __future__ import annotations

from datetime import timedelta

import httpx
import pytest
from standardwebhooks.webhooks import WebhookVerificationError

from app.clock import FrozenClock
from app.webhooks.relay import Relay
from tests.fakes.receiver import Receiver
from tests.support import (
    breach_demotion,
    deliveries,
    dingtalk_signature,
    feishu_signature,
    only_delivery,
    parse_time,
    subscribe,
    verify_standard,
)

DESIGN_DATA_KEYS = {
    "alert_id",
    "store_id",
    "product_id",
    "tier",
    "state",
    "previous_state",
    "figures",
    "refunds_until_breach",
    "orders_to_recover",
    "pending_refunds",
    "top_products",
    "top_reasons",
    "advice",
}


# --------------------------------------------------------------------------- standard


async def test_breach_is_in_the_outbox_at_once_and_the_relay_delivers_a_verifiable_body(
    client: httpx.AsyncClient, receiver: Receiver, relay: Relay, clock: FrozenClock
) -> None:
    sub = await subscribe(client, receiver.url)
    secret = sub["secret"]

    await breach_demotion(client, "s1")

    pending = await only_delivery(client, sub["id"])
    assert pending["status"] == "pending"
    assert pending["event_type"] == "alert.breached"
    assert pending["attempts"] == 0 and pending["attempt_log"] == []
    assert parse_time(pending["next_attempt_at"]) == clock.now()
    (alert,) = (await client.get("/v1/alerts")).json()["items"]
    assert pending["alert_id"] == alert["alert_id"]
    assert receiver.requests == []  # nothing is sent inside the ingest

    assert await relay.run_once() == 1

    (request,) = receiver.requests
    assert request.method == "POST" and request.path == "/hook"
    assert request.headers["content-type"] == "application/json"
    assert request.headers["webhook-id"] == pending["msg_id"]
    assert request.headers["webhook-timestamp"] == str(int(clock.now().timestamp()))
    body = verify_standard(secret, request, clock.now())
    assert body["type"] == "alert.breached"
    assert parse_time(body["timestamp"]) == clock.now()
    data = body["data"]
    assert data.keys() >= DESIGN_DATA_KEYS
    assert data["alert_id"] == alert["alert_id"]
    assert (data["store_id"], data["product_id"], data["tier"]) == ("s1", None, "demotion")
    assert (data["state"], data["previous_state"]) == ("breached", "ok")
    assert data["figures"]["orders"] == 10 and data["figures"]["quality_refunds"] == 6
    assert data["figures"]["quality_refund_rate"] == "0.600000"
    assert data["refunds_until_breach"] == 0
    # 6 refunds stay under 1 % only from 600 orders: 600 - 10 + 1 more are needed.
    assert data["orders_to_recover"] == 591
    assert {r["refund_id"] for r in data["pending_refunds"]} == {f"s1-r{i}" for i in range(6)}
    assert data["top_reasons"] == [{"reason": "quality_issue", "count": 6}]
    assert len(data["top_products"]) == 5
    assert data["advice"]["zh"] and data["advice"]["en"]

    delivered = await only_delivery(client, sub["id"])
    assert delivered["status"] == "delivered"
    assert delivered["attempts"] == 1
    assert parse_time(delivered["delivered_at"]) == clock.now()
    assert delivered["next_attempt_at"] is None
    (attempt,) = delivered["attempt_log"]
    assert attempt["status_code"] == 200
    assert attempt["error"] is None
    assert isinstance(attempt["duration_ms"], int) and attempt["duration_ms"] >= 0
    assert attempt["digest_size"] == 1
    assert await relay.run_once() == 0  # delivered once, not again


async def test_a_body_signed_with_another_secret_does_not_verify(
    client: httpx.AsyncClient, receiver: Receiver, relay: Relay, clock: FrozenClock
) -> None:
    await subscribe(client, receiver.url)
    other = (await subscribe(client, "http://127.0.0.1:9/unused"))["secret"]
    await breach_demotion(client, "s1")
    await relay.run_once()

    with pytest.raises(WebhookVerificationError):
        verify_standard(other, receiver.requests[0], clock.now())


async def test_every_matching_subscription_gets_its_own_delivery_and_msg_id(
    client: httpx.AsyncClient, receiver: Receiver, relay: Relay
) -> None:
    first = await subscribe(client, receiver.url)
    second = await subscribe(client, receiver.url + "?second=1")

    await breach_demotion(client, "s1")
    assert await relay.run_once() == 2

    ids = {r.headers["webhook-id"] for r in receiver.requests}
    assert len(receiver.requests) == 2 and len(ids) == 2
    for sub in (first, second):
        assert (await only_delivery(client, sub["id"]))["status"] == "delivered"


# --------------------------------------------------------------------------- silences, filters


async def test_an_alert_matching_an_active_silence_creates_no_delivery(
    client: httpx.AsyncClient, receiver: Receiver, relay: Relay, clock: FrozenClock
) -> None:
    sub = await subscribe(client, receiver.url)
    until = (clock.now() + timedelta(days=1)).isoformat()
    response = await client.post(
        "/v1/silences", json={"store_id": "s1", "tier": "demotion", "until": until}
    )
    assert response.status_code == 201, response.text

    await breach_demotion(client, "s1", "s2")

    alerts = {a["store_id"]: a for a in (await client.get("/v1/alerts")).json()["items"]}
    assert alerts["s1"]["silenced"] is True  # the state and the alert are kept
    (only,) = await deliveries(client, sub["id"])
    assert only["alert_id"] == alerts["s2"]["alert_id"]
    await relay.run_once()
    assert [r.json()["data"]["store_id"] for r in receiver.requests] == ["s2"]


async def test_an_expired_silence_holds_nothing_back(
    client: httpx.AsyncClient, receiver: Receiver, clock: FrozenClock
) -> None:
    sub = await subscribe(client, receiver.url)
    until = (clock.now() + timedelta(minutes=5)).isoformat()
    await client.post("/v1/silences", json={"store_id": "s1", "until": until})
    clock.advance(timedelta(minutes=5))

    await breach_demotion(client, "s1")

    assert len(await deliveries(client, sub["id"])) == 1


async def test_filters_route_alerts_only_to_matching_subscriptions(
    client: httpx.AsyncClient, receiver: Receiver, relay: Relay
) -> None:
    for_s2 = await subscribe(client, receiver.url + "?for=s2", store_ids=["s2"])
    for_delisting = await subscribe(client, receiver.url + "?for=delisting", tiers=["delisting"])
    for_resolved = await subscribe(
        client, receiver.url + "?for=resolved", alert_types=["alert.resolved"]
    )
    for_s1_breaches = await subscribe(
        client,
        receiver.url + "?for=s1",
        store_ids=["s1"],
        tiers=["demotion"],
        alert_types=["alert.breached"],
    )

    await breach_demotion(client, "s1")

    assert await deliveries(client, for_s2["id"]) == []
    assert await deliveries(client, for_delisting["id"]) == []
    assert await deliveries(client, for_resolved["id"]) == []
    assert len(await deliveries(client, for_s1_breaches["id"])) == 1

    await breach_demotion(client, "s2")

    assert len(await deliveries(client, for_s2["id"])) == 1
    await relay.run_once()
    sent = sorted((r.query["for"], r.json()["data"]["store_id"]) for r in receiver.requests)
    assert sent == [("s1", "s1"), ("s2", "s2")]


async def test_a_disabled_subscription_gets_no_delivery(
    client: httpx.AsyncClient, receiver: Receiver
) -> None:
    sub = await subscribe(client, receiver.url, enabled=False)
    await breach_demotion(client, "s1")
    assert await deliveries(client, sub["id"]) == []


# --------------------------------------------------------------------------- group robots


async def test_dingtalk_gets_a_signed_url_and_chinese_markdown_naming_store_and_tier(
    client: httpx.AsyncClient, receiver: Receiver, relay: Relay, clock: FrozenClock
) -> None:
    robot_secret = "SEC0123456789abcdef0123456789abcdef"
    sub = await subscribe(
        client, receiver.url + "?access_token=tok123", format="dingtalk", secret=robot_secret
    )
    assert sub["secret"] == robot_secret and sub["has_secret"] is True

    await breach_demotion(client, "s1")
    await relay.run_once()

    (request,) = receiver.requests
    query = request.query
    assert query["access_token"] == "tok123"
    assert query["timestamp"] == str(int(clock.now().timestamp() * 1000))
    assert query["sign"] == dingtalk_signature(robot_secret, query["timestamp"])
    assert "webhook-signature" not in request.headers
    body = request.json()
    assert body["msgtype"] == "markdown"
    title, text = body["markdown"]["title"], body["markdown"]["text"]
    assert "店铺 s1" in title and "降权" in title and "已触发" in title
    assert "店铺 s1" in text and "降权" in text and "品质退款" in text
    assert "s1-r0" in text  # a pending refund that can still be turned
    assert (await only_delivery(client, sub["id"]))["status"] == "delivered"


async def test_more_than_twenty_alerts_for_one_dingtalk_robot_go_as_one_digest(
    client: httpx.AsyncClient, receiver: Receiver, relay: Relay
) -> None:
    sub = await subscribe(client, receiver.url, format="dingtalk", secret="SECdigest")
    stores = [f"d{i:02d}" for i in range(21)]

    await breach_demotion(client, *stores)
    assert await relay.run_once() == 21

    (request,) = receiver.requests
    text = request.json()["markdown"]["text"]
    assert "共 21 条" in text
    items = await deliveries(client, sub["id"])
    assert len(items) == 21
    assert {d["status"] for d in items} == {"delivered"}
    assert all(d["attempt_log"][0]["digest_size"] == 21 for d in items)
    assert await relay.run_once() == 0


async def test_a_dingtalk_robot_never_gets_more_than_twenty_messages_a_minute(
    client: httpx.AsyncClient, receiver: Receiver, relay: Relay, clock: FrozenClock
) -> None:
    sub = await subscribe(client, receiver.url, format="dingtalk")

    await breach_demotion(client, *[f"a{i:02d}" for i in range(15)])
    await relay.run_once()
    assert len(receiver.requests) == 15  # room for all: one message each

    clock.advance(timedelta(seconds=1))
    await breach_demotion(client, *[f"b{i:02d}" for i in range(10)])
    await relay.run_once()

    # 5 slots left for 10 alerts: one digest, not 10 more messages.
    assert len(receiver.requests) == 16
    assert "共 10 条" in receiver.requests[-1].json()["markdown"]["text"]
    items = await deliveries(client, sub["id"])
    assert {d["status"] for d in items} == {"delivered"}


async def test_two_subscriptions_to_one_robot_share_its_twenty_a_minute(
    client: httpx.AsyncClient, receiver: Receiver, relay: Relay, clock: FrozenClock
) -> None:
    # One group robot, two subscriptions (say, one per store team): the limit is the
    # robot's, so together they never send it more than 20 messages a minute.
    team_a = await subscribe(client, receiver.url, format="dingtalk", store_ids=["a00", "a01"])
    team_b = await subscribe(client, receiver.url, format="dingtalk")

    await breach_demotion(client, *[f"x{i:02d}" for i in range(9)])
    await relay.run_once()
    assert len(receiver.requests) == 9  # team_b's 9 alerts, one message each

    clock.advance(timedelta(seconds=1))
    await breach_demotion(client, "a00", "a01", *[f"y{i:02d}" for i in range(9)])
    await relay.run_once()

    # 11 slots left, 13 deliveries due (2 for team_a, 11 for team_b): one digest.
    assert len(receiver.requests) == 10
    assert "共 13 条" in receiver.requests[-1].json()["markdown"]["text"]
    for sub in (team_a, team_b):
        assert {d["status"] for d in await deliveries(client, sub["id"])} == {"delivered"}


async def test_a_robot_at_its_limit_holds_further_alerts_until_a_slot_frees(
    client: httpx.AsyncClient, receiver: Receiver, relay: Relay, clock: FrozenClock
) -> None:
    sub = await subscribe(client, receiver.url, format="dingtalk")
    start = clock.now()
    await breach_demotion(client, *[f"a{i:02d}" for i in range(20)])
    await relay.run_once()
    assert len(receiver.requests) == 20  # the whole minute's allowance

    clock.advance(timedelta(seconds=1))
    await breach_demotion(client, "late")
    assert await relay.run_once() == 1
    assert len(receiver.requests) == 20  # held back, not dropped, not sent
    (held,) = await deliveries(client, sub["id"], status="pending")
    free_at = parse_time(held["next_attempt_at"])
    # The window is widened by a 5 % safety margin: 63 s after the first sends.
    assert free_at == start + timedelta(seconds=63)
    assert held["attempts"] == 0 and held["attempt_log"] == []

    clock.set(free_at - timedelta(microseconds=1))
    assert await relay.run_once() == 0
    clock.set(free_at)
    await relay.run_once()
    assert len(receiver.requests) == 21
    assert "店铺 late" in receiver.requests[-1].json()["markdown"]["text"]
    assert {d["status"] for d in await deliveries(client, sub["id"])} == {"delivered"}


async def test_wecom_markdown_stays_within_4096_bytes_even_as_a_digest(
    client: httpx.AsyncClient, receiver: Receiver, relay: Relay, clock: FrozenClock
) -> None:
    sub = await subscribe(client, receiver.url + "?key=abc", format="wecom")
    assert sub["secret"] is None and sub["has_secret"] is False

    await breach_demotion(client, "w00")
    await relay.run_once()
    clock.advance(timedelta(seconds=1))
    await breach_demotion(client, *[f"w{i:02d}" for i in range(1, 25)])
    await relay.run_once()

    single, digest = receiver.requests
    for request in (single, digest):
        assert request.query == {"key": "abc"}
        body = request.json()
        assert body["msgtype"] == "markdown"
        assert len(body["markdown"]["content"].encode()) <= 4096
    assert "店铺 w00" in single.json()["markdown"]["content"]
    assert "共 24 条" in digest.json()["markdown"]["content"]
    assert {d["status"] for d in await deliveries(client, sub["id"])} == {"delivered"}


async def test_feishu_body_carries_timestamp_and_sign(
    client: httpx.AsyncClient, receiver: Receiver, relay: Relay, clock: FrozenClock
) -> None:
    sub = await subscribe(client, receiver.url, format="feishu", secret="feishu-secret")

    await breach_demotion(client, "s1")
    await relay.run_once()

    (request,) = receiver.requests
    body = request.json()
    assert body["timestamp"] == str(int(clock.now().timestamp()))
    assert body["sign"] == feishu_signature("feishu-secret", body["timestamp"])
    assert body["msg_type"] == "interactive"
    assert "店铺 s1" in body["card"]["header"]["title"]["content"]
    assert "降权" in body["card"]["elements"][0]["content"]
    assert (await only_delivery(client, sub["id"]))["status"] == "delivered"


async def test_more_than_five_alerts_at_once_for_feishu_go_as_one_digest(
    client: httpx.AsyncClient, receiver: Receiver, relay: Relay
) -> None:
    sub = await subscribe(client, receiver.url, format="feishu")

    await breach_demotion(client, *[f"f{i}" for i in range(6)])
    await relay.run_once()

    (request,) = receiver.requests
    assert "共 6 条" in request.json()["card"]["header"]["title"]["content"]
    assert {d["status"] for d in await deliveries(client, sub["id"])} == {"delivered"}


# --------------------------------------------------------------------------- test ping


async def test_test_ping_is_sent_at_once_and_returns_the_logged_attempt(
    client: httpx.AsyncClient, receiver: Receiver, clock: FrozenClock
) -> None:
    sub = await subscribe(client, receiver.url)

    response = await client.post(f"/v1/webhooks/{sub['id']}/test")

    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["outcome"] == "delivered"
    delivery = answer["delivery"]
    assert delivery["event_type"] == "webhook.test"
    assert delivery["status"] == "delivered"
    (attempt,) = delivery["attempt_log"]
    assert attempt["status_code"] == 200 and attempt["error"] is None
    (request,) = receiver.requests
    assert request.headers["webhook-id"] == delivery["msg_id"]
    body = verify_standard(sub["secret"], request, clock.now())
    assert body["type"] == "webhook.test"
    assert body["data"]["subscription_id"] == str(sub["id"])


async def test_test_ping_reports_a_failing_endpoint(
    client: httpx.AsyncClient, receiver: Receiver
) -> None:
    sub = await subscribe(client, receiver.url)
    receiver.fail_next(1, 503)

    answer = (await client.post(f"/v1/webhooks/{sub['id']}/test")).json()

    assert answer["outcome"] == "retry"
    assert answer["delivery"]["attempt_log"][0]["status_code"] == 503


async def test_test_ping_to_a_dingtalk_robot_is_signed_and_chinese(
    client: httpx.AsyncClient, receiver: Receiver
) -> None:
    sub = await subscribe(client, receiver.url, format="dingtalk", secret="SECping")

    answer = (await client.post(f"/v1/webhooks/{sub['id']}/test")).json()

    assert answer["outcome"] == "delivered"
    (request,) = receiver.requests
    assert request.query["sign"] == dingtalk_signature("SECping", request.query["timestamp"])
    assert "测试消息" in request.json()["markdown"]["text"]


async def test_a_retried_robot_test_ping_never_swallows_real_alerts_in_a_digest(
    client: httpx.AsyncClient, receiver: Receiver, relay: Relay, clock: FrozenClock
) -> None:
    sub = await subscribe(client, receiver.url, format="dingtalk")
    receiver.fail_next(1, 503)
    answer = (await client.post(f"/v1/webhooks/{sub['id']}/test")).json()
    assert answer["outcome"] == "retry"  # the ping is now a pending delivery, first by id

    await breach_demotion(client, *[f"t{i:02d}" for i in range(20)])
    clock.advance(timedelta(seconds=10))
    await relay.run_once()  # 21 due, 19 slots: one digest

    digest = receiver.requests[-1].json()["markdown"]["text"]
    assert "共 20 条" in digest
    assert all(f"店铺 t{i:02d}" in digest for i in range(20))
