"""A group robot's HTTP 200 is not a delivery until its body says so.

DingTalk, WeCom and Feishu answer 200 with the verdict in the body. Only errcode
(or Feishu's code) 0 is delivered; a throttle is retried after the robot's pause;
a refusal that only the robot's settings can lift fails at once, in the robot's
own words, and flags the subscription; any other refusal fails the message.
"""

from __future__ import annotations

from datetime import timedelta

import httpx
import orjson
import pytest

from app.clock import FrozenClock
from app.webhooks.backoff import classify_response
from app.webhooks.relay import Relay
from app.webhooks.robot_answers import read_robot_answer
from tests.fakes.receiver import Receiver, Reply
from tests.support import breach_demotion, only_delivery, parse_time, subscribe, webhook


def _body(**fields: object) -> bytes:
    return orjson.dumps(fields)


# --------------------------------------------------------------------------- the rule (pure)


@pytest.mark.parametrize(
    ("format", "body", "verdict", "outcome"),
    [
        ("dingtalk", _body(errcode=0, errmsg="ok"), "accepted", "delivered"),
        ("dingtalk", _body(errcode=310000, errmsg="sign not match"), "misconfigured", "refused"),
        (
            "dingtalk",
            _body(errcode=310000, errmsg="keywords not in content"),
            "misconfigured",
            "refused",
        ),
        (
            "dingtalk",
            _body(errcode=300001, errmsg="token is not exist"),
            "misconfigured",
            "refused",
        ),
        ("dingtalk", _body(errcode=130101, errmsg="send too fast"), "throttled", "retry"),
        ("dingtalk", _body(errcode=-1, errmsg="系统繁忙"), "busy", "retry"),
        ("dingtalk", _body(errcode=40035, errmsg="缺少参数 json"), "refused", "failed"),
        ("wecom", _body(errcode=0, errmsg="ok"), "accepted", "delivered"),
        ("wecom", _body(errcode=93000, errmsg="invalid webhook url"), "misconfigured", "refused"),
        ("wecom", _body(errcode=45009, errmsg="api freq out of limit"), "throttled", "retry"),
        ("feishu", _body(code=0, msg="success"), "accepted", "delivered"),
        ("feishu", _body(StatusCode=0, StatusMessage="success"), "accepted", "delivered"),
        ("feishu", _body(code=19021, msg="sign match fail"), "misconfigured", "refused"),
        ("feishu", _body(code=19022, msg="Ip Not Allowed"), "misconfigured", "refused"),
        ("feishu", _body(code=19024, msg="Key Words Not Found"), "misconfigured", "refused"),
        ("feishu", _body(code=11232, msg="frequency limited"), "throttled", "retry"),
        ("feishu", _body(code=9499, msg="Bad Request"), "refused", "failed"),
        ("dingtalk", b"<html>ok</html>", "unreadable", "retry"),
        ("wecom", b"", "unreadable", "retry"),
        ("feishu", _body(data={}), "unreadable", "retry"),
        ("dingtalk", _body(errcode="310000", errmsg="sign not match"), "misconfigured", "refused"),
        ("dingtalk", _body(errcode=True), "unreadable", "retry"),
    ],
)
def test_only_a_zero_code_is_a_delivery(
    format: str, body: bytes, verdict: str, outcome: str
) -> None:
    answer = read_robot_answer(format, body)
    assert answer.verdict == verdict
    assert classify_response(200, answer.describe(format), answer) == outcome


def test_the_robots_pause_is_its_own() -> None:
    assert read_robot_answer("dingtalk", _body(errcode=130101)).pause == timedelta(minutes=10)
    assert read_robot_answer("wecom", _body(errcode=45009)).pause == timedelta(minutes=1)
    assert read_robot_answer("feishu", _body(code=11232)).pause == timedelta(minutes=1)


def test_a_non_2xx_answer_keeps_its_http_meaning() -> None:
    assert classify_response(503, None, None) == "retry"
    assert classify_response(404, None, None) == "failed"


# --------------------------------------------------------------------------- end to end


async def test_a_robot_refusing_the_signature_fails_at_once_and_flags_the_webhook(
    client: httpx.AsyncClient, receiver: Receiver, relay: Relay, clock: FrozenClock
) -> None:
    sub = await subscribe(client, receiver.url, format="dingtalk", secret="SECwrong")
    receiver.default = Reply(200, body=_body(errcode=310000, errmsg="sign not match"))
    await breach_demotion(client, "s1")

    assert await relay.run_once() == 1

    failed = await only_delivery(client, sub["id"])
    assert failed["status"] == "failed" and failed["attempts"] == 1
    assert failed["next_attempt_at"] is None
    assert "310000" in failed["last_error"] and "sign not match" in failed["last_error"]
    [attempt] = failed["attempt_log"]
    assert attempt["status_code"] == 200 and "sign not match" in attempt["error"]
    flagged = await webhook(client, sub["id"])
    assert flagged["last_refusal"]["code"] == "310000"
    assert flagged["last_refusal"]["message"] == "sign not match"
    assert parse_time(flagged["last_refusal"]["at"]) == clock.now()
    assert flagged["failing_since"] is not None and flagged["enabled"] is True

    # The seller fixes the secret: the flag is cleared, and the robot's next "ok" proves it.
    patched = await client.patch(f"/v1/webhooks/{sub['id']}", json={"secret": "SECright"})
    assert patched.json()["last_refusal"] is None


async def test_a_test_ping_a_robot_refuses_says_so_in_its_words(
    client: httpx.AsyncClient, receiver: Receiver
) -> None:
    sub = await subscribe(client, receiver.url, format="feishu", secret="bad")
    receiver.reply(Reply(200, body=_body(code=19024, msg="Key Words Not Found")))

    answer = (await client.post(f"/v1/webhooks/{sub['id']}/test")).json()

    assert answer["outcome"] == "refused"
    assert answer["delivery"]["status"] == "failed"
    assert "Key Words Not Found" in answer["delivery"]["attempt_log"][0]["error"]
    assert (await webhook(client, sub["id"]))["last_refusal"]["code"] == "19024"


async def test_a_delivered_message_clears_the_refusal(
    client: httpx.AsyncClient, receiver: Receiver
) -> None:
    sub = await subscribe(client, receiver.url, format="wecom")
    receiver.reply(Reply(200, body=_body(errcode=93000, errmsg="invalid webhook url")))
    await client.post(f"/v1/webhooks/{sub['id']}/test")
    assert (await webhook(client, sub["id"]))["last_refusal"]["code"] == "93000"

    ok = (await client.post(f"/v1/webhooks/{sub['id']}/test")).json()

    assert ok["outcome"] == "delivered"
    cleared = await webhook(client, sub["id"])
    assert cleared["last_refusal"] is None and cleared["failing_since"] is None


@pytest.mark.parametrize(
    ("format", "body", "pause"),
    [
        ("dingtalk", _body(errcode=130101, errmsg="send too fast"), timedelta(minutes=10)),
        ("wecom", _body(errcode=45009, errmsg="api freq out of limit"), timedelta(minutes=1)),
        ("feishu", _body(code=11232, msg="frequency limited"), timedelta(minutes=1)),
    ],
)
async def test_a_throttled_message_waits_the_robots_pause_and_then_goes(
    client: httpx.AsyncClient,
    receiver: Receiver,
    relay: Relay,
    clock: FrozenClock,
    format: str,
    body: bytes,
    pause: timedelta,
) -> None:
    sub = await subscribe(client, receiver.url, format=format)
    receiver.reply(Reply(200, body=body))
    await breach_demotion(client, "s1")
    start = clock.now()

    await relay.run_once()

    waiting = await only_delivery(client, sub["id"])
    assert waiting["status"] == "pending" and waiting["delivered_at"] is None
    assert parse_time(waiting["next_attempt_at"]) >= start + pause
    assert (await webhook(client, sub["id"]))["last_refusal"] is None
    clock.set(start + pause - timedelta(seconds=1))
    assert await relay.run_once() == 0
    clock.set(parse_time(waiting["next_attempt_at"]))
    assert await relay.run_once() == 1
    assert (await only_delivery(client, sub["id"]))["status"] == "delivered"


async def test_a_robot_refusing_the_message_fails_it_without_flagging_the_webhook(
    client: httpx.AsyncClient, receiver: Receiver, relay: Relay
) -> None:
    sub = await subscribe(client, receiver.url, format="feishu")
    receiver.reply(Reply(200, body=_body(code=9499, msg="Bad Request")))
    await breach_demotion(client, "s1")

    await relay.run_once()

    failed = await only_delivery(client, sub["id"])
    assert failed["status"] == "failed" and "Bad Request" in failed["last_error"]
    assert (await webhook(client, sub["id"]))["last_refusal"] is None


async def test_a_robot_answer_without_a_code_is_not_a_delivery(
    client: httpx.AsyncClient, receiver: Receiver, relay: Relay
) -> None:
    sub = await subscribe(client, receiver.url, format="dingtalk")
    receiver.reply(Reply(200, body=b"<html>captive portal</html>"))
    await breach_demotion(client, "s1")

    await relay.run_once()

    retrying = await only_delivery(client, sub["id"])
    assert retrying["status"] == "pending" and retrying["attempts"] == 1


async def test_a_standard_webhook_is_judged_by_its_status_alone(
    client: httpx.AsyncClient, receiver: Receiver, relay: Relay
) -> None:
    sub = await subscribe(client, receiver.url)
    receiver.reply(Reply(200, body=_body(errcode=310000, errmsg="not a robot")))
    await breach_demotion(client, "s1")

    await relay.run_once()

    assert (await only_delivery(client, sub["id"]))["status"] == "delivered"
