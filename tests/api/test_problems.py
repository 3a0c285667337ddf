"""Every refusal is the documented problem+json: a body that cannot be parsed is a 422
on every route (never an undocumented 400), a 405 says what is allowed, and a value
that slips past validation to the database is still a 422, not a 500."""

from __future__ import annotations

import logging

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.exc import DataError

from app.api.problems import install_problem_handlers
from tests.support import PROBLEM_JSON, assert_problem, paid, post_events

NOT_UTF8 = b'\xff\xfe{"name": "\xe9t\xe9"}'

JSON_ROUTES = [
    ("POST", "/v1/events"),
    ("POST", "/v1/policies"),
    ("PUT", "/v1/policies/1"),
    ("POST", "/v1/silences"),
    ("POST", "/v1/webhooks"),
    ("PATCH", "/v1/webhooks/1"),
    ("POST", "/v1/webhooks/1/recover"),
    ("POST", "/v1/api-keys"),
    ("PATCH", "/v1/stores/s1"),
    ("POST", "/v1/stores/s1/what-if"),
    ("POST", "/v1/connections"),
    ("PATCH", "/v1/connections/1"),
]


@pytest.fixture
async def with_a_store(client: httpx.AsyncClient) -> httpx.AsyncClient:
    await post_events(client, [paid("o1", store="s1")])
    return client


@pytest.mark.parametrize(("method", "url"), JSON_ROUTES)
async def test_a_body_that_is_not_utf8_is_a_422_on_every_json_route(
    with_a_store: httpx.AsyncClient, method: str, url: str
) -> None:
    response = await with_a_store.request(
        method, url, content=NOT_UTF8, headers={"content-type": "application/json"}
    )
    body = assert_problem(response, 422, "invalid_json")
    assert [e["field"] for e in body["errors"]] == ["body"]


async def test_a_broken_multipart_upload_is_a_422(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/v1/imports",
        content=b'--x\r\nContent-Disposition: form-data; name="file"; filename="a.csv"\r\n',
        headers={"content-type": "multipart/form-data; boundary=x"},
    )
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith(PROBLEM_JSON)


async def test_a_method_not_allowed_says_which_are(client: httpx.AsyncClient) -> None:
    response = await client.request("TRACE", "/v1/policies")
    assert_problem(response, 405, "method_not_allowed")
    assert set(response.headers["allow"].replace(" ", "").split(",")) == {"GET", "POST"}


@pytest.mark.parametrize(
    "failure",
    [
        DataError("INSERT …", {}, Exception("value out of int32 range")),
        OverflowError("date value out of range"),
    ],
)
async def test_a_value_that_slips_past_validation_is_a_422_and_a_warning(
    failure: Exception, caplog: pytest.LogCaptureFixture
) -> None:
    app = FastAPI()
    install_problem_handlers(app)

    @app.get("/store-it")
    async def store_it() -> None:
        raise failure

    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        with caplog.at_level(logging.WARNING, logger="refundwatch"):
            response = await client.get("/store-it")
    assert_problem(response, 422, "value_not_storable")
    assert any("unvalidated value" in r.getMessage() for r in caplog.records)
