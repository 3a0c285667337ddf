"""The relay against a real loopback receiver: retries, backoff, leases, disabling.

Time only moves when the test moves the FrozenClock; ``run_once`` is one relay
round. Nothing sleeps: a retry becomes due because the clock reached it.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from typing import Any

import httpx
from fastapi import FastAPI

from app.clock import FrozenClock
from app.webhooks.backoff import JITTER, MAX_ATTEMPTS, RETRY_SCHEDULE
from app.webhooks.models import WebhookSubscription
from app.webhooks.relay import Relay, send
from tests.fakes.receiver import HANG, Received, Receiver, Reply
from tests.support import (
    breach_demotion,
    deliveries,
    only_delivery,
    parse_time,
    subscribe,
    verify_standard,
    webhook,
)


def assert_delay(delivery: dict[str, Any], since: datetime, scheduled: timedelta) -> None:
    """next_attempt_at is ``since + scheduled`` within the ±10 % jitter."""
    delay = parse_time(delivery["next_attempt_at"]) - since
    assert scheduled * (1 - JITTER) <= delay <= scheduled * (1 + JITTER), delay


async def run_when_due(relay: Relay, clock: FrozenClock, delivery: dict[str, Any]) -> int:
    """Move the clock to the delivery's next attempt and run one relay round."""
    clock.set(parse_time(delivery["next_attempt_at"]))
    return await relay.run_once()


# --------------------------------------------------------------------------- retries


async def test_503s_are_retried_on_schedule_with_the_same_webhook_id(
    client: httpx.AsyncClient, receiver: Receiver, relay: Relay, clock: FrozenClock
) -> None:
    sub = await subscribe(client, receiver.url)
    receiver.fail_next(2, 503)
    await breach_demotion(client, "s1")
    start = clock.now()

    assert await relay.run_once() == 1
    first = await only_delivery(client, sub["id"])
    assert first["status"] == "pending" and first["attempts"] == 1
    assert first["last_status_code"] == 503
    assert [a["status_code"] for a in first["attempt_log"]] == [503]
    assert first["attempt_log"][0]["response_excerpt"] == "try later"
    assert_delay(first, start, timedelta(seconds=5))
    assert await relay.run_once() == 0  # not due yet

    assert await run_when_due(relay, clock, first) == 1
    second = await only_delivery(client, sub["id"])
    assert second["attempts"] == 2
    assert [a["status_code"] for a in second["attempt_log"]] == [503, 503]
    assert_delay(second, clock.now(), timedelta(minutes=5))

    assert await run_when_due(relay, clock, second) == 1
    done = await only_delivery(client, sub["id"])
    assert done["status"] == "delivered" and done["attempts"] == 3
    assert [a["status_code"] for a in done["attempt_log"]] == [503, 503, 200]
    assert parse_time(done["delivered_at"]) == clock.now()

    assert len(receiver.requests) == 3
    assert {r.headers["webhook-id"] for r in receiver.requests} == {done["msg_id"]}
    assert len({r.body for r in receiver.requests}) == 1  # the same message each time
    # Each attempt is signed afresh with its own time, and verifies at that time.
    stamps = [int(r.headers["webhook-timestamp"]) for r in receiver.requests]
    assert stamps == sorted(stamps) and len(set(stamps)) == 3
    body = verify_standard(sub["secret"], receiver.requests[-1], clock.now())
    assert body["type"] == "alert.breached"
    assert (await webhook(client, sub["id"]))["failing_since"] is None  # the success cleared it


async def test_retry_after_is_honoured_when_longer_than_the_schedule(
    client: httpx.AsyncClient, receiver: Receiver, relay: Relay, clock: FrozenClock
) -> None:
    sub = await subscribe(client, receiver.url)
    receiver.fail_next(1, 429, {"Retry-After": "120"})
    await breach_demotion(client, "s1")
    start = clock.now()

    await relay.run_once()

    retrying = await only_delivery(client, sub["id"])
    assert retrying["attempt_log"][0]["status_code"] == 429
    assert parse_time(retrying["next_attempt_at"]) == start + timedelta(seconds=120)
    clock.set(start + timedelta(seconds=119))
    assert await relay.run_once() == 0
    clock.set(start + timedelta(seconds=120))
    assert await relay.run_once() == 1
    assert (await only_delivery(client, sub["id"]))["status"] == "delivered"


async def test_a_receiver_that_is_down_is_retried_with_the_error_logged(
    client: httpx.AsyncClient, receiver: Receiver, relay: Relay, clock: FrozenClock
) -> None:
    sub = await subscribe(client, receiver.url)
    await breach_demotion(client, "s1")
    await receiver.stop()

    await relay.run_once()

    down = await only_delivery(client, sub["id"])
    assert down["status"] == "pending"
    (attempt,) = down["attempt_log"]
    assert attempt["status_code"] is None
    assert attempt["error"].startswith("network error: ConnectError")
    assert down["last_error"] == attempt["error"]
    assert_delay(down, clock.now(), timedelta(seconds=5))
    assert parse_time((await webhook(client, sub["id"]))["failing_since"]) == clock.now()

    await receiver.start()  # back on the same port
    await run_when_due(relay, clock, down)

    back = await only_delivery(client, sub["id"])
    assert back["status"] == "delivered"
    assert [a["status_code"] for a in back["attempt_log"]] == [None, 200]
    assert (await webhook(client, sub["id"]))["failing_since"] is None


async def test_a_hanging_receiver_times_out_and_is_retried(
    app: FastAPI, client: httpx.AsyncClient, receiver: Receiver, clock: FrozenClock
) -> None:
    quick = app.state.settings.model_copy(update={"webhook_timeout_seconds": 0.2})
    relay = Relay(app.state.db, quick, clock)
    sub = await subscribe(client, receiver.url)
    receiver.reply(HANG)
    await breach_demotion(client, "s1")

    await relay.run_once()

    hung = await only_delivery(client, sub["id"])
    assert hung["status"] == "pending"
    (attempt,) = hung["attempt_log"]
    assert attempt["status_code"] is None
    assert attempt["error"] == "timeout: ReadTimeout"
    assert 150 <= attempt["duration_ms"] < 5000
    await run_when_due(relay, clock, hung)
    assert (await only_delivery(client, sub["id"]))["status"] == "delivered"


async def test_a_4xx_other_than_410_fails_at_once_without_disabling(
    client: httpx.AsyncClient, receiver: Receiver, relay: Relay
) -> None:
    sub = await subscribe(client, receiver.url)
    receiver.reply(Reply(400, body=b"bad signature"))
    await breach_demotion(client, "s1")

    await relay.run_once()

    failed = await only_delivery(client, sub["id"])
    assert failed["status"] == "failed" and failed["attempts"] == 1
    assert failed["attempt_log"][0]["response_excerpt"] == "bad signature"
    assert (await webhook(client, sub["id"]))["enabled"] is True


async def test_410_fails_the_delivery_and_disables_the_subscription(
    client: httpx.AsyncClient, receiver: Receiver, relay: Relay
) -> None:
    sub = await subscribe(client, receiver.url)
    receiver.reply(Reply(410))
    await breach_demotion(client, "s1")

    await relay.run_once()

    gone = await only_delivery(client, sub["id"])
    assert gone["status"] == "failed"
    assert gone["attempt_log"][0]["status_code"] == 410
    state = await webhook(client, sub["id"])
    assert state["enabled"] is False
    assert "410" in state["disabled_reason"]

    await breach_demotion(client, "s2")  # a disabled subscription gets no new deliveries
    assert len(await deliveries(client, sub["id"])) == 1
    assert len(receiver.requests) == 1


async def test_pending_deliveries_of_a_disabled_subscription_are_cancelled_not_sent(
    client: httpx.AsyncClient, receiver: Receiver, relay: Relay
) -> None:
    sub = await subscribe(client, receiver.url)
    await breach_demotion(client, "s1")
    await client.patch(f"/v1/webhooks/{sub['id']}", json={"enabled": False})

    await relay.run_once()

    cancelled = await only_delivery(client, sub["id"])
    assert cancelled["status"] == "cancelled"
    assert receiver.requests == []


async def test_after_the_last_scheduled_retry_the_delivery_fails_with_every_attempt_logged(
    client: httpx.AsyncClient, receiver: Receiver, relay: Relay, clock: FrozenClock
) -> None:
    sub = await subscribe(client, receiver.url)
    receiver.default = Reply(503, body=b"down")
    await breach_demotion(client, "s1")

    await relay.run_once()
    for scheduled in RETRY_SCHEDULE:
        current = await only_delivery(client, sub["id"])
        assert current["status"] == "pending"
        assert_delay(current, clock.now(), scheduled)
        assert await run_when_due(relay, clock, current) == 1

    failed = await only_delivery(client, sub["id"])
    assert failed["status"] == "failed"
    assert failed["attempts"] == MAX_ATTEMPTS == 8
    assert [a["status_code"] for a in failed["attempt_log"]] == [503] * 8
    assert len(receiver.requests) == 8
    assert len({r.headers["webhook-id"] for r in receiver.requests}) == 1
    clock.advance(timedelta(days=1))
    assert await relay.run_once() == 0  # failed is final
    # ~27 h of failures is not yet 5 days: the subscription stays enabled.
    assert (await webhook(client, sub["id"]))["enabled"] is True

    receiver.default = Reply(200)
    response = await client.post(f"/v1/deliveries/{failed['id']}/retry")
    assert response.status_code == 200, response.text
    requeued = response.json()
    assert requeued["status"] == "pending"
    assert parse_time(requeued["next_attempt_at"]) == clock.now()

    assert await relay.run_once() == 1
    delivered = await only_delivery(client, sub["id"])
    assert delivered["status"] == "delivered"
    assert len(delivered["attempt_log"]) == 9
    assert receiver.requests[-1].headers["webhook-id"] == failed["msg_id"]


async def test_retry_of_an_unknown_delivery_is_404_and_of_one_in_flight_is_409(
    client: httpx.AsyncClient, receiver: Receiver, relay: Relay, clock: FrozenClock
) -> None:
    sub = await subscribe(client, receiver.url)
    await breach_demotion(client, "s1")
    await relay.claim(clock.now())
    delivery = await only_delivery(client, sub["id"])
    assert delivery["status"] == "delivering"

    missing = await client.post("/v1/deliveries/999999/retry")
    in_flight = await client.post(f"/v1/deliveries/{delivery['id']}/retry")

    assert missing.status_code == 404 and missing.json()["code"] == "delivery_not_found"
    assert in_flight.status_code == 409 and in_flight.json()["code"] == "delivery_in_flight"


async def test_recover_requeues_failed_deliveries_created_since_a_time(
    client: httpx.AsyncClient, receiver: Receiver, relay: Relay, clock: FrozenClock
) -> None:
    sub = await subscribe(client, receiver.url)
    receiver.default = Reply(400)
    start = clock.now()
    await breach_demotion(client, "s1")
    await relay.run_once()
    clock.advance(timedelta(hours=1))
    await breach_demotion(client, "s2")
    await relay.run_once()
    assert {d["status"] for d in await deliveries(client, sub["id"])} == {"failed"}
    receiver.default = Reply(200)

    since = (start + timedelta(minutes=30)).isoformat()
    response = await client.post(f"/v1/webhooks/{sub['id']}/recover", json={"since": since})
    assert response.status_code == 200, response.text
    assert response.json() == {"requeued": 1}
    assert await relay.run_once() == 1
    by_store = {
        r.json()["data"]["store_id"]: r.headers["webhook-id"] for r in receiver.requests[2:]
    }
    assert list(by_store) == ["s2"]

    response = await client.post(
        f"/v1/webhooks/{sub['id']}/recover", json={"since": start.isoformat()}
    )
    assert response.json() == {"requeued": 1}
    await relay.run_once()
    assert {d["status"] for d in await deliveries(client, sub["id"])} == {"delivered"}
    assert [r.json()["data"]["store_id"] for r in receiver.requests[2:]] == ["s2", "s1"]


async def test_recover_refuses_a_naive_since_and_an_unknown_webhook(
    client: httpx.AsyncClient,
) -> None:
    sub = await subscribe(client, "http://127.0.0.1:9/hook")

    naive = await client.post(
        f"/v1/webhooks/{sub['id']}/recover", json={"since": "2026-11-25T00:00:00"}
    )
    unknown = await client.post(
        "/v1/webhooks/999999/recover", json={"since": "2026-11-25T00:00:00Z"}
    )

    assert naive.status_code == 422 and naive.json()["code"] == "validation_error"
    assert [(e["field"], e["code"]) for e in naive.json()["errors"]] == [
        ("body.since", "naive_since")
    ]
    assert unknown.status_code == 404 and unknown.json()["code"] == "webhook_not_found"


async def test_a_subscription_failing_for_five_days_is_disabled(
    client: httpx.AsyncClient, receiver: Receiver, relay: Relay, clock: FrozenClock
) -> None:
    sub = await subscribe(client, receiver.url)
    receiver.default = Reply(503)
    start = clock.now()
    await breach_demotion(client, "s1")
    await relay.run_once()
    assert parse_time((await webhook(client, sub["id"]))["failing_since"]) == start

    clock.set(start + timedelta(days=5) - timedelta(seconds=1))
    await breach_demotion(client, "s2")
    await relay.run_once()
    almost = await webhook(client, sub["id"])
    assert almost["enabled"] is True
    assert parse_time(almost["failing_since"]) == start  # the streak goes on

    clock.set(start + timedelta(days=5))
    await breach_demotion(client, "s3")
    await relay.run_once()
    disabled = await webhook(client, sub["id"])
    assert disabled["enabled"] is False
    assert disabled["disabled_reason"] == "failing for 5 days in a row"

    # While disabled, the retries that fall due are cancelled, not sent.
    sent = len(receiver.requests)
    clock.advance(timedelta(hours=1))
    assert await relay.run_once() == 3
    assert {d["status"] for d in await deliveries(client, sub["id"])} == {"cancelled"}
    assert len(receiver.requests) == sent

    # Re-enabling clears the streak; recover sends what was held back.
    receiver.default = Reply(200)
    patched = await client.patch(f"/v1/webhooks/{sub['id']}", json={"enabled": True})
    assert patched.json()["disabled_reason"] is None and patched.json()["failing_since"] is None
    response = await client.post(
        f"/v1/webhooks/{sub['id']}/recover", json={"since": start.isoformat()}
    )
    assert response.json() == {"requeued": 3}
    assert await relay.run_once() == 3
    assert {d["status"] for d in await deliveries(client, sub["id"])} == {"delivered"}
    stores = sorted(r.json()["data"]["store_id"] for r in receiver.requests[sent:])
    assert stores == ["s1", "s2", "s3"]


async def test_a_success_between_failures_restarts_the_five_day_streak(
    client: httpx.AsyncClient, receiver: Receiver, relay: Relay, clock: FrozenClock
) -> None:
    sub = await subscribe(client, receiver.url)
    start = clock.now()
    receiver.fail_next(1, 503)
    await breach_demotion(client, "s1")
    await relay.run_once()

    clock.set(start + timedelta(days=1))
    await breach_demotion(client, "s2")
    await relay.run_once()  # s1's retry and s2: both delivered
    assert (await webhook(client, sub["id"]))["failing_since"] is None

    receiver.default = Reply(503)
    clock.set(start + timedelta(days=5))
    await breach_demotion(client, "s3")
    await relay.run_once()
    state = await webhook(client, sub["id"])
    assert state["enabled"] is True
    assert parse_time(state["failing_since"]) == clock.now()


# --------------------------------------------------------------------------- leases


async def test_a_delivery_claimed_by_a_dead_process_is_delivered_after_its_lease(
    app: FastAPI, client: httpx.AsyncClient, receiver: Receiver, relay: Relay, clock: FrozenClock
) -> None:
    sub = await subscribe(client, receiver.url)
    await breach_demotion(client, "s1")
    lease = timedelta(seconds=app.state.settings.relay_lease_seconds)

    dead = Relay(app.state.db, app.state.settings, clock)
    (claimed,) = await dead.claim(clock.now())  # ...and the process dies mid-send
    held = await only_delivery(client, sub["id"])
    assert held["status"] == "delivering" and held["next_attempt_at"] is None

    assert await relay.run_once() == 0  # the lease protects it from a second sender
    clock.advance(lease)
    assert await relay.run_once() == 0  # still leased at the very instant of expiry
    clock.advance(timedelta(seconds=1))
    assert await relay.run_once() == 1

    delivered = await only_delivery(client, sub["id"])
    assert delivered["status"] == "delivered"
    # The dead process's attempt is logged and counted, then the real one.
    assert delivered["attempts"] == 2
    lost, sent = delivered["attempt_log"]
    assert lost["status_code"] is None and "lease expired" in lost["error"]
    assert sent["status_code"] == 200
    (request,) = receiver.requests
    assert request.headers["webhook-id"] == claimed.msg_id == delivered["msg_id"]


async def test_a_send_whose_outcome_was_never_recorded_is_repeated_with_the_same_webhook_id(
    app: FastAPI, client: httpx.AsyncClient, receiver: Receiver, relay: Relay, clock: FrozenClock
) -> None:
    sub = await subscribe(client, receiver.url)
    await breach_demotion(client, "s1")
    settings = app.state.settings

    dead = Relay(app.state.db, settings, clock)
    claimed = await dead.claim(clock.now())
    async with app.state.db.transaction() as session:
        stored = await session.get(WebhookSubscription, sub["id"])
    await send(stored, claimed, now=clock.now(), settings=settings)  # sent, then the crash
    assert len(receiver.requests) == 1

    clock.advance(timedelta(seconds=settings.relay_lease_seconds + 1))
    assert await relay.run_once() == 1

    delivered = await only_delivery(client, sub["id"])
    # The unrecorded send is logged as a lost attempt, then the resend.
    assert delivered["status"] == "delivered" and delivered["attempts"] == 2
    # At least once: the receiver saw it twice, and can tell by the webhook-id.
    first, second = receiver.requests
    assert first.headers["webhook-id"] == second.headers["webhook-id"] == delivered["msg_id"]
    assert first.body == second.body


async def test_concurrent_relays_never_send_one_delivery_twice(
    app: FastAPI, client: httpx.AsyncClient, receiver: Receiver, clock: FrozenClock
) -> None:
    sub = await subscribe(client, receiver.url)
    await breach_demotion(client, *[f"c{i}" for i in range(6)])
    relays = [Relay(app.state.db, app.state.settings, clock) for _ in range(3)]

    handled = await asyncio.gather(*(r.run_once() for r in relays))

    assert sum(handled) == 6
    assert len(receiver.requests) == 6
    assert len({r.headers["webhook-id"] for r in receiver.requests}) == 6
    assert {d["status"] for d in await deliveries(client, sub["id"])} == {"delivered"}


async def test_a_webhook_deleted_while_its_delivery_is_in_flight_does_not_break_the_round(
    client: httpx.AsyncClient, receiver: Receiver, relay: Relay
) -> None:
    doomed = await subscribe(client, receiver.url + "?doomed=1")
    other = await subscribe(client, receiver.url)
    await breach_demotion(client, "s1")
    answers: list[int] = []

    async def delete_doomed(request: Received) -> None:
        if "doomed" in request.query:
            answers.append((await client.delete(f"/v1/webhooks/{doomed['id']}")).status_code)

    receiver.on_request = delete_doomed

    assert await relay.run_once() == 2

    assert answers == [204]
    assert (await client.get(f"/v1/webhooks/{doomed['id']}")).status_code == 404
    assert (await only_delivery(client, other["id"]))["status"] == "delivered"
    assert await relay.run_once() == 0


# --------------------------------------------------------------------------- SSRF at send time


async def test_the_ssrf_guard_runs_again_at_send_time(
    app: FastAPI, client: httpx.AsyncClient, receiver: Receiver, clock: FrozenClock
) -> None:
    sub = await subscribe(client, receiver.url)  # allowed when subscribed...
    await breach_demotion(client, "s1")
    strict = app.state.settings.model_copy(update={"webhook_allowed_networks": ""})

    await Relay(app.state.db, strict, clock).run_once()  # ...but no longer

    refused = await only_delivery(client, sub["id"])
    assert refused["status"] == "pending"
    assert refused["attempt_log"][0]["error"].startswith("url refused (loopback_address)")
    assert receiver.requests == []
