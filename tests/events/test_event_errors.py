"""A rejected event says everything wrong with it at once, each problem once, and each
message names its field once ("amount must be…", not "amount: amount must be…")."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from pydantic import ValidationError

from app.events.schemas import EVENT_ADAPTER, describe_validation_error
from tests.support import paid, post_events, requested


def _error_of(event: dict[str, Any]) -> dict[str, Any]:
    with pytest.raises(ValidationError) as caught:
        EVENT_ADAPTER.validate_python(event)
    return describe_validation_error(caught.value).as_dict()


def test_every_problem_of_an_event_is_listed_the_first_one_first() -> None:
    event = requested("r1", "o1", reason="too_expensive", amount="１９.９０")
    del event["kind"]
    event["product_id"] = "p\x00"

    error = _error_of(event)

    problems = [(e["field"], e["code"]) for e in error["errors"]]
    assert problems == [
        ("kind", "missing_field"),
        ("reason", "unknown_reason"),
        ("product_id", "invalid_field"),
        ("amount", "invalid_amount"),
    ]
    assert (error["field"], error["code"], error["message"]) == (
        "kind",
        "missing_field",
        error["errors"][0]["message"],
    )


BAD_EVENTS = [
    paid("o1", amount="19.9.0"),
    paid("o1", at="2026-11-25T10:00:00"),
    paid("o1", at="yesterday"),
    paid("o1", store="bad store"),
    paid("o1", product="p" * 200),
    paid("o1", event_id="e\x00"),
    requested("r1", "o1", reason="ugly"),
    requested("r1", "o1", kind="teleport"),
    {**paid("o1"), "order_id": 7},
    {k: v for k, v in paid("o1").items() if k != "order_id"},
]


@pytest.mark.parametrize("event", BAD_EVENTS)
def test_a_message_names_its_field_once(event: dict[str, Any]) -> None:
    for problem in _error_of(event)["errors"]:
        field, message = problem["field"], problem["message"]
        assert field and message.startswith(field), problem
        assert not message.startswith(f"{field}: {field}"), problem
        assert not message[len(field) :].lstrip(": ").startswith(field), problem


async def test_the_answer_carries_every_problem_of_a_rejected_event(
    client: httpx.AsyncClient,
) -> None:
    bad = paid("o2", amount="-1", store="bad store")
    body = await post_events(client, [paid("o1"), bad])
    good, rejected = body["results"]
    assert good == {"event_id": good["event_id"], "status": "accepted"}
    error = rejected["error"]
    assert [e["field"] for e in error["errors"]] == ["store_id", "amount"]
    assert error["code"] == "invalid_store_id" and error["field"] == "store_id"
