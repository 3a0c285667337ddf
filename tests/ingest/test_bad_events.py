"""One bad event is rejected alone with a code; its good neighbours are stored (DESIGN §2).

Each case here once sank a whole batch with a 500, or left a trace behind.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.support import paid, post_events


def _deep(levels: int) -> Any:
    value: Any = "bottom"
    for _ in range(levels):
        value = {"down": value}
    return value


async def _batch_with(client: httpx.AsyncClient, bad: dict[str, Any]) -> dict[str, Any]:
    body = await post_events(client, [paid("good-1"), bad, paid("good-2")])
    assert [r["status"] for r in body["results"]] == ["accepted", "rejected", "accepted"]
    return body["results"][1]["error"]  # type: ignore[no-any-return]


async def test_an_unknown_field_nested_hundreds_deep_is_rejected_alone(
    client: httpx.AsyncClient,
) -> None:
    error = await _batch_with(client, paid("deep", extra=_deep(400)))
    assert error["code"] == "invalid_event"


async def test_an_unknown_field_nested_within_the_limit_is_kept(client: httpx.AsyncClient) -> None:
    body = await post_events(client, [paid("nested", extra=_deep(100))])
    assert body["accepted"] == 1


@pytest.mark.parametrize(
    "occurred_at",
    [
        "0001-01-01T05:00:00+08:00",  # before the first instant once in UTC
        "9999-12-31T23:59:59-14:00",  # after the last instant once in UTC
        "0001-01-01T00:00:00Z",
        "1969-12-31T23:59:59Z",
        "2100-01-01T00:00:00Z",
        "２０２６-11-25T10:00:00+08:00",  # full-width digits
        "2026-11-25T10:00:00+08:00\n",
    ],
)
async def test_a_time_out_of_range_or_not_ascii_is_rejected_alone(
    client: httpx.AsyncClient, occurred_at: str
) -> None:
    error = await _batch_with(client, paid("odd-time", at=occurred_at))
    assert error["code"] == "invalid_occurred_at"
    assert error["field"] == "occurred_at"


@pytest.mark.parametrize("amount", ["１９.９０", "١٩.٩٠", "19.90\n", " 19.90", "19.", "1e3", "-1"])
async def test_an_amount_is_an_ascii_decimal_string(client: httpx.AsyncClient, amount: str) -> None:
    error = await _batch_with(client, paid("odd-amount", amount=amount))
    assert error["code"] == "invalid_amount"


async def test_an_event_rejected_as_a_conflict_creates_no_store(client: httpx.AsyncClient) -> None:
    await post_events(client, [paid("o1", event_id="shared-id", store="s1")])
    body = await post_events(client, [paid("o2", event_id="shared-id", store="never-stored")])
    assert body["results"][0]["error"]["code"] == "event_id_conflict"
    assert (await client.get("/v1/stores/never-stored")).status_code == 404
    stores = (await client.get("/v1/stores")).json()["items"]
    assert [s["store_id"] for s in stores] == ["s1"]


@pytest.mark.parametrize("field", ["event_id", "order_id", "product_id", "sku_id", "courier"])
async def test_a_nul_character_postgresql_cannot_store_is_rejected_alone(
    client: httpx.AsyncClient, field: str
) -> None:
    event = paid("nul-order")
    event[field] = "bad\x00value"
    if field == "courier":
        event = {**event, "type": "order.shipped"}
        del event["product_id"]
    error = await _batch_with(client, event)
    assert error["field"] == field
    assert "NUL" in error["message"]


async def test_an_unknown_field_nested_deep_in_lists_is_rejected_alone(
    client: httpx.AsyncClient,
) -> None:
    deep: Any = "bottom"
    for _ in range(400):
        deep = [deep]
    error = await _batch_with(client, paid("deep-list", extra=deep))
    assert error["code"] == "invalid_event"
