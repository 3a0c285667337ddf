"""Open-platform records to events: every row of the mapping, the skips, unknown
reason labels, and malformed records (reported, never half-mapped)."""

from __future__ import annotations

import importlib
from decimal import Decimal
from typing import Any

import pytest

from app.connectors.pdd.mapping import (
    Event,
    MalformedRecord,
    RecordProblem,
    SkippedRecord,
    map_orders,
    map_refunds,
    order_events,
    refund_events,
)


def order(**fields: Any) -> dict[str, Any]:
    record: dict[str, Any] = {
        "order_sn": "261126-001",
        "confirm_time": "2026-11-26 10:00:00",
        "pay_amount": "19.90",
        "shipping_time": "",
        "receive_time": "",
        "updated_at": "2026-11-26 10:00:00",
        "logistics_id": 0,
        "item_list": [{"goods_id": 5001, "sku_id": 50011, "goods_count": 1}],
    }
    record.update(fields)
    return record


def refund(**fields: Any) -> dict[str, Any]:
    record: dict[str, Any] = {
        "id": 9001,
        "order_sn": "261126-001",
        "goods_id": 5001,
        "sku_id": "50011",
        "after_sales_type": 2,
        "after_sales_status": 2,
        "after_sale_reason": "质量问题",
        "created_time": "2026-11-26 12:00:00",
        "updated_time": "2026-11-26 12:00:00",
        "refund_amount": "19.90",
    }
    record.update(fields)
    return record


def by_type(events: list[Event]) -> dict[str, Event]:
    return {event["type"]: event for event in events}


# --------------------------------------------------------------------------- orders


def test_a_confirmed_order_is_paid_at_its_confirm_time() -> None:
    (paid,) = order_events("s1", order())
    assert paid == {
        "event_id": "pdd:s1:order:261126-001:paid",
        "type": "order.paid",
        "store_id": "s1",
        "occurred_at": "2026-11-26T10:00:00+08:00",
        "order_id": "261126-001",
        "product_id": "5001",
        "sku_id": "50011",
        "amount": "19.90",
    }


def test_the_product_is_the_first_items() -> None:
    items = [{"goods_id": 7, "sku_id": 71}, {"goods_id": 8, "sku_id": 81}]
    (paid,) = order_events("s1", order(item_list=items))
    assert (paid["product_id"], paid["sku_id"]) == ("7", "71")


def test_a_missing_sku_is_left_out() -> None:
    (paid,) = order_events("s1", order(item_list=[{"goods_id": 7, "sku_id": 0}]))
    assert "sku_id" not in paid


def test_shipped_and_delivered_follow_their_times() -> None:
    events = by_type(
        order_events(
            "s1",
            order(
                shipping_time="2026-11-26 18:30:00",
                receive_time="2026-11-29 09:15:00",
                logistics_id=115,
            ),
        )
    )
    assert events["order.shipped"] == {
        "event_id": "pdd:s1:order:261126-001:shipped",
        "type": "order.shipped",
        "store_id": "s1",
        "occurred_at": "2026-11-26T18:30:00+08:00",
        "order_id": "261126-001",
        "courier": "115",
    }
    assert events["order.delivered"] == {
        "event_id": "pdd:s1:order:261126-001:delivered",
        "type": "order.delivered",
        "store_id": "s1",
        "occurred_at": "2026-11-29T09:15:00+08:00",
        "order_id": "261126-001",
    }


def test_a_shipment_without_a_courier_number_has_no_courier() -> None:
    events = by_type(order_events("s1", order(shipping_time="2026-11-26 18:30:00")))
    assert "courier" not in events["order.shipped"]


@pytest.mark.parametrize("zero", ["", None, 0, "0000-00-00 00:00:00", "  "])
def test_zero_or_empty_times_mean_absent(zero: object) -> None:
    events = order_events("s1", order(shipping_time=zero, receive_time=zero))
    assert [e["type"] for e in events] == ["order.paid"]


def test_an_order_with_no_times_is_skipped() -> None:
    result = map_orders("s1", [order(confirm_time="", item_list=[])])
    assert result.events == []
    assert result.skipped == [SkippedRecord("order", "261126-001", "no_times")]


def test_an_unconfirmed_order_that_shipped_still_gives_its_shipment() -> None:
    events = order_events("s1", order(confirm_time="", shipping_time="2026-11-26 18:30:00"))
    assert [e["type"] for e in events] == ["order.shipped"]


@pytest.mark.parametrize(
    ("value", "amount"),
    [
        ("19.9", "19.90"),
        ("19.90", "19.90"),
        (Decimal("19.90"), "19.90"),
        (19.9, "19.90"),
        (20, "20.00"),
        ("0", "0.00"),
        ("1.2345", "1.2345"),
    ],
)
def test_pay_amount_is_a_canonical_decimal_string(value: object, amount: str) -> None:
    (paid,) = order_events("s1", order(pay_amount=value))
    assert paid["amount"] == amount


def test_a_missing_pay_amount_is_left_out() -> None:
    (paid,) = order_events("s1", order(pay_amount=""))
    assert "amount" not in paid


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"order_sn": ""}, "order_sn"),
        ({"order_sn": None}, "order_sn"),
        ({"order_sn": ["x"]}, "order_sn"),
        ({"confirm_time": "26/11/2026 10h"}, "confirm_time"),
        ({"shipping_time": 1764129600}, "shipping_time"),
        ({"item_list": []}, "item_list"),
        ({"item_list": None}, "item_list"),
        ({"item_list": [{"sku_id": 1}]}, "item_list[0].goods_id"),
        ({"pay_amount": "-1.00"}, "pay_amount"),
        ({"pay_amount": "abc"}, "pay_amount"),
        ({"pay_amount": "NaN"}, "pay_amount"),
        ({"pay_amount": "1.1234567"}, "pay_amount"),
        ({"pay_amount": True}, "pay_amount"),
    ],
)
def test_a_malformed_order_is_reported_whole(fields: dict[str, Any], field: str) -> None:
    with pytest.raises(MalformedRecord) as caught:
        order_events("s1", order(**{"shipping_time": "2026-11-26 18:30:00", **fields}))
    assert caught.value.field == field
    result = map_orders("s1", [order(**{"shipping_time": "2026-11-26 18:30:00", **fields})])
    assert result.events == []  # not even the shipment: never half-mapped
    (problem,) = result.malformed
    assert problem.field == field


def test_one_bad_order_does_not_stop_the_others() -> None:
    records: list[Any] = [
        order(order_sn="a"),
        order(order_sn="b", confirm_time="nope"),
        "not an object",
        order(order_sn="c"),
    ]
    result = map_orders("s1", records)
    assert [e["order_id"] for e in result.events] == ["a", "c"]
    assert result.malformed == [
        RecordProblem("order", "b", "confirm_time", "'nope' is not a YYYY-MM-DD HH:MM:SS time"),
        RecordProblem("order", None, "", "is not an object"),
    ]


# --------------------------------------------------------------------------- refunds


def test_an_application_is_requested_at_its_created_time() -> None:
    mapped = refund_events("s1", refund())
    assert mapped is not None
    assert mapped.events == [
        {
            "event_id": "pdd:s1:refund:9001:requested",
            "type": "refund.requested",
            "store_id": "s1",
            "occurred_at": "2026-11-26T12:00:00+08:00",
            "refund_id": "9001",
            "order_id": "261126-001",
            "kind": "refund_only",
            "reason": "quality_issue",
            "product_id": "5001",
            "sku_id": "50011",
        }
    ]
    assert mapped.unknown_reason is None


@pytest.mark.parametrize(("type_", "kind"), [(2, "refund_only"), (3, "return_refund")])
def test_after_sales_type_gives_the_kind(type_: int, kind: str) -> None:
    mapped = refund_events("s1", refund(after_sales_type=type_))
    assert mapped is not None
    assert mapped.events[0]["kind"] == kind


@pytest.mark.parametrize("type_", [1, 4, 5, 6])
def test_exchanges_and_reshipments_are_not_refunds(type_: int) -> None:
    assert refund_events("s1", refund(after_sales_type=type_)) is None
    result = map_refunds("s1", [refund(after_sales_type=type_)])
    assert result.events == []
    assert result.skipped == [SkippedRecord("refund", "9001", "not_a_refund")]


@pytest.mark.parametrize(
    ("status", "outcome"),
    [(10, "succeeded"), (11, "withdrawn"), (9, "rejected"), (12, "rejected"), (13, "rejected")],
)
def test_final_statuses_give_their_outcome_at_updated_time(status: int, outcome: str) -> None:
    mapped = refund_events(
        "s1", refund(after_sales_status=status, updated_time="2026-11-27 08:00:00")
    )
    assert mapped is not None
    requested, last = mapped.events
    assert requested["type"] == "refund.requested"
    assert last == {
        "event_id": f"pdd:s1:refund:9001:{outcome}",
        "type": f"refund.{outcome}",
        "store_id": "s1",
        "occurred_at": "2026-11-27T08:00:00+08:00",
        "refund_id": "9001",
    }


@pytest.mark.parametrize("status", [0, 2, 3, 4, 5, 6, 7, 8, 14, 31])
def test_other_statuses_leave_the_refund_open(status: int) -> None:
    mapped = refund_events("s1", refund(after_sales_status=status))
    assert mapped is not None
    assert [e["type"] for e in mapped.events] == ["refund.requested"]


def test_a_refund_seen_again_with_a_new_status_adds_only_that_outcome() -> None:
    first = map_refunds("s1", [refund()]).events
    later = map_refunds(
        "s1", [refund(after_sales_status=10, updated_time="2026-11-27 08:00:00")]
    ).events
    assert later[0] == first[0]  # the same requested event: a duplicate at ingest
    assert [e["event_id"] for e in later[1:]] == ["pdd:s1:refund:9001:succeeded"]


def test_the_refund_amount_is_not_carried() -> None:
    mapped = refund_events("s1", refund(refund_amount="5.00"))
    assert mapped is not None
    assert "amount" not in mapped.events[0]


def test_status_and_type_may_come_as_strings() -> None:
    mapped = refund_events("s1", refund(after_sales_type="3", after_sales_status="10"))
    assert mapped is not None
    assert [e["type"] for e in mapped.events] == ["refund.requested", "refund.succeeded"]


@pytest.mark.parametrize(
    ("label", "reason"),
    [
        ("质量问题", "quality_issue"),
        ("商品描述不符", "not_as_described"),
        ("破损/压坏", "damaged"),
        ("压坏", "damaged"),
        ("七天无理由退货", "changed_mind"),
        (" 发货慢 ", "shipping_delay"),
    ],
)
def test_reason_labels_go_through_the_table(label: str, reason: str) -> None:
    mapped = refund_events("s1", refund(after_sale_reason=label))
    assert mapped is not None
    assert mapped.events[0]["reason"] == reason
    assert mapped.unknown_reason is None


def test_unknown_labels_become_other_and_are_reported() -> None:
    result = map_refunds(
        "s1",
        [
            refund(id=1, after_sale_reason="尺码不合适"),
            refund(id=2, after_sale_reason="尺码不合适"),
            refund(id=3, after_sale_reason="质量问题"),
            refund(id=4, after_sale_reason=""),
        ],
    )
    assert [e["reason"] for e in result.events] == ["other", "other", "quality_issue", "other"]
    assert result.unknown_reasons == {"尺码不合适": 2, "": 1}


def test_aliases_remap_labels_first() -> None:
    result = map_refunds(
        "s1",
        [refund(after_sale_reason="尺码不合适")],
        reason_aliases={"尺码不合适": "not_as_described"},
    )
    assert result.events[0]["reason"] == "not_as_described"
    assert not result.unknown_reasons


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"id": None}, "id"),
        ({"id": 1.5}, "id"),
        ({"order_sn": ""}, "order_sn"),
        ({"after_sales_type": None}, "after_sales_type"),
        ({"after_sales_type": "x"}, "after_sales_type"),
        ({"after_sales_status": None}, "after_sales_status"),
        ({"created_time": ""}, "created_time"),
        ({"created_time": "yesterday"}, "created_time"),
        ({"after_sale_reason": 3}, "after_sale_reason"),
        ({"after_sales_status": 10, "updated_time": ""}, "updated_time"),
        ({"sku_id": {"x": 1}}, "sku_id"),
    ],
)
def test_a_malformed_refund_is_reported_whole(fields: dict[str, Any], field: str) -> None:
    result = map_refunds("s1", [refund(**fields)])
    assert result.events == []
    (problem,) = result.malformed
    assert (problem.record, problem.field) == ("refund", field)


def test_a_malformed_refund_keeps_its_number_in_the_report() -> None:
    result = map_refunds("s1", [refund(id=77, created_time="bad")])
    assert result.malformed[0].key == "77"


# --------------------------------------------------------------------------- the contract


def _event_adapter() -> Any:
    # The event schemas are being moved between packages; validate against
    # whichever holds them.
    for module in ("app.events.schemas", "app.ingest.schemas"):
        try:
            return importlib.import_module(module).EVENT_ADAPTER
        except (ImportError, AttributeError):
            continue
    pytest.skip("no EVENT_ADAPTER found in app.events.schemas or app.ingest.schemas")


def test_every_mapped_event_passes_the_event_contract() -> None:
    adapter = _event_adapter()
    events = [
        *map_orders(
            "s1",
            [
                order(
                    shipping_time="2026-11-26 18:30:00",
                    receive_time="2026-11-29 09:15:00",
                    logistics_id=115,
                )
            ],
        ).events,
        *map_refunds(
            "s1",
            [
                refund(id=1, after_sales_status=10, updated_time="2026-11-27 08:00:00"),
                refund(
                    id=2,
                    after_sales_type=3,
                    after_sales_status=11,
                    updated_time="2026-11-27 08:00:00",
                    after_sale_reason="尺码不合适",
                ),
                refund(id=3, after_sales_status=12, updated_time="2026-11-27 08:00:00"),
            ],
        ).events,
    ]
    assert len(events) == 9
    for event in events:
        adapter.validate_python(event)
