"""/docs is a first-class interface: every operation says what it does and shows an
answer, and every example validates against the schema it illustrates and still
works when pasted (no date already past)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import orjson
import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute
from pydantic import BaseModel, TypeAdapter

from app.alerts.schemas import SilenceIn
from app.api.problems import Problem, api_routes
from app.auth.schemas import ApiKeyCreate
from app.events.schemas import INGEST_EXAMPLE
from app.policies.schemas import PolicyIn
from app.risk.schemas import WhatIfIn
from app.stores.schemas import StorePatch
from tests.support import paid, post_events

# Owned by the work under way in app/figures/ and app/ops/: they get their
# descriptions and examples there. Remove an entry once its operation has them.
ELSEWHERE = {
    "get_store_metrics",
    "get_store_metrics_history",
    "list_store_products",
    "list_store_refunds",
    "list_product_skus",
    "get_store_breakdown",
    "put_platform_figures",
    "list_platform_figures",
    "metrics",
}


def _operations(app: FastAPI) -> list[tuple[str, str, dict[str, Any]]]:
    spec = app.openapi()
    return [
        (method, path, op)
        for path, ops in spec["paths"].items()
        for method, op in ops.items()
        if op.get("operationId") not in ELSEWHERE
    ]


def _routes(app: FastAPI) -> dict[str, APIRoute]:
    return {r.operation_id: r for r in api_routes(app.routes) if r.operation_id}


async def test_every_operation_has_a_summary_and_a_description(app: FastAPI) -> None:
    missing = [
        f"{method.upper()} {path}"
        for method, path, op in _operations(app)
        if not op.get("summary") or not op.get("description")
    ]
    assert missing == []


async def test_every_answer_with_a_body_has_an_example_that_fits_its_model(app: FastAPI) -> None:
    routes = _routes(app)
    problems: list[str] = []
    checked = 0
    for method, path, op in _operations(app):
        where = f"{method.upper()} {path}"
        for status, answer in op["responses"].items():
            for media, content in answer.get("content", {}).items():
                example = content.get("example")
                if status.startswith("2") and example is None:
                    problems.append(f"{where} {status}: no example")
                    continue
                if example is None:
                    continue
                if media == "application/problem+json":
                    Problem.model_validate(example)
                    continue
                route = routes[op["operationId"]]
                if status.startswith("2") and route.response_model is not None:
                    # The example as /docs shows it (nulls included) is an answer the
                    # model gives: its required fields, and no field it does not have.
                    adapter: TypeAdapter[Any] = TypeAdapter(route.response_model)
                    answered = adapter.dump_python(
                        adapter.validate_json(orjson.dumps(example)),
                        mode="json",
                        exclude_unset=True,
                    )
                    if _without_absent_nulls(answered, example) != example:
                        problems.append(f"{where} {status}: the example is not what it answers")
                    checked += 1
    assert checked >= 30, checked
    assert problems == []


def _without_absent_nulls(answered: Any, example: Any) -> Any:
    """``answered`` less the nulls the example leaves out (POST /v1/events sends an
    ``error`` only on rejected events; a dataclass cannot tell unset from null)."""
    if isinstance(answered, dict) and isinstance(example, dict):
        return {
            k: _without_absent_nulls(v, example.get(k))
            for k, v in answered.items()
            if k in example or v is not None
        }
    if isinstance(answered, list) and isinstance(example, list):
        return [_without_absent_nulls(a, e) for a, e in zip(answered, example, strict=False)]
    return answered


REQUEST_MODELS: list[type[BaseModel]] = [SilenceIn, PolicyIn, ApiKeyCreate, WhatIfIn, StorePatch]


@pytest.mark.parametrize("model", REQUEST_MODELS, ids=lambda m: m.__name__)
def test_request_examples_validate_and_name_no_date_already_past(model: type[BaseModel]) -> None:
    examples = model.model_json_schema().get("examples", [])
    assert examples
    soon = datetime.now(UTC) + timedelta(days=3650)
    for example in examples:
        parsed = model.model_validate_json(orjson.dumps(example))
        for value in parsed.model_dump().values():
            if isinstance(value, datetime):
                assert value > soon, f"{model.__name__}: {value} will soon be past"


async def test_the_examples_work_when_pasted(client: httpx.AsyncClient) -> None:
    await post_events(client, [paid("o1", store="s1")])
    pasted = [
        ("POST", "/v1/policies", PolicyIn, 201),
        ("POST", "/v1/silences", SilenceIn, 201),
        ("POST", "/v1/api-keys", ApiKeyCreate, 201),
        ("POST", "/v1/stores/s1/what-if", WhatIfIn, 200),
        ("PATCH", "/v1/stores/s1", StorePatch, 200),
    ]
    for method, url, model, status in pasted:
        for example in model.model_json_schema()["examples"]:
            response = await client.request(method, url, json=example)
            assert response.status_code == status, (url, response.text)
    ingested = await client.post("/v1/events", json=INGEST_EXAMPLE)
    assert ingested.json()["accepted"] == len(INGEST_EXAMPLE["events"]), ingested.text
