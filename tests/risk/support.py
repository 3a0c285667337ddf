"""Shared builders and readers for the risk-engine tests (DESIGN §4–5, §7).

Stores are built from plain events: ``n`` orders paid on 2026-11-20 and quality
refunds requested on 2026-11-25 (Shanghai), so with the frozen clock at
2026-11-26T04:00Z (12:00 in Shanghai) everything sits inside the default window.
Order ``i`` is ``o{i}`` on product ``p{i % products}``; its refund is ``r{i}``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import httpx

from tests.conftest import post_events
from tests.factories import paid, refund_event, requested

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
