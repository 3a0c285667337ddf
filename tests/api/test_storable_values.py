"""A value the database cannot hold is a 422 that names the field, never a 500.

The classes: integers beyond the 32-bit columns (paths, bodies, cursors), text
PostgreSQL cannot store (NUL, lone surrogates) in bodies, query parameters and
paths, days and instants at the ends of the calendar, and names no file system
takes as a time zone. Every case runs on both databases: SQLite stores most of
these happily, PostgreSQL refuses them, and the answer must not depend on which.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import httpx
import pytest

from tests.support import paid, post_events

BIG = [2**31, 2**63, 10**30]
NUL = "s\x00"
SURROGATE = "\ud800"
YEAR_1 = "0001-01-01"
YEAR_9999 = "9999-12-31"


def _cursor(position: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(position).encode()).decode().rstrip("=")


def _tier(**changes: Any) -> list[dict[str, Any]]:
    return [
        {"tier": "demotion", "scope": "store", "rate_threshold": "0.01", "min_count": 5, **changes}
    ]


# (method, url, json body, params, the field the 422 must name)
Case = tuple[str, str, Any, dict[str, Any] | None, str | None]

PATH_IDS: list[Case] = [
    (method, url.format(n=n), body, None, None)
    for n in BIG
    for method, url, body in [
        ("GET", "/v1/webhooks/{n}", None),
        ("PATCH", "/v1/webhooks/{n}", {"enabled": True}),
        ("DELETE", "/v1/webhooks/{n}", None),
        ("GET", "/v1/webhooks/{n}/deliveries", None),
        ("POST", "/v1/webhooks/{n}/test", None),
        ("POST", "/v1/webhooks/{n}/rotate-secret", None),
        ("POST", "/v1/webhooks/{n}/recover", {"since": "2026-11-25T00:00:00Z"}),
        ("POST", "/v1/deliveries/{n}/retry", None),
        ("GET", "/v1/policies/{n}", None),
        ("DELETE", "/v1/policies/{n}", None),
        ("DELETE", "/v1/silences/{n}", None),
        ("DELETE", "/v1/api-keys/{n}", None),
        ("GET", "/v1/connections/{n}", None),
        ("DELETE", "/v1/connections/{n}", None),
        ("GET", "/v1/imports/{n}", None),
        ("GET", "/v1/imports/{n}/errors", None),
    ]
]

BODY_INTS: list[Case] = (
    [
        ("POST", "/v1/policies", {"name": f"p-{field}-{n}", field: n}, None, f"body.{field}")
        for n in BIG
        for field in ("min_orders", "warn_headroom", "reminder_interval_seconds", "window_days")
    ]
    + [
        (
            "POST",
            "/v1/policies",
            {"name": f"tier-{n}", "tiers": _tier(min_count=n)},
            None,
            "body.tiers",
        )
        for n in BIG
    ]
    + [("PATCH", "/v1/stores/s1", {"policy_id": n}, None, "body.policy_id") for n in BIG]
    + [
        ("POST", "/v1/stores/s1/what-if", {field: n}, None, f"body.{field}")
        for n in BIG
        for field in ("extra_quality_refunds", "extra_orders")
    ]
)

CURSORS: list[Case] = [
    ("GET", url, None, {"cursor": _cursor(position)}, "query.cursor")
    for position in [2**31, 2**63, -1, "s\x00", 1.5]
    for url in ("/v1/webhooks", "/v1/policies", "/v1/alerts", "/v1/stores", "/v1/api-keys")
]

TEXT: list[Case] = (
    [
        (
            "POST",
            "/v1/silences",
            {"until": "2099-01-01T00:00:00Z", field: bad},
            None,
            f"body.{field}",
        )
        for bad in (NUL, SURROGATE)
        for field in ("store_id", "product_id", "comment")
    ]
    + [("POST", "/v1/policies", {"name": bad}, None, "body.name") for bad in (NUL, SURROGATE)]
    + [
        (
            "POST",
            "/v1/policies",
            {"name": "aliases", "reason_aliases": {bad: "other"}},
            None,
            "body.reason_aliases",
        )
        for bad in (NUL, SURROGATE)
    ]
    + [
        (
            "POST",
            "/v1/webhooks",
            {"url": "http://127.0.0.1:9/h", field: value},
            None,
            f"body.{field}",
        )
        for bad in (NUL, SURROGATE)
        for field, value in (("description", bad), ("secret", bad), ("store_ids", [bad]))
    ]
    + [
        ("POST", "/v1/api-keys", {"name": bad, "scopes": ["read"]}, None, "body.name")
        for bad in (NUL, SURROGATE)
    ]
    + [
        ("PATCH", "/v1/stores/s1", {field: bad}, None, f"body.{field}")
        for bad in (NUL, SURROGATE)
        for field in ("name", "timezone")
    ]
    + [
        ("POST", "/v1/stores/s1/what-if", {"product_id": bad}, None, "body.product_id")
        for bad in (NUL, SURROGATE)
    ]
    + [
        ("GET", url, None, {name: NUL}, f"query.{name}")
        for url, name in [
            ("/v1/alerts", "store_id"),
            ("/v1/alerts", "product_id"),
            ("/v1/risk", "store_id"),
            ("/v1/imports", "store_id"),
            ("/v1/connections", "store_id"),
        ]
    ]
    + [
        ("GET", "/v1/stores/s%001", None, None, "path.store_id"),
        ("GET", "/v1/stores/s%001/metrics", None, None, "path.store_id"),
        ("PATCH", "/v1/stores/s%001", {"name": "x"}, None, "path.store_id"),
        ("POST", "/v1/stores/s%001/what-if", {}, None, "path.store_id"),
        ("GET", "/v1/alerts/a%00b", None, None, "path.alert_id"),
    ]
)

CALENDAR: list[Case] = (
    [
        ("GET", f"/v1/stores/s1/{route}", None, {"as_of": day}, "query.as_of")
        for day in (YEAR_1, YEAR_9999)
        for route in ("metrics", "products", "refunds")
    ]
    + [
        ("POST", "/v1/stores/s1/what-if", {"as_of": day}, None, "body.as_of")
        for day in (YEAR_1, YEAR_9999)
    ]
    + [
        ("GET", "/v1/alerts", None, {"since": at}, "query.since")
        for at in ("0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00", "0.5")
    ]
    + [
        ("POST", "/v1/silences", {"until": at}, None, "body.until")
        for at in ("9999-12-31T23:59:59-14:00", "2100-01-01T00:00:00Z")
    ]
    + [
        ("POST", "/v1/webhooks/1/recover", {"since": at}, None, "body.since")
        for at in ("0001-01-01T05:00:00+08:00", "9999-12-31T23:59:59-14:00")
    ]
    + [
        (
            "POST",
            "/v1/connections",
            {
                "platform": "pdd",
                "store_id": "s1",
                "client_id": "c",
                "client_secret": "s",
                "access_token": "t",
                "sync_from": at,
            },
            None,
            "body.sync_from",
        )
        for at in ("0001-01-01T05:00:00+08:00", "9999-12-31T23:59:59-14:00")
    ]
)

TIME_ZONES: list[Case] = [
    ("PATCH", "/v1/stores/s1", {"timezone": zone}, None, "body.timezone")
    for zone in ("A" * 10_000, "Asia", "Asia/" + "x" * 300, "../../etc/passwd", "")
]

CASES = PATH_IDS + BODY_INTS + CURSORS + TEXT + CALENDAR + TIME_ZONES


def _id(case: Case) -> str:
    method, url, body, params, _ = case
    return f"{method} {url} {json.dumps(body, ensure_ascii=True)[:60]} {params or ''}"


@pytest.fixture
async def with_a_store(client: httpx.AsyncClient) -> httpx.AsyncClient:
    await post_events(client, [paid("o1", store="s1")])
    response = await client.post("/v1/webhooks", json={"url": "http://127.0.0.1:9/hook"})
    assert response.status_code == 201, response.text
    return client


@pytest.mark.parametrize("case", CASES, ids=[_id(c) for c in CASES])
async def test_a_value_the_database_cannot_hold_is_refused_naming_the_field(
    with_a_store: httpx.AsyncClient, case: Case
) -> None:
    method, url, body, params, field = case
    # json.dumps escapes a lone surrogate ("\ud800"), as a client's JSON would carry it.
    content = None if body is None else json.dumps(body)
    headers = {"content-type": "application/json"}
    response = await with_a_store.request(
        method, url, content=content, params=params, headers=headers
    )
    assert response.status_code == 422, response.text
    problem = response.json()
    assert problem["code"] != "value_not_storable", "the safety net caught it, not a validator"
    if field is not None:
        fields = [e["field"] for e in problem.get("errors") or []]
        assert any(f == field or f.startswith(field + ".") for f in fields), (field, problem)


async def test_values_at_the_edges_of_what_is_stored_are_taken(
    with_a_store: httpx.AsyncClient,
) -> None:
    client = with_a_store
    largest = 2**31 - 1
    created = await client.post("/v1/policies", json={"name": "edge", "min_orders": largest})
    assert created.status_code == 201, created.text
    assert created.json()["min_orders"] == largest
    assert (await client.get(f"/v1/policies/{largest}")).status_code == 404
    silence = await client.post("/v1/silences", json={"until": "2099-12-31T23:59:59Z"})
    assert silence.status_code == 201, silence.text
    metrics = await client.get("/v1/stores/s1/metrics", params={"as_of": "1970-01-01"})
    assert metrics.status_code == 200, metrics.text
    late = await client.get("/v1/stores/s1/metrics", params={"as_of": "2099-12-31"})
    assert late.status_code == 200, late.text
    zone = await client.patch("/v1/stores/s1", json={"timezone": "America/Argentina/Buenos_Aires"})
    assert zone.status_code == 200, zone.text
