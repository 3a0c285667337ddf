"""Logs: JSON lines with request ids, carried into the ingest and the relay; never a secret."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator
from typing import Any

import httpx
import orjson
import pytest
from fastapi import FastAPI

from app.clock import FrozenClock
from app.ops.logs import JsonFormatter, SecretMask, TextFormatter, mask_secrets
from app.webhooks.relay import Relay
from tests.conftest import ADMIN_KEY
from tests.fakes.receiver import running_receiver
from tests.support import breach_demotion, paid, subscribe

ROBOT_TOKEN = "9f8e7d6c5b4a39281706f5e4d3c2b1a0"
SECRETS = [
    (f"Authorization: Bearer {ADMIN_KEY}", ADMIN_KEY),
    (f"{{'authorization': 'Bearer {ADMIN_KEY}'}}", ADMIN_KEY),
    ("Authorization: Basic dXNlcjpwYXNz", "dXNlcjpwYXNz"),
    (f"key {ADMIN_KEY} was refused", ADMIN_KEY),
    (f"POST https://oapi.dingtalk.com/robot/send?access_token={ROBOT_TOKEN}", ROBOT_TOKEN),
    (f"https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key={ROBOT_TOKEN}&x=1", ROBOT_TOKEN),
    (f"https://open.feishu.cn/open-apis/bot/v2/hook/{ROBOT_TOKEN}", ROBOT_TOKEN),
    (f"…&timestamp=1700000000&sign=abc%2B{ROBOT_TOKEN}", ROBOT_TOKEN),
    (f"client_secret={ROBOT_TOKEN}&access_token=tok{ROBOT_TOKEN}", ROBOT_TOKEN),
    (f'{{"secret": "whsec_{ROBOT_TOKEN}"}}', ROBOT_TOKEN),
    (f"signing with whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw{ROBOT_TOKEN}", ROBOT_TOKEN),
    (f"dingtalk secret SEC{ROBOT_TOKEN}", ROBOT_TOKEN),
    (f"postgresql://refundwatch:{ROBOT_TOKEN}@db:5432/rw", ROBOT_TOKEN),
    (f'"password": "{ROBOT_TOKEN}"', ROBOT_TOKEN),
]


@pytest.mark.parametrize(("line", "secret"), SECRETS)
def test_no_secret_survives_the_mask(line: str, secret: str) -> None:
    masked = mask_secrets(line)
    assert secret not in masked
    assert "***" in masked


def test_the_mask_leaves_ordinary_lines_alone() -> None:
    line = "POST /v1/events 200 store_id=s1 key_count=3 monkey=banana"
    assert mask_secrets(line) == line


class Captured:
    """Every line our handler would write, as JSON objects."""

    def __init__(self, stream: io.StringIO) -> None:
        self.stream = stream

    @property
    def text(self) -> str:
        return self.stream.getvalue()

    @property
    def lines(self) -> list[dict[str, Any]]:
        return [orjson.loads(line) for line in self.text.splitlines() if line.strip()]

    def with_message(self, logger: str) -> list[dict[str, Any]]:
        return [line for line in self.lines if line["logger"] == logger]


@pytest.fixture
def json_logs() -> Iterator[Captured]:
    """Our JSON handler (mask included) on the ``refundwatch`` loggers, at debug."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(SecretMask())
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("refundwatch")
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    try:
        yield Captured(stream)
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


async def test_each_request_is_one_json_line_with_its_id_and_no_key(
    client: httpx.AsyncClient, json_logs: Captured
) -> None:
    response = await client.post(
        "/v1/events", json={"events": [paid("o1")]}, headers={"X-Request-ID": "req-abc.1"}
    )
    assert response.status_code == 200
    assert response.headers["x-request-id"] == "req-abc.1"
    logging.getLogger("refundwatch.test").warning(
        "a careless line: %s via %s",
        f"Bearer {ADMIN_KEY}",
        f"https://oapi.dingtalk.com/robot/send?access_token={ROBOT_TOKEN}",
        extra={"url": f"https://open.feishu.cn/open-apis/bot/v2/hook/{ROBOT_TOKEN}"},
    )

    (line,) = [r for r in json_logs.with_message("refundwatch.http") if r["path"] == "/v1/events"]
    assert line["request_id"] == "req-abc.1"
    assert (line["method"], line["status"]) == ("POST", 200)
    assert isinstance(line["duration_ms"], float) and line["duration_ms"] >= 0
    assert line["level"] == "info" and line["ts"].endswith("+00:00")
    # The ingest transaction's line carries the same id (group commit ran it in its task).
    (ingest,) = json_logs.with_message("refundwatch.ingest")
    assert ingest["request_id"] == "req-abc.1"
    assert ingest["door"] == "http" and ingest["accepted"] == 1
    assert ADMIN_KEY not in json_logs.text and ROBOT_TOKEN not in json_logs.text


async def test_merged_requests_name_every_request_in_their_transaction(
    client: httpx.AsyncClient, json_logs: Captured
) -> None:
    import asyncio

    await asyncio.gather(
        *(
            client.post(
                "/v1/events", json={"events": [paid(f"m{i}")]}, headers={"X-Request-ID": f"m{i}"}
            )
            for i in range(6)
        )
    )
    named = {
        request_id
        for line in json_logs.with_message("refundwatch.ingest")
        for request_id in line["request_id"].split(",")
    }
    assert named == {f"m{i}" for i in range(6)}


async def test_a_request_id_is_made_when_none_or_an_implausible_one_is_sent(
    client: httpx.AsyncClient,
) -> None:
    made = (await client.get("/healthz")).headers["x-request-id"]
    assert len(made) == 24 and int(made, 16) >= 0
    for bad in ("has space", "x" * 129, 'quote"d', "ünï".encode()):
        response = await client.get("/healthz", headers={"X-Request-ID": bad})
        assert response.headers["x-request-id"] != bad
        assert len(response.headers["x-request-id"]) == 24


async def test_an_unexpected_error_is_answered_and_logged_with_its_id(
    app: FastAPI, json_logs: Captured
) -> None:
    async def boom() -> None:
        raise RuntimeError(f"exploded near {ADMIN_KEY}")

    app.add_api_route("/test-boom", boom)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app, raise_app_exceptions=False),
        base_url="http://test",
    ) as plain:
        response = await plain.get("/test-boom", headers={"X-Request-ID": "boom-1"})
    assert response.status_code == 500
    assert response.headers["x-request-id"] == "boom-1"
    (error,) = [line for line in json_logs.lines if line["message"] == "unhandled error"]
    assert error["request_id"] == "boom-1"
    assert "RuntimeError" in error["exception"]
    assert ADMIN_KEY not in json_logs.text
    (line,) = [r for r in json_logs.with_message("refundwatch.http") if r["path"] == "/test-boom"]
    assert line["status"] == 500 and line["level"] == "warning"


async def test_the_relay_line_names_the_request_that_raised_the_alert(
    app: FastAPI, client: httpx.AsyncClient, clock: FrozenClock, json_logs: Captured
) -> None:
    relay = Relay(app.state.db, app.state.settings, clock)
    async with running_receiver() as receiver:
        robot = f"{receiver.url}?access_token={ROBOT_TOKEN}"
        await subscribe(client, robot, format="dingtalk", secret=f"SEC{ROBOT_TOKEN}")
        client.headers["X-Request-ID"] = "breach-7"
        await breach_demotion(client, "s1")
        del client.headers["X-Request-ID"]
        assert await relay.run_once() == 1

    (line,) = json_logs.with_message("refundwatch.relay")
    assert line["request_id"] == "breach-7"
    assert line["format"] == "dingtalk" and line["outcome"] == "delivered"
    assert line["alert_ids"] and line["status_code"] == 200
    assert ROBOT_TOKEN not in json_logs.text


def test_text_lines_carry_the_request_id_and_extras() -> None:
    record = logging.LogRecord("refundwatch.http", logging.INFO, "", 0, "GET / 200", None, None)
    record.request_id = "r-1"
    record.status = 200
    assert SecretMask().filter(record)
    line = TextFormatter().format(record)
    assert line.endswith("refundwatch.http GET / 200 request_id=r-1 status=200")
