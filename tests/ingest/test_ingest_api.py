"""POST /v1/events: per-event results, idempotency, validation codes, envelopes."""

from __future__ import annotations

from typing import Any

import httpx
import orjson
import pytest

from tests.support import paid, post_events, refund_event, requested

PROBLEM_JSON = "application/problem+json"
FIGURES = ("orders", "quality_refunds", "applied_quality_refunds", "pending_quality_refunds")


async def figures_of(client: httpx.AsyncClient, store: str = "s1") -> dict[str, Any]:
    response = await client.get(f"/v1/stores/{store}/metrics")
    assert response.status_code == 200, response.text
    body = response.json()
    return {name: body[name] for name in (*FIGURES, "quality_refund_rate")}


def only_result(body: dict[str, Any]) -> dict[str, Any]:
    assert len(body["results"]) == 1
    result: dict[str, Any] = body["results"][0]
    return result


async def rejection(client: httpx.AsyncClient, event: Any) -> dict[str, Any]:
    """Send one event alone; it must be rejected. Returns its error."""
    body = await post_events(client, [event])
    assert (body["accepted"], body["duplicates"], body["rejected"]) == (0, 0, 1), body
    result = only_result(body)
    assert result["status"] == "rejected"
    error: dict[str, Any] = result["error"]
    assert error["message"]
    return error


def assert_problem(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM_JSON)
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    assert body["code"] == code
    assert body["title"]
    assert body["detail"]
    return body


# --- accepted events -------------------------------------------------------------------


async def test_three_events_are_accepted_and_counted(client: httpx.AsyncClient) -> None:
    body = await post_events(
        client, [paid("o1"), requested("r1", "o1"), refund_event("succeeded", "r1")]
    )
    assert body["accepted"] == 3 and body["duplicates"] == 0 and body["rejected"] == 0
    metrics = (await client.get("/v1/stores/s1/metrics")).json()
    assert metrics["orders"] == 1
    assert metrics["quality_refunds"] == 1
    assert metrics["applied_quality_refunds"] == 1
    assert metrics["pending_quality_refunds"] == 0
    assert metrics["quality_refund_rate"] == "1.000000"
    assert metrics["as_of"] == "2026-11-26"
    assert [t["tier"] for t in metrics["tiers"]] == ["demotion", "listing_ban"]


async def test_results_follow_input_order(client: httpx.AsyncClient) -> None:
    events = [
        paid("o1", event_id="z-last-alphabetically"),
        requested("r1", "o1", reason="nonsense", event_id="m-rejected"),
        paid("o2", event_id="a-first-alphabetically"),
        paid("o1", event_id="z-last-alphabetically"),
        requested("r2", "o2", event_id="b-second"),
    ]
    body = await post_events(client, events)
    assert [(r["event_id"], r["status"]) for r in body["results"]] == [
        ("z-last-alphabetically", "accepted"),
        ("m-rejected", "rejected"),
        ("a-first-alphabetically", "accepted"),
        ("z-last-alphabetically", "duplicate"),
        ("b-second", "accepted"),
    ]
    assert (body["accepted"], body["duplicates"], body["rejected"]) == (3, 1, 1)
    assert body["results"][0].get("error") is None
    assert body["results"][1]["error"]["code"] == "unknown_reason"


# --- idempotency -----------------------------------------------------------------------


async def test_exact_resend_is_a_duplicate_counted_once(client: httpx.AsyncClient) -> None:
    events = [paid("o1"), requested("r1", "o1")]
    first = await post_events(client, events)
    assert first["accepted"] == 2
    before = await figures_of(client)

    again = await post_events(client, events)
    assert (again["accepted"], again["duplicates"], again["rejected"]) == (0, 2, 0)
    assert [r["status"] for r in again["results"]] == ["duplicate", "duplicate"]
    assert all(r.get("error") is None for r in again["results"])
    assert await figures_of(client) == before
    assert before["orders"] == 1 and before["quality_refunds"] == 1


async def test_key_order_does_not_make_a_resend_a_conflict(client: httpx.AsyncClient) -> None:
    event = paid("o1", event_id="e-order")
    await post_events(client, [event])
    reordered = dict(reversed(list(event.items())))
    body = await post_events(client, [reordered])
    assert only_result(body)["status"] == "duplicate"


async def test_same_event_id_with_other_content_is_a_conflict(client: httpx.AsyncClient) -> None:
    await post_events(client, [paid("o1", event_id="e1")])
    body = await post_events(client, [paid("o2", event_id="e1")])
    result = only_result(body)
    assert result["status"] == "rejected"
    assert result["event_id"] == "e1"
    assert result["error"]["code"] == "event_id_conflict"
    # The first content stands: o1 is the order, o2 never was.
    assert (await figures_of(client))["orders"] == 1
    refunds = await post_events(client, [requested("r2", "o2")])
    assert refunds["accepted"] == 1
    assert (await figures_of(client))["orders"] == 1


async def test_conflict_within_one_batch(client: httpx.AsyncClient) -> None:
    body = await post_events(
        client,
        [paid("o1", event_id="e1"), paid("o1", event_id="e1"), paid("o9", event_id="e1")],
    )
    assert [r["status"] for r in body["results"]] == ["accepted", "duplicate", "rejected"]
    assert body["results"][2]["error"]["code"] == "event_id_conflict"
    assert (await figures_of(client))["orders"] == 1


async def test_resend_of_a_conflicting_event_within_one_batch_is_also_a_conflict(
    client: httpx.AsyncClient,
) -> None:
    await post_events(client, [paid("o1", event_id="e1")])
    body = await post_events(client, [paid("o2", event_id="e1"), paid("o2", event_id="e1")])
    assert [r["status"] for r in body["results"]] == ["rejected", "rejected"]
    assert {r["error"]["code"] for r in body["results"]} == {"event_id_conflict"}
    assert (body["accepted"], body["duplicates"], body["rejected"]) == (0, 0, 2)

    # The stored content resent after a conflicting one in the same batch is a resend.
    body = await post_events(client, [paid("o3", event_id="e1"), paid("o1", event_id="e1")])
    assert [r["status"] for r in body["results"]] == ["rejected", "duplicate"]
    assert (await figures_of(client))["orders"] == 1


# --- per-event validation --------------------------------------------------------------


async def test_unknown_type_is_rejected(client: httpx.AsyncClient) -> None:
    event = paid("o1")
    event["type"] = "order.teleported"
    error = await rejection(client, event)
    assert error["code"] == "unknown_type"
    assert error["field"] == "type"
    assert "order.teleported" in error["message"] and "order.paid" in error["message"]


async def test_missing_type_is_rejected(client: httpx.AsyncClient) -> None:
    event = paid("o1")
    del event["type"]
    error = await rejection(client, event)
    assert error["code"] == "missing_field"
    assert error["field"] == "type"


async def test_unknown_reason_is_rejected_with_the_valid_reasons(
    client: httpx.AsyncClient,
) -> None:
    error = await rejection(client, requested("r1", "o1", reason="too_expensive"))
    assert error["code"] == "unknown_reason"
    assert error["field"] == "reason"
    message = error["message"]
    assert "too_expensive" in message
    assert "{" not in message, "the message template was not filled in"
    for code in ("quality_issue", "not_as_described", "changed_mind", "other"):
        assert code in message


async def test_chinese_reason_label_is_accepted_as_its_code(client: httpx.AsyncClient) -> None:
    body = await post_events(
        client,
        [
            paid("o1"),
            requested("r1", "o1", reason="质量问题"),
            paid("o2"),
            requested("r2", "o2", reason="不想要了"),
        ],
    )
    assert body["accepted"] == 4
    figures = await figures_of(client)
    assert figures["quality_refunds"] == 1
    refunds = (await client.get("/v1/stores/s1/refunds")).json()["items"]
    assert {r["refund_id"]: r["reason"] for r in refunds} == {
        "r1": "quality_issue",
        "r2": "changed_mind",
    }


async def test_unknown_kind_is_rejected(client: httpx.AsyncClient) -> None:
    error = await rejection(client, requested("r1", "o1", kind="teleport"))
    assert error["code"] == "unknown_kind"
    assert error["field"] == "kind"
    assert "teleport" in error["message"] and "return_refund" in error["message"]
    assert "{" not in error["message"]


async def test_naive_occurred_at_is_rejected(client: httpx.AsyncClient) -> None:
    error = await rejection(client, paid("o1", at="2026-11-25T10:00:00"))
    assert error["code"] == "naive_occurred_at"
    assert error["field"] == "occurred_at"


@pytest.mark.parametrize("value", ["yesterday", "2026-13-45T10:00:00+08:00", 1764100000, ""])
async def test_invalid_occurred_at_is_rejected(client: httpx.AsyncClient, value: Any) -> None:
    error = await rejection(client, paid("o1", at=value))
    assert error["code"] == "invalid_occurred_at"
    assert error["field"] == "occurred_at"


async def test_more_than_five_minutes_ahead_is_in_the_future(client: httpx.AsyncClient) -> None:
    # The frozen clock says 2026-11-26T04:00:00Z (12:00 in Shanghai).
    error = await rejection(client, paid("o1", at="2026-11-26T12:05:01+08:00"))
    assert error["code"] == "occurred_in_future"
    assert error["field"] == "occurred_at"
    assert (await client.get("/v1/stores/s1/metrics")).status_code == 404


async def test_four_minutes_ahead_is_accepted(client: httpx.AsyncClient) -> None:
    body = await post_events(
        client, [paid("o1", at="2026-11-26T04:04:00Z"), paid("o2", at="2026-11-26T12:05:00+08:00")]
    )
    assert body["accepted"] == 2
    assert (await figures_of(client))["orders"] == 2


@pytest.mark.parametrize(
    ("builder", "field"),
    [
        (lambda: paid("o1"), "order_id"),
        (lambda: paid("o1"), "product_id"),
        (lambda: paid("o1"), "store_id"),
        (lambda: paid("o1"), "occurred_at"),
        (lambda: paid("o1"), "event_id"),
        (lambda: requested("r1", "o1"), "refund_id"),
        (lambda: requested("r1", "o1"), "reason"),
        (lambda: requested("r1", "o1"), "kind"),
        (lambda: refund_event("succeeded", "r1"), "refund_id"),
    ],
)
async def test_missing_field_is_rejected_naming_it(
    client: httpx.AsyncClient, builder: Any, field: str
) -> None:
    event = builder()
    del event[field]
    error = await rejection(client, event)
    assert error["code"] == "missing_field"
    assert error["field"] == field
    assert field in error["message"]


@pytest.mark.parametrize("store_id", ["bad store", "店铺", "s/1", "a" * 65, ""])
async def test_invalid_store_id_is_rejected(client: httpx.AsyncClient, store_id: str) -> None:
    error = await rejection(client, paid("o1", store=store_id))
    assert error["code"] == "invalid_store_id"
    assert error["field"] == "store_id"


async def test_store_id_of_64_allowed_characters_is_accepted(client: httpx.AsyncClient) -> None:
    store_id = ("Az09._:-" * 8)[:64]
    body = await post_events(client, [paid("o1", store=store_id)])
    assert body["accepted"] == 1
    assert (await figures_of(client, store_id))["orders"] == 1


@pytest.mark.parametrize("amount", [19.9, 20, "abc", "-1.00", "1,5", ""])
async def test_invalid_amount_is_rejected(client: httpx.AsyncClient, amount: Any) -> None:
    error = await rejection(client, paid("o1", amount=amount))
    assert error["code"] == "invalid_amount"
    assert error["field"] == "amount"


async def test_decimal_string_amounts_are_accepted(client: httpx.AsyncClient) -> None:
    body = await post_events(
        client, [paid("o1", amount="19.90"), requested("r1", "o1", amount="0")]
    )
    assert body["accepted"] == 2


@pytest.mark.parametrize(
    ("builder", "field", "code"),
    [
        (lambda: paid("o1", event_id="e\u0000"), "event_id", "invalid_event_id"),
        (lambda: paid("o\u00001"), "order_id", "invalid_field"),
        (lambda: paid("o1", product="p\u0000"), "product_id", "invalid_field"),
        (lambda: paid("o1", sku_id="\u0000"), "sku_id", "invalid_field"),
        (lambda: requested("r\u0000", "o1"), "refund_id", "invalid_field"),
        (
            lambda: refund_event("return_shipped", "r1", courier="S\u0000F"),
            "courier",
            "invalid_field",
        ),
    ],
)
async def test_nul_character_in_an_id_is_rejected_alone(
    client: httpx.AsyncClient, builder: Any, field: str, code: str
) -> None:
    # PostgreSQL text cannot hold U+0000; the event must be refused, not the batch.
    body = await post_events(client, [paid("o-good"), builder()])
    assert [r["status"] for r in body["results"]] == ["accepted", "rejected"]
    error = body["results"][1]["error"]
    assert (error["code"], error["field"]) == (code, field)
    assert (await figures_of(client))["orders"] == 1


@pytest.mark.parametrize("event", ["order.paid", 42, None, ["o1"], True])
async def test_non_object_event_is_invalid(client: httpx.AsyncClient, event: Any) -> None:
    body = await post_events(client, [event])
    result = only_result(body)
    assert result["status"] == "rejected"
    assert result["event_id"] is None
    assert result["error"]["code"] == "invalid_event"


async def test_good_events_of_a_batch_are_stored_when_others_are_rejected(
    client: httpx.AsyncClient,
) -> None:
    body = await post_events(
        client,
        [
            paid("o1"),
            paid("o2", at="2026-11-25T10:00:00"),  # naive
            requested("r1", "o1"),
            requested("r2", "o1", reason="bogus"),
            "not an event",
            paid("o3", amount="abc"),
            paid("o4"),
        ],
    )
    assert [r["status"] for r in body["results"]] == [
        "accepted",
        "rejected",
        "accepted",
        "rejected",
        "rejected",
        "rejected",
        "accepted",
    ]
    assert (body["accepted"], body["duplicates"], body["rejected"]) == (3, 0, 4)
    figures = await figures_of(client)
    assert figures["orders"] == 2
    assert figures["quality_refunds"] == 1
    assert figures["quality_refund_rate"] == "0.500000"


async def test_a_rejected_event_can_be_fixed_and_resent_under_the_same_id(
    client: httpx.AsyncClient,
) -> None:
    bad = requested("r1", "o1", reason="bogus", event_id="e-fix")
    good = requested("r1", "o1", event_id="e-fix")
    assert only_result(await post_events(client, [bad]))["status"] == "rejected"
    assert only_result(await post_events(client, [good]))["status"] == "accepted"


# --- envelopes -------------------------------------------------------------------------


async def post_raw(client: httpx.AsyncClient, content: bytes) -> httpx.Response:
    return await client.post(
        "/v1/events", content=content, headers={"content-type": "application/json"}
    )


async def test_body_that_is_not_json_is_refused(client: httpx.AsyncClient) -> None:
    body = assert_problem(await post_raw(client, b'{"events": [}'), 422, "invalid_json")
    assert body["errors"][0]["field"] == "body"


@pytest.mark.parametrize(
    ("document", "code"),
    [
        ({}, "missing_events"),
        ({"evnts": []}, "missing_events"),
        ({"events": {"event_id": "e1"}}, "invalid_envelope"),
        ({"events": "e1"}, "invalid_envelope"),
        ({"events": []}, "empty_batch"),
        ([{"event_id": "e1"}], "invalid_envelope"),
        ("events", "invalid_envelope"),
    ],
)
async def test_bad_envelope_is_refused_whole(
    client: httpx.AsyncClient, document: Any, code: str
) -> None:
    body = assert_problem(await post_raw(client, orjson.dumps(document)), 422, code)
    assert body["errors"] and body["errors"][0]["code"] == code


async def test_over_1000_events_is_refused(client: httpx.AsyncClient) -> None:
    events = [paid(f"o{i}") for i in range(1001)]
    response = await client.post("/v1/events", json={"events": events})
    body = assert_problem(response, 422, "too_many_events")
    assert "1001" in body["detail"] and "1000" in body["detail"]
    assert (await client.get("/v1/stores/s1/metrics")).status_code == 404


async def test_exactly_1000_events_are_taken(client: httpx.AsyncClient) -> None:
    events = [paid(f"o{i}") for i in range(1000)]
    body = await post_events(client, events)
    assert body["accepted"] == 1000
    assert (await figures_of(client))["orders"] == 1000


async def test_body_over_5_mib_is_refused_with_413(client: httpx.AsyncClient) -> None:
    padding = "x" * (5 * 1024 * 1024)
    content = orjson.dumps({"events": [paid("o1")], "padding": padding})
    assert len(content) > 5 * 1024 * 1024
    assert_problem(await post_raw(client, content), 413, "body_too_large")
    assert (await client.get("/v1/stores/s1/metrics")).status_code == 404


async def test_body_over_the_limit_without_content_length_is_refused(
    client: httpx.AsyncClient,
) -> None:
    chunk = b" " * (1024 * 1024)

    async def stream() -> Any:
        yield b'{"events": ['
        for _ in range(6):
            yield chunk
        yield b"]}"

    response = await client.post(
        "/v1/events", content=stream(), headers={"content-type": "application/json"}
    )
    assert "content-length" not in response.request.headers
    assert_problem(response, 413, "body_too_large")


async def test_a_refused_batch_changes_nothing(client: httpx.AsyncClient) -> None:
    await post_events(client, [paid("o1"), requested("r1", "o1")])
    before = await figures_of(client)

    more = [paid("o2"), requested("r2", "o2"), refund_event("withdrawn", "r1")]
    too_many = more + [paid(f"x{i}") for i in range(1001 - len(more))]
    assert_problem(
        await client.post("/v1/events", json={"events": too_many}), 422, "too_many_events"
    )
    broken = orjson.dumps({"events": more})[:-2]
    assert_problem(await post_raw(client, broken), 422, "invalid_json")
    assert await figures_of(client) == before

    # None of them was stored: sent properly now, each is new.
    body = await post_events(client, more)
    assert [r["status"] for r in body["results"]] == ["accepted"] * 3
    after = await figures_of(client)
    assert (after["orders"], after["quality_refunds"]) == (2, 1)
