"""Shared helpers of the test suite: event builders, API readers, assertions.

Events are built as a test tells its story (``paid``, ``requested``,
``refund_event``); ``post_events`` sends them; the readers and builders below
set up stores at a chosen risk and read back what the API says.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
from collections.abc import Iterable
from datetime import datetime
from typing import Any
from unittest import mock

import httpx
from standardwebhooks import Webhook

from tests.fakes.receiver import Received

_ids = itertools.count(1)


def _event(type_: str, at: str, store: str, **fields: Any) -> dict[str, Any]:
    return {
        "event_id": fields.pop("event_id", None) or f"ev-{next(_ids)}",
        "type": type_,
        "store_id": store,
        "occurred_at": at,
        **{k: v for k, v in fields.items() if v is not None},
    }


def paid(
    order: str,
    product: str = "p1",
    at: str = "2026-11-25T10:00:00+08:00",
    store: str = "s1",
    **kw: Any,
) -> dict[str, Any]:
    return _event("order.paid", at, store, order_id=order, product_id=product, **kw)


def requested(
    refund: str,
    order: str,
    reason: str = "quality_issue",
    at: str = "2026-11-25T12:00:00+08:00",
    store: str = "s1",
    kind: str = "refund_only",
    **kw: Any,
) -> dict[str, Any]:
    return _event(
        "refund.requested",
        at,
        store,
        refund_id=refund,
        order_id=order,
        kind=kind,
        reason=reason,
        **kw,
    )


def refund_event(
    type_: str, refund: str, at: str = "2026-11-25T15:00:00+08:00", store: str = "s1", **kw: Any
) -> dict[str, Any]:
    return _event(f"refund.{type_}", at, store, refund_id=refund, **kw)


async def post_events(client: httpx.AsyncClient, events: list[dict[str, Any]]) -> dict[str, Any]:
    response = await client.post("/v1/events", json={"events": events})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


PROBLEM_JSON = "application/problem+json"
PAID_AT = "2026-11-20T10:00:00+08:00"
REQUESTED_AT = "2026-11-25T12:00:00+08:00"
LATER = "2026-11-25T18:00:00+08:00"
AT_RISK = ("approaching", "breached")
CALM = ("ok", "unrated")


def orders(
    store: str, n: int, *, start: int = 0, products: int = 1, at: str = PAID_AT
) -> list[dict[str, Any]]:
    """``n`` paid orders o{start}…, spread round-robin over ``products`` products."""
    return [
        paid(f"o{i}", product=f"p{i % products}", at=at, store=store)
        for i in range(start, start + n)
    ]


def quality_refunds(
    store: str,
    order_indexes: Iterable[int],
    *,
    reason: str = "quality_issue",
    at: str = REQUESTED_AT,
) -> list[dict[str, Any]]:
    """One refund ``r{i}`` on each order ``o{i}``, with a quality reason by default."""
    return [requested(f"r{i}", f"o{i}", reason=reason, at=at, store=store) for i in order_indexes]


def withdrawals(
    store: str, order_indexes: Iterable[int], *, at: str = LATER
) -> list[dict[str, Any]]:
    return [refund_event("withdrawn", f"r{i}", at=at, store=store) for i in order_indexes]


async def build_store(
    client: httpx.AsyncClient, store: str, n_orders: int, n_quality: int, *, products: int = 1
) -> None:
    """A store with ``n_orders`` orders and quality refunds on the first ``n_quality``."""
    body = await post_events(
        client,
        orders(store, n_orders, products=products) + quality_refunds(store, range(n_quality)),
    )
    assert body["accepted"] == n_orders + n_quality, body


async def get_json(client: httpx.AsyncClient, url: str, **params: Any) -> Any:
    response = await client.get(url, params=params)
    assert response.status_code == 200, response.text
    return response.json()


async def metrics(client: httpx.AsyncClient, store: str, **params: Any) -> dict[str, Any]:
    body: dict[str, Any] = await get_json(client, f"/v1/stores/{store}/metrics", **params)
    return body


async def store_tiers(client: httpx.AsyncClient, store: str) -> dict[str, dict[str, Any]]:
    """The store-scope tiers of GET /metrics, by tier name."""
    return {t["tier"]: t for t in (await metrics(client, store))["tiers"]}


async def product_tiers(
    client: httpx.AsyncClient, store: str
) -> dict[str, dict[str, dict[str, Any]]]:
    """{product_id: {tier: status}} from GET /products (every page)."""
    found: dict[str, dict[str, dict[str, Any]]] = {}
    params: dict[str, Any] = {"limit": 100}
    while True:
        page = await get_json(client, f"/v1/stores/{store}/products", **params)
        for item in page["items"]:
            found[item["product_id"]] = {t["tier"]: t for t in item["tiers"]}
        if page["next_cursor"] is None:
            return found
        params["cursor"] = page["next_cursor"]


async def all_alerts(client: httpx.AsyncClient, **params: Any) -> list[dict[str, Any]]:
    """Every alert matching the filters, newest first, across all pages."""
    items: list[dict[str, Any]] = []
    query: dict[str, Any] = {"limit": 100, **params}
    while True:
        page = await get_json(client, "/v1/alerts", **query)
        items += page["items"]
        if page["next_cursor"] is None:
            return items
        query["cursor"] = page["next_cursor"]


async def alert_types(client: httpx.AsyncClient, **params: Any) -> list[str]:
    """The types of the matching alerts, oldest first."""
    return [a["type"] for a in reversed(await all_alerts(client, **params))]


def assert_problem(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM_JSON)
    body: dict[str, Any] = response.json()
    assert body["status"] == status and body["code"] == code, body
    assert body["title"] and body["detail"]
    return body


def assert_alert_chain(
    alerts: list[dict[str, Any]], current: str, where: tuple[str, str | None, str]
) -> None:
    """One (scope, tier)'s alert history (oldest first, no reminders) is a chain of state
    changes, each from the state the one before left, ending in ``current``: the latest
    alert is in that state when it is at risk; when calm, there is none or a resolve.
    ``where`` names the scope in failure messages."""
    state = "ok"  # a scope starts ok
    for alert in alerts:
        kind = alert["type"]
        assert kind != "alert.reminder", (where, alert)
        previous = alert["previous_state"]
        assert previous != alert["state"], (where, alert)
        assert previous == state or (previous in CALM and state in CALM), (where, alerts)
        if kind == "alert.resolved":
            assert previous in AT_RISK and alert["state"] in CALM, (where, alert)
        else:
            assert kind == f"alert.{alert['state']}", (where, alert)
        assert alert["data"]["state"] == alert["state"], (where, alert)
        state = alert["state"]
    if current in AT_RISK:
        assert alerts and alerts[-1]["state"] == current, (where, current, alerts)
    else:
        assert not alerts or alerts[-1]["type"] == "alert.resolved", (where, current, alerts)


def verify_standard(secret: str, request: Received, at: datetime) -> Any:
    """``standardwebhooks.Webhook(secret).verify`` as a receiver whose clock reads ``at``.

    The library checks ``webhook-timestamp`` against the wall clock (±5 min); the
    tests run on a FrozenClock, so the receiver's "now" is the frozen time.
    """

    class _At(datetime):
        @classmethod
        def now(cls, tz: Any = None) -> datetime:  # type: ignore[override]
            return at

    with mock.patch("standardwebhooks.webhooks.datetime", _At):
        return Webhook(secret).verify(request.body, request.headers)


def dingtalk_signature(secret: str, timestamp_ms: str) -> str:
    """DingTalk 加签, computed independently of app.webhooks.signing."""
    digest = hmac.new(
        secret.encode(), f"{timestamp_ms}\n{secret}".encode(), hashlib.sha256
    ).digest()
    return base64.b64encode(digest).decode()


def feishu_signature(secret: str, timestamp_s: str) -> str:
    """Feishu 签名校验: the string to sign is the HMAC key, the message is empty."""
    digest = hmac.new(f"{timestamp_s}\n{secret}".encode(), b"", hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


# --------------------------------------------------------------------------- API helpers


async def breach_demotion(client: httpx.AsyncClient, *stores: str) -> None:
    """Ingest, in one batch, events that push each store past the demotion line.

    10 orders on 10 products and 6 quality refunds: 60 % ≥ 1 % and 6 ≥ 5 breaches
    demotion (store scope) and nothing else (1 refund per product, 6 < 10 for the
    listing ban), so each store gives exactly one ``alert.breached``.
    """
    events: list[dict[str, Any]] = []
    for store in stores:
        events += [paid(f"{store}-o{i}", product=f"p{i}", store=store) for i in range(10)]
        events += [requested(f"{store}-r{i}", f"{store}-o{i}", store=store) for i in range(6)]
    answer = await post_events(client, events)
    assert answer["accepted"] == len(events), answer


async def subscribe(client: httpx.AsyncClient, url: str, **fields: Any) -> dict[str, Any]:
    response = await client.post("/v1/webhooks", json={"url": url, **fields})
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def deliveries(client: httpx.AsyncClient, webhook_id: int, **params: Any) -> list[Any]:
    response = await client.get(f"/v1/webhooks/{webhook_id}/deliveries", params=params)
    assert response.status_code == 200, response.text
    items: list[Any] = response.json()["items"]
    return items


async def only_delivery(client: httpx.AsyncClient, webhook_id: int) -> dict[str, Any]:
    (item,) = await deliveries(client, webhook_id)
    result: dict[str, Any] = item
    return result


async def webhook(client: httpx.AsyncClient, webhook_id: int) -> dict[str, Any]:
    response = await client.get(f"/v1/webhooks/{webhook_id}")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))
