"""API keys and scopes (DESIGN §7): bearer keys, hashed at rest, open health and docs."""

from __future__ import annotations

import base64
import hashlib
from typing import Any

import httpx
import orjson
import pytest
from fastapi import FastAPI
from sqlalchemy import text

from tests.conftest import ADMIN_KEY
from tests.support import paid, post_events

PROBLEM_JSON = "application/problem+json"


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


async def create_key(client: httpx.AsyncClient, *scopes: str, name: str = "k") -> dict[str, Any]:
    response = await client.post("/v1/api-keys", json={"name": name, "scopes": list(scopes)})
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def assert_problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM_JSON)
    body: dict[str, Any] = response.json()
    assert body["status"] == status and body["title"] and body["detail"] and body["code"]
    return body


@pytest.fixture
def anonymous(app: FastAPI) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test")


# --- who may call --------------------------------------------------------------------


async def test_missing_key_is_401_with_www_authenticate(anonymous: httpx.AsyncClient) -> None:
    async with anonymous:
        for method, path in [
            ("GET", "/v1/stores"),
            ("GET", "/v1/stores/s1/metrics"),
            ("POST", "/v1/events"),
            ("GET", "/v1/api-keys"),
        ]:
            response = await anonymous.request(method, path)
            body = assert_problem(response, 401)
            assert body["code"] == "missing_key"
            assert response.headers["www-authenticate"].lower().startswith("bearer")


async def test_other_auth_scheme_is_401(anonymous: httpx.AsyncClient) -> None:
    async with anonymous:
        response = await anonymous.get(
            "/v1/stores", headers={"Authorization": f"Basic {ADMIN_KEY}"}
        )
    assert_problem(response, 401)
    assert "www-authenticate" in response.headers


async def test_unknown_key_is_401(anonymous: httpx.AsyncClient) -> None:
    async with anonymous:
        response = await anonymous.get("/v1/stores", headers=bearer("rw_not_a_key_at_all"))
    body = assert_problem(response, 401)
    assert body["code"] == "invalid_key"
    assert "www-authenticate" in response.headers


async def test_ingest_key_can_post_events_but_not_read(
    client: httpx.AsyncClient, anonymous: httpx.AsyncClient
) -> None:
    key = (await create_key(client, "ingest", name="erp-sync"))["key"]
    async with anonymous:
        posted = await anonymous.post(
            "/v1/events", json={"events": [paid("o1")]}, headers=bearer(key)
        )
        assert posted.status_code == 200, posted.text
        assert posted.json()["accepted"] == 1
        for path in ("/v1/stores/s1/metrics", "/v1/stores", "/v1/stores/s1/products"):
            body = assert_problem(await anonymous.get(path, headers=bearer(key)), 403)
            assert body["code"] == "insufficient_scope"
            assert "read" in body["detail"]
        assert_problem(await anonymous.get("/v1/api-keys", headers=bearer(key)), 403)
    # The admin key sees what the ingest key sent.
    assert (await client.get("/v1/stores/s1/metrics")).json()["orders"] == 1


async def test_read_key_can_read_but_not_post_events(
    client: httpx.AsyncClient, anonymous: httpx.AsyncClient
) -> None:
    await post_events(client, [paid("o1")])
    key = (await create_key(client, "read"))["key"]
    async with anonymous:
        read = await anonymous.get("/v1/stores/s1/metrics", headers=bearer(key))
        assert read.status_code == 200 and read.json()["orders"] == 1
        refused = await anonymous.post(
            "/v1/events", json={"events": [paid("o2")]}, headers=bearer(key)
        )
        body = assert_problem(refused, 403)
        assert body["code"] == "insufficient_scope" and "ingest" in body["detail"]
        patch = await anonymous.patch("/v1/stores/s1", json={"name": "x"}, headers=bearer(key))
        assert_problem(patch, 403)
        created = await anonymous.post(
            "/v1/api-keys", json={"name": "n", "scopes": ["admin"]}, headers=bearer(key)
        )
        assert_problem(created, 403)
    assert (await client.get("/v1/stores/s1/metrics")).json()["orders"] == 1


async def test_admin_key_implies_every_scope(
    client: httpx.AsyncClient, anonymous: httpx.AsyncClient
) -> None:
    key = (await create_key(client, "admin"))["key"]
    async with anonymous:
        auth = bearer(key)
        posted = await anonymous.post("/v1/events", json={"events": [paid("o1")]}, headers=auth)
        assert posted.status_code == 200 and posted.json()["accepted"] == 1
        assert (await anonymous.get("/v1/stores/s1/metrics", headers=auth)).status_code == 200
        assert (await anonymous.get("/v1/api-keys", headers=auth)).status_code == 200
        patched = await anonymous.patch("/v1/stores/s1", json={"name": "旗舰店"}, headers=auth)
        assert patched.status_code == 200 and patched.json()["name"] == "旗舰店"


async def test_a_key_with_two_scopes_has_both(
    client: httpx.AsyncClient, anonymous: httpx.AsyncClient
) -> None:
    key = (await create_key(client, "ingest", "read"))["key"]
    async with anonymous:
        auth = bearer(key)
        posted = await anonymous.post("/v1/events", json={"events": [paid("o1")]}, headers=auth)
        assert posted.status_code == 200
        assert (await anonymous.get("/v1/stores/s1/metrics", headers=auth)).status_code == 200
        assert_problem(await anonymous.get("/v1/api-keys", headers=auth), 403)


async def test_unknown_scope_is_refused(client: httpx.AsyncClient) -> None:
    response = await client.post("/v1/api-keys", json={"name": "k", "scopes": ["root"]})
    body = assert_problem(response, 422)
    assert any("scopes" in e["field"] for e in body["errors"])


# --- keys at rest ----------------------------------------------------------------------


async def test_clear_key_is_shown_once_and_only_its_hash_is_stored(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    created = await create_key(client, "read", name="dashboard")
    key = created["key"]
    assert key.startswith("rw_") and len(key) >= 40
    assert created["scopes"] == ["read"]
    assert key.startswith(created["prefix"]) and len(created["prefix"]) < len(key) // 2

    listed = (await client.get("/v1/api-keys")).json()["items"]
    mine = [item for item in listed if item["id"] == created["id"]]
    assert len(mine) == 1
    assert "key" not in mine[0] and key not in str(listed)

    async with app.state.db.engine.connect() as conn:
        rows = (await conn.execute(text("SELECT * FROM api_keys"))).mappings().all()
    assert len(rows) == 1
    row = dict(rows[0])
    assert bytes(row["key_hash"]) == hashlib.sha256(key.encode()).digest()
    for column, value in row.items():
        if isinstance(value, str):
            assert key not in value, column
        if isinstance(value, bytes | memoryview):
            assert key.encode() not in bytes(value), column


async def test_two_keys_differ(client: httpx.AsyncClient) -> None:
    first = await create_key(client, "read")
    second = await create_key(client, "read")
    assert first["key"] != second["key"] and first["id"] != second["id"]


async def test_revoked_key_is_401(client: httpx.AsyncClient, anonymous: httpx.AsyncClient) -> None:
    created = await create_key(client, "read")
    async with anonymous:
        auth = bearer(created["key"])
        assert (await anonymous.get("/v1/stores", headers=auth)).status_code == 200  # cached now
        revoked = await client.delete(f"/v1/api-keys/{created['id']}")
        assert revoked.status_code == 204
        body = assert_problem(await anonymous.get("/v1/stores", headers=auth), 401)
        assert body["code"] == "invalid_key"
    listed = (await client.get("/v1/api-keys")).json()["items"]
    assert [k["revoked_at"] for k in listed if k["id"] == created["id"]] != [None]
    again = await client.delete(f"/v1/api-keys/{created['id']}")
    assert_problem(again, 404)


# --- open endpoints and the OpenAPI document -------------------------------------------


async def test_health_and_docs_need_no_key(anonymous: httpx.AsyncClient) -> None:
    async with anonymous:
        healthz = await anonymous.get("/healthz")
        assert healthz.status_code == 200 and healthz.json()["status"] == "ok"
        readyz = await anonymous.get("/readyz")
        assert readyz.status_code == 200, readyz.text
        assert readyz.json()["status"] == "ready"
        docs = await anonymous.get("/docs")
        assert docs.status_code == 200 and "text/html" in docs.headers["content-type"]
        spec = await anonymous.get("/openapi.json")
        assert spec.status_code == 200 and spec.json()["openapi"].startswith("3.")


async def test_openapi_has_bearer_auth_and_every_v1_route_is_described(
    client: httpx.AsyncClient,
) -> None:
    spec = (await client.get("/openapi.json")).json()
    schemes = spec["components"]["securitySchemes"]
    bearer_schemes = [
        name
        for name, scheme in schemes.items()
        if scheme.get("type") == "http" and scheme.get("scheme", "").lower() == "bearer"
    ]
    assert bearer_schemes, schemes

    operation_ids: list[str] = []
    v1_operations = 0
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            if method not in {"get", "post", "put", "patch", "delete"}:
                continue
            operation_ids.append(operation.get("operationId", ""))
            if not path.startswith("/v1/"):
                continue
            v1_operations += 1
            where = f"{method.upper()} {path}"
            assert operation.get("summary"), f"{where} has no summary"
            assert operation.get("operationId"), f"{where} has no operationId"
            security = operation.get("security", [])
            assert any(set(s) & set(bearer_schemes) for s in security), f"{where} is not secured"
    assert v1_operations >= 8
    assert len(operation_ids) == len(set(operation_ids)), "operationIds must be unique"
    assert "/v1/events" in spec["paths"]
    assert "EventBatch" in spec["components"]["schemas"]


async def test_api_keys_paginate_and_refuse_a_forged_cursor(client: httpx.AsyncClient) -> None:
    ids = [(await create_key(client, "read", name=f"k{i}"))["id"] for i in range(3)]
    walked: list[int] = []
    params: dict[str, Any] = {"limit": 2}
    while True:
        page = (await client.get("/v1/api-keys", params=params)).json()
        walked += [item["id"] for item in page["items"]]
        if page["next_cursor"] is None:
            break
        params["cursor"] = page["next_cursor"]
    assert walked == ids
    forged = base64.urlsafe_b64encode(orjson.dumps("k1")).decode().rstrip("=")
    body = assert_problem(await client.get("/v1/api-keys", params={"cursor": forged}), 422)
    assert body["code"] == "invalid_cursor"


async def test_a_key_name_with_a_nul_character_is_refused(client: httpx.AsyncClient) -> None:
    response = await client.post("/v1/api-keys", json={"name": "erp\u0000", "scopes": ["read"]})
    body = assert_problem(response, 422)
    assert [e["field"] for e in body["errors"]] == ["body.name"]
