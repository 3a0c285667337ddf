"""Seller files to events: detection, the platform mapping rules, per-row errors."""

from __future__ import annotations

import json
import random
import tracemalloc
from collections import Counter
from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from app.imports.formats import (
    FormatError,
    ImportFormat,
    ImportTally,
    ReasonMapError,
    RowError,
    RowResult,
    header_key,
    load_reason_map,
    open_import,
)
from tests.imports import exports
from tests.imports.exports import AfterSaleRecord, OrderRecord

STORE = "s1"


def _read(path: Path, **options: Any) -> list[RowResult]:
    options.setdefault("store_id", STORE)
    with open_import(path, **options) as reader:
        return list(reader)


def _events(results: Sequence[RowResult]) -> list[dict[str, Any]]:
    return [event for result in results for event in result.events]


def _csv(tmp_path: Path, lines: Sequence[str], encoding: str = "utf-8") -> Path:
    path = tmp_path / "export.csv"
    path.write_bytes("\r\n".join(lines).encode(encoding) + b"\r\n")
    return path


def _order(**changes: Any) -> OrderRecord:
    base = exports.orders(11, 40)
    record = next(r for r in base if r.status == "已签收" and r.deal_time is not None)
    result: OrderRecord = exports.with_changes(record, **changes)
    return result


def _aftersale(**changes: Any) -> AfterSaleRecord:
    record = exports.aftersales(12, 1)[0]
    defaults = {
        "refund_type": "仅退款",
        "status": "待商家处理",
        "reason": "质量问题",
        "applied_at": datetime(2026, 11, 20, 10, 0, 0),
        "agreed_at": None,
    }
    result: AfterSaleRecord = exports.with_changes(record, **{**defaults, **changes})
    return result


# --- whole exports against an independent reading of the rules ---------------


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "gb18030"])
@pytest.mark.parametrize("wrapper", ["tab", "quote", "excel", "none"])
def test_an_order_export_gives_the_expected_events(
    tmp_path: Path, encoding: str, wrapper: exports.NumberWrapper
) -> None:
    records = exports.orders(1, 300)
    path = exports.write_orders_csv(tmp_path / "o.csv", records, encoding=encoding, wrapper=wrapper)
    with open_import(path, store_id=STORE) as reader:
        assert reader.format == "pdd-orders"
        assert reader.header_row == 2
        results = list(reader)
    assert _events(results) == exports.expected_order_events(records, STORE)
    assert [r.row for r in results] == list(range(3, 3 + len(records)))
    assert not any(r.errors for r in results)


@pytest.mark.parametrize("typed", [False, True], ids=["text-cells", "typed-cells"])
def test_an_aftersales_workbook_gives_the_expected_events(tmp_path: Path, typed: bool) -> None:
    records = exports.aftersales(2, 300)
    path = exports.write_aftersales_xlsx(tmp_path / "a.xlsx", records, typed=typed)
    with open_import(path, store_id=STORE) as reader:
        assert reader.format == "pdd-aftersales"
        assert reader.encoding is None
        results = list(reader)
    assert _events(results) == exports.expected_aftersale_events(records, STORE)
    tally = ImportTally()
    for result in results:
        tally.add(result)
    assert tally.unmapped_reasons == exports.expected_unmapped(records)
    assert tally.unmapped_reasons  # the generator does write unknown labels
    assert tally.skipped["not_a_refund"] == sum(
        r.refund_type in ("换货", "补寄", "维修") for r in records
    )


def test_csv_and_xlsx_of_one_export_give_identical_events(tmp_path: Path) -> None:
    # Same ids, same content: importing the other file later is all duplicates.
    records = exports.aftersales(3, 120)
    from_csv = _read(exports.write_aftersales_csv(tmp_path / "a.csv", records, encoding="gb18030"))
    from_xlsx = _read(exports.write_aftersales_xlsx(tmp_path / "a.xlsx", records, typed=True))
    assert _events(from_csv) == _events(from_xlsx)


def test_orders_saved_as_a_workbook_read_like_the_csv(tmp_path: Path) -> None:
    records = exports.orders(4, 80)
    from_xlsx = _read(exports.write_orders_xlsx(tmp_path / "o.xlsx", records, typed=True))
    assert _events(from_xlsx) == exports.expected_order_events(records, STORE)


def test_columns_in_any_order_with_only_the_required_ones(tmp_path: Path) -> None:
    records = exports.orders(5, 60)
    columns = list(exports.ORDER_COLUMNS)
    random.Random(5).shuffle(columns)
    shuffled = exports.write_orders_csv(tmp_path / "s.csv", records, columns=columns)
    assert _events(_read(shuffled)) == exports.expected_order_events(records, STORE)

    minimal = ("支付时间", "商品id", "订单号")
    path = exports.write_orders_csv(tmp_path / "m.csv", records, columns=minimal)
    with open_import(path, store_id=STORE) as reader:
        assert reader.ignored_columns == ()
        events = _events(list(reader))
    paid = [e for e in events if e["type"] == "order.paid"]
    # No status column: nothing is known to be unpaid, so rows without a pay time
    # are errors, and every event is an order.paid with only its required fields.
    assert {e["type"] for e in events} == {"order.paid"}
    assert all(
        set(e) == {"event_id", "type", "store_id", "occurred_at", "order_id", "product_id"}
        for e in paid
    )


def test_extra_columns_are_ignored_and_listed(tmp_path: Path) -> None:
    path = _csv(
        tmp_path, ["订单号,商品id,支付时间,买家留言", "231126-1,88,2026-11-20 10:00:00,尽快发货"]
    )
    with open_import(path, store_id=STORE) as reader:
        assert reader.ignored_columns == ("买家留言",)
        assert reader.columns == ("订单号", "商品id", "支付时间", "买家留言")
        assert len(_events(list(reader))) == 1


def test_headers_match_whatever_the_case_width_or_spacing(tmp_path: Path) -> None:
    assert header_key("商品ID") == header_key("商品id")
    assert header_key("用户实付金额（元）") == header_key("用户实付金额(元)")
    path = _csv(
        tmp_path,
        ["订单号, 商品ID ,支付时间,用户实付金额（元）", "231126-1,88,2026-11-20 10:00:00,19.9"],
    )
    (event,) = _events(_read(path))
    assert event["product_id"] == "88" and event["amount"] == "19.90"


def test_importing_the_same_file_twice_gives_the_same_events(tmp_path: Path) -> None:
    path = exports.write_orders_csv(tmp_path / "o.csv", exports.orders(6, 50))
    assert _events(_read(path)) == _events(_read(path))


# --- detection ---------------------------------------------------------------


@pytest.mark.parametrize("title_lines", [0, 1, 2, 14])
def test_the_header_may_sit_below_title_lines(tmp_path: Path, title_lines: int) -> None:
    titles = [f"订单查询导出 第{i}行" for i in range(title_lines)]
    records = exports.orders(7, 10)
    path = exports.write_orders_csv(tmp_path / "o.csv", records, title_lines=titles)
    with open_import(path, store_id=STORE) as reader:
        assert reader.header_row == title_lines + 1
        assert _events(list(reader)) == exports.expected_order_events(records, STORE)


def test_a_header_below_the_first_fifteen_rows_is_not_found(tmp_path: Path) -> None:
    titles = [f"说明 {i}" for i in range(15)]
    path = exports.write_orders_csv(tmp_path / "o.csv", exports.orders(7, 3), title_lines=titles)
    with pytest.raises(FormatError) as caught:
        open_import(path, store_id=STORE)
    assert caught.value.code == "unknown_format"


def test_an_unknown_file_is_refused_naming_what_it_lacks(tmp_path: Path) -> None:
    path = _csv(tmp_path, ["商品名称,数量", "T恤,1"])
    with pytest.raises(FormatError) as caught:
        open_import(path, store_id=STORE)
    message = caught.value.message
    assert caught.value.code == "unknown_format"
    for needed in ("订单号", "售后编号", "订单编号", "event_id", "type", "JSON object"):
        assert needed in message


def test_a_forced_format_names_its_missing_required_columns(tmp_path: Path) -> None:
    orders_file = exports.write_orders_csv(tmp_path / "o.csv", exports.orders(8, 3))
    with pytest.raises(FormatError) as caught:
        open_import(orders_file, store_id=STORE, format="pdd-aftersales")
    assert caught.value.code == "missing_columns"
    assert caught.value.missing_columns == (
        "售后编号",
        "订单编号",
        "申请时间",
        "退款类型",
        "退款原因",
    )

    path = _csv(tmp_path, ["订单号,支付时间", "231126-1,2026-11-20 10:00:00"])
    with pytest.raises(FormatError) as caught:
        open_import(path, store_id=STORE)
    assert caught.value.format == "pdd-orders"
    assert caught.value.missing_columns == ("商品id",)
    assert "商品id" in caught.value.message

    path = _csv(tmp_path, ["订单号,商品id,发货时间", "231126-1,88,"])
    with pytest.raises(FormatError) as caught:
        open_import(path, store_id=STORE, format="pdd-orders")
    assert caught.value.missing_columns == ("订单成交时间/支付时间/拼单成功时间",)


def test_an_aftersales_header_lacking_a_required_column_is_refused(tmp_path: Path) -> None:
    columns = [c for c in exports.AFTERSALE_COLUMNS if c != "退款原因"]
    path = exports.write_aftersales_csv(
        tmp_path / "a.csv", exports.aftersales(8, 3), columns=columns
    )
    with pytest.raises(FormatError) as caught:
        open_import(path, store_id=STORE)
    assert caught.value.missing_columns == ("退款原因",)


def test_forcing_jsonl_on_a_table_is_refused(tmp_path: Path) -> None:
    path = exports.write_orders_csv(tmp_path / "o.csv", exports.orders(8, 3))
    with pytest.raises(FormatError) as caught:
        open_import(path, format="events-jsonl")
    assert caught.value.code == "not_jsonl"


def test_platform_formats_need_a_store(tmp_path: Path) -> None:
    path = exports.write_orders_csv(tmp_path / "o.csv", exports.orders(8, 3))
    with pytest.raises(FormatError) as caught:
        open_import(path)
    assert caught.value.code == "store_required"
    with pytest.raises(FormatError) as caught:
        open_import(path, store_id="店铺一")
    assert caught.value.code == "invalid_store_id"
    with pytest.raises(ValueError, match="unknown format"):
        open_import(path, store_id=STORE, format="orders")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("header", "format"),
    [
        ("订单号,商品id,支付时间", "pdd-orders"),
        ("售后编号,订单编号,申请时间,退款类型,退款原因", "pdd-aftersales"),
        ("订单编号,申请时间,退款类型,退款原因,售后编号", "pdd-aftersales"),
        ("event_id,type,store_id,occurred_at", "events-csv"),
    ],
)
def test_the_header_decides_the_format(tmp_path: Path, header: str, format: ImportFormat) -> None:
    with open_import(_csv(tmp_path, ["导出", header]), store_id=STORE) as reader:
        assert reader.format == format
        assert list(reader) == []


# --- pdd-orders rules --------------------------------------------------------


def test_order_event_ids_derive_from_the_order_number(tmp_path: Path) -> None:
    record = _order(order_sn="231126-0123456789")
    results = _read(exports.write_orders_csv(tmp_path / "o.csv", [record]))
    assert [e["event_id"] for e in _events(results)] == [
        "pdd:s1:order:231126-0123456789:paid",
        "pdd:s1:order:231126-0123456789:shipped",
        "pdd:s1:order:231126-0123456789:delivered",
    ]


def test_a_delivered_order_gives_paid_shipped_and_delivered(tmp_path: Path) -> None:
    record = _order(
        order_sn="231126-1",
        goods_id="587123456789",
        style_id="12345678901",
        amount=Decimal("19.9"),
        deal_time=datetime(2026, 11, 20, 10, 0, 5),
        shipped_at=datetime(2026, 11, 21, 8, 30, 0),
        courier="中通快递",
        delivered_at=datetime(2026, 11, 23, 18, 0, 0),
    )
    results = _read(exports.write_orders_csv(tmp_path / "o.csv", [record]))
    assert _events(results) == [
        {
            "event_id": "pdd:s1:order:231126-1:paid",
            "type": "order.paid",
            "store_id": "s1",
            "occurred_at": "2026-11-20T10:00:05+08:00",
            "order_id": "231126-1",
            "product_id": "587123456789",
            "sku_id": "12345678901",
            "amount": "19.90",
        },
        {
            "event_id": "pdd:s1:order:231126-1:shipped",
            "type": "order.shipped",
            "store_id": "s1",
            "occurred_at": "2026-11-21T08:30:00+08:00",
            "order_id": "231126-1",
            "courier": "中通快递",
        },
        {
            "event_id": "pdd:s1:order:231126-1:delivered",
            "type": "order.delivered",
            "store_id": "s1",
            "occurred_at": "2026-11-23T18:00:00+08:00",
            "order_id": "231126-1",
        },
    ]


def test_the_paid_time_falls_back_per_row(tmp_path: Path) -> None:
    deal, pay, group = (datetime(2026, 11, 20, h, 0, 0) for h in (10, 9, 11))
    rows = [
        _order(order_sn="a", deal_time=deal, pay_time=pay, group_time=group),
        _order(order_sn="b", deal_time=None, pay_time=pay, group_time=group),
        _order(order_sn="c", deal_time=None, pay_time=None, group_time=group),
    ]
    results = _read(exports.write_orders_csv(tmp_path / "o.csv", rows))
    paid = {e["order_id"]: e["occurred_at"] for e in _events(results) if e["type"] == "order.paid"}
    assert paid == {
        "a": "2026-11-20T10:00:00+08:00",
        "b": "2026-11-20T09:00:00+08:00",
        "c": "2026-11-20T11:00:00+08:00",
    }


def test_the_sku_is_the_style_id_else_the_spec(tmp_path: Path) -> None:
    rows = [
        _order(order_sn="a", style_id="111", spec="白色,XL"),
        _order(order_sn="b", style_id="", spec="白色,XL"),
        _order(order_sn="c", style_id="", spec=""),
    ]
    results = _read(exports.write_orders_csv(tmp_path / "o.csv", rows))
    paid = {e["order_id"]: e for e in _events(results) if e["type"] == "order.paid"}
    assert paid["a"]["sku_id"] == "111"
    assert paid["b"]["sku_id"] == "白色,XL"
    assert "sku_id" not in paid["c"]


def test_unpaid_and_cancelled_orders_are_skipped(tmp_path: Path) -> None:
    rows = [
        _order(order_sn="a", status="待支付", deal_time=None, pay_time=None, group_time=None),
        _order(order_sn="b", status="已取消"),
        _order(order_sn="c", status="待发货", shipped_at=None, delivered_at=None),
    ]
    results = _read(exports.write_orders_csv(tmp_path / "o.csv", rows))
    assert [r.skip for r in results] == ["not_paid", "not_paid", None]
    assert [e["event_id"] for e in _events(results)] == ["pdd:s1:order:c:paid"]


def test_a_shipped_order_without_a_courier_omits_it(tmp_path: Path) -> None:
    record = _order(courier="", delivered_at=None)
    shipped = [e for e in _events(_read(exports.write_orders_csv(tmp_path / "o.csv", [record])))][1]
    assert shipped["type"] == "order.shipped" and "courier" not in shipped


@pytest.mark.parametrize(
    ("written", "amount"),
    [
        ("19.9", "19.90"),
        ("¥1,299.00", "1299.00"),
        ("￥ 8", "8.00"),
        ("35.5元", "35.50"),
        ("0", "0.00"),
        ("1299.900", "1299.90"),
        ("１９.９０", "19.90"),
    ],
)
def test_money_in_yuan_becomes_a_decimal_string(tmp_path: Path, written: str, amount: str) -> None:
    path = _csv(
        tmp_path,
        ["订单号,商品id,支付时间,用户实付金额(元)", f'231126-1,88,2026-11-20 10:00:00,"{written}"'],
    )
    assert _events(_read(path))[0]["amount"] == amount


@pytest.mark.parametrize("written", ["abc", "-5", "19.999", "1,2,3", "19.9.9", "١٩"])
def test_anything_else_as_money_is_a_row_error(tmp_path: Path, written: str) -> None:
    path = _csv(
        tmp_path,
        ["订单号,商品id,支付时间,用户实付金额(元)", f'231126-1,88,2026-11-20 10:00:00,"{written}"'],
    )
    (result,) = _read(path)
    assert result.events == []
    assert [(e.row, e.column, e.code) for e in result.errors] == [
        (2, "用户实付金额(元)", "invalid_amount")
    ]
    assert written in result.errors[0].message


def test_times_are_local_to_the_store_zone(tmp_path: Path) -> None:
    path = _csv(
        tmp_path,
        [
            "订单号,商品id,支付时间",
            "231126-1,88,2026/11/20 10:00",
            "231126-2,88,2026-07-01 10:00:00",
        ],
    )
    events = _events(_read(path, tz=ZoneInfo("Europe/Berlin")))
    assert [e["occurred_at"] for e in events] == [
        "2026-11-20T10:00:00+01:00",
        "2026-07-01T10:00:00+02:00",
    ]


def test_bad_rows_are_reported_and_the_rest_still_produced(tmp_path: Path) -> None:
    path = _csv(
        tmp_path,
        [
            "订单查询导出 2026-11-26",
            "订单号,商品id,订单状态,支付时间,发货时间,确认收货时间",
            "231126-1,88,已签收,2026-11-20 10:00:00,2026-11-21 10:00:00,2026-11-23 10:00:00",
            ",88,待发货,2026-13-20 10:00:00,,",
            "231126-3,,已发货待签收,,昨天,",
            "",
            "231126-5,88,待发货,2026-11-20 11:00:00,,",
        ],
    )
    results = _read(path)
    assert [r.row for r in results] == [3, 4, 5, 6, 7]
    assert [len(r.events) for r in results] == [3, 0, 0, 0, 1]
    assert results[3].skip == "blank"
    assert results[1].errors == [
        RowError(4, "订单号", "missing_value", "订单号 is empty"),
        RowError(
            4,
            "支付时间",
            "invalid_time",
            "支付时间 '2026-13-20 10:00:00' is not a time like 2026-11-26 10:00:00",
        ),
    ]
    assert [(e.row, e.column, e.code) for e in results[2].errors] == [
        (5, "商品id", "missing_value"),
        (5, "支付时间", "missing_value"),
        (5, "发货时间", "invalid_time"),
    ]


def test_ids_a_spreadsheet_shortened_are_row_errors(tmp_path: Path) -> None:
    path = _csv(
        tmp_path,
        [
            "订单号,商品id,样式ID,支付时间",
            "231126-1,5.87123E+11,12345678901,2026-11-20 10:00:00",
            "231126-2,587123456789,1.23457E+10,2026-11-20 10:00:00",
            "231126-3,587123456789,12345678901,2026-11-20 10:00:00",
        ],
    )
    results = _read(path)
    assert [[(e.column, e.code) for e in r.errors] for r in results] == [
        [("商品id", "invalid_id")],
        [("样式ID", "invalid_id")],
        [],
    ]
    assert "spreadsheet" in results[0].errors[0].message


def test_a_row_with_any_error_gives_no_events_at_all(tmp_path: Path) -> None:
    # Half a row now and the rest after a fix would change nothing, but a paid
    # event without its amount now and with it later would conflict.
    path = _csv(
        tmp_path, ["订单号,商品id,支付时间,确认收货时间", "231126-1,88,2026-11-20 10:00:00,不详"]
    )
    (result,) = _read(path)
    assert result.events == [] and result.errors[0].column == "确认收货时间"


# --- pdd-aftersales rules ----------------------------------------------------


def _one(tmp_path: Path, record: AfterSaleRecord, **options: Any) -> RowResult:
    (result,) = _read(exports.write_aftersales_csv(tmp_path / "a.csv", [record]), **options)
    return result


def test_an_open_refund_gives_only_its_request(tmp_path: Path) -> None:
    record = _aftersale(after_sale_id="13579246801", order_sn="231126-1", goods_id="587123456789")
    assert _one(tmp_path, record).events == [
        {
            "event_id": "pdd:s1:refund:13579246801:requested",
            "type": "refund.requested",
            "store_id": "s1",
            "occurred_at": "2026-11-20T10:00:00+08:00",
            "refund_id": "13579246801",
            "order_id": "231126-1",
            "kind": "refund_only",
            "reason": "quality_issue",
            "product_id": "587123456789",
        }
    ]


@pytest.mark.parametrize(
    ("status", "agreed_at", "outcome", "at"),
    [
        ("退款成功", datetime(2026, 11, 21, 9, 0, 0), "succeeded", "2026-11-21T09:00:00+08:00"),
        ("退款成功", None, "succeeded", "2026-11-20T10:00:00+08:00"),
        ("退款关闭", None, "withdrawn", "2026-11-20T10:00:00+08:00"),
        ("退款关闭", datetime(2026, 11, 22, 9, 0, 0), "withdrawn", "2026-11-22T09:00:00+08:00"),
        # An agreement stamped before the application cannot precede it.
        ("退款成功", datetime(2026, 11, 19, 9, 0, 0), "succeeded", "2026-11-20T10:00:00+08:00"),
    ],
)
def test_a_settled_refund_gives_its_outcome(
    tmp_path: Path, status: str, agreed_at: datetime | None, outcome: str, at: str
) -> None:
    record = _aftersale(after_sale_id="42", status=status, agreed_at=agreed_at)
    requested, settled = _one(tmp_path, record).events
    assert requested["event_id"] == "pdd:s1:refund:42:requested"
    assert settled == {
        "event_id": f"pdd:s1:refund:42:{outcome}",
        "type": f"refund.{outcome}",
        "store_id": "s1",
        "occurred_at": at,
        "refund_id": "42",
    }


@pytest.mark.parametrize(
    "status", ["待商家处理", "待买家退货", "待商家收货", "商家已拒绝，待买家处理", ""]
)
def test_any_other_status_leaves_the_refund_open(tmp_path: Path, status: str) -> None:
    events = _one(tmp_path, _aftersale(status=status, agreed_at=datetime(2026, 11, 21))).events
    assert [e["type"] for e in events] == ["refund.requested"]


@pytest.mark.parametrize(
    ("refund_type", "kind"), [("仅退款", "refund_only"), ("退货退款", "return_refund")]
)
def test_the_refund_type_gives_the_kind(tmp_path: Path, refund_type: str, kind: str) -> None:
    assert _one(tmp_path, _aftersale(refund_type=refund_type)).events[0]["kind"] == kind


@pytest.mark.parametrize("refund_type", ["换货", "补寄", "维修"])
def test_exchanges_resends_and_repairs_are_skipped(tmp_path: Path, refund_type: str) -> None:
    result = _one(tmp_path, _aftersale(refund_type=refund_type, reason="尺码不合适"))
    assert result.skip == "not_a_refund" and result.events == [] and result.unmapped_reason is None


def test_an_unknown_refund_type_is_a_row_error(tmp_path: Path) -> None:
    result = _one(tmp_path, _aftersale(refund_type="价保"))
    assert [(e.column, e.code) for e in result.errors] == [("退款类型", "unknown_refund_type")]


def test_the_order_status_does_not_change_the_kind(tmp_path: Path) -> None:
    # The export's 订单状态 is today's, not the application's: a re-import after
    # shipping must give the same event.
    before = _one(tmp_path, _aftersale(order_status="待发货")).events
    after = _one(tmp_path, _aftersale(order_status="已签收")).events
    assert before == after


@pytest.mark.parametrize(
    ("label", "reason"),
    [
        ("质量问题", "quality_issue"),
        ("做工粗糙", "quality_issue"),
        ("变质", "quality_issue"),
        ("商品描述不符", "not_as_described"),
        ("大小/规格/重量与描述不符", "not_as_described"),
        ("压坏", "damaged"),
        ("发错货", "wrong_item"),
        ("漏发", "missing_parts"),
        ("非正品", "counterfeit"),
        ("七天无理由退货", "changed_mind"),
        ("多拍", "ordered_by_mistake"),
        ("发货履约原因", "shipping_delay"),
        ("快递丢件", "lost_in_transit"),
        ("其他原因", "other"),
    ],
)
def test_platform_reason_labels_map_to_codes(tmp_path: Path, label: str, reason: str) -> None:
    result = _one(tmp_path, _aftersale(reason=label))
    assert result.events[0]["reason"] == reason
    assert result.unmapped_reason is None


def test_an_unknown_label_becomes_other_and_is_reported(tmp_path: Path) -> None:
    result = _one(tmp_path, _aftersale(reason="尺码不合适"))
    assert result.events[0]["reason"] == "other"
    assert result.unmapped_reason == "尺码不合适"


def test_the_reason_map_comes_before_the_label_table(tmp_path: Path) -> None:
    aliases = {"尺码不合适": "not_as_described", "瑕疵": "damaged"}
    unknown = _one(tmp_path, _aftersale(reason="尺码不合适"), reason_aliases=aliases)
    known = _one(tmp_path, _aftersale(reason="瑕疵"), reason_aliases=aliases)
    assert unknown.events[0]["reason"] == "not_as_described" and unknown.unmapped_reason is None
    assert known.events[0]["reason"] == "damaged"

    records = exports.aftersales(9, 200)
    path = exports.write_aftersales_csv(tmp_path / "many.csv", records)
    results = _read(path, reason_aliases=aliases)
    assert _events(results) == exports.expected_aftersale_events(records, STORE, aliases=aliases)
    reported = Counter(r.unmapped_reason for r in results if r.unmapped_reason)
    assert reported == exports.expected_unmapped(records, aliases)


def test_bad_aftersale_rows_name_row_column_and_code(tmp_path: Path) -> None:
    path = _csv(
        tmp_path,
        [
            "售后列表导出",
            "售后编号,订单编号,申请时间,退款类型,退款原因,售后状态,同意退款时间",
            "1,231126-1,2026-11-20 10:00:00,仅退款,质量问题,退款成功,2026-11-21 10:00:00",
            ",231126-2,,退货退款,,退款成功,坏时间",
            "3,231126-3,2026-11-20 10:00:00,,质量问题,,",
        ],
    )
    results = _read(path)
    assert len(results[0].events) == 2
    assert [(e.row, e.column, e.code) for e in results[1].errors] == [
        (4, "售后编号", "missing_value"),
        (4, "申请时间", "missing_value"),
        (4, "退款原因", "missing_value"),
        (4, "同意退款时间", "invalid_time"),
    ]
    assert [(e.row, e.column, e.code) for e in results[2].errors] == [
        (5, "退款类型", "missing_value")
    ]


# --- event files -------------------------------------------------------------

_PAID = {
    "event_id": "e1",
    "type": "order.paid",
    "store_id": "s1",
    "occurred_at": "2026-11-25T10:00:00+08:00",
    "order_id": "o1",
    "product_id": "p1",
}


def test_event_lines_pass_through_as_they_are(tmp_path: Path) -> None:
    other = {
        "event_id": "e2",
        "type": "refund.succeeded",
        "store_id": "s1",
        "occurred_at": "x",
        "refund_id": "r1",
        "note": [1],
    }
    path = _csv(tmp_path, [json.dumps(_PAID), "", json.dumps(other, ensure_ascii=False)])
    with open_import(path) as reader:
        assert reader.format == "events-jsonl" and reader.header_row is None
        results = list(reader)
    assert [(r.row, r.skip) for r in results] == [(1, None), (2, "blank"), (3, None)]
    assert _events(results) == [_PAID, other]


def test_bad_event_lines_are_reported_and_the_rest_go_in(tmp_path: Path) -> None:
    lines = [
        json.dumps(_PAID),
        '{"event_id": "e2", "type": ',
        "[1, 2]",
        '{"event_id": "e3", "amount": NaN}',
        json.dumps({**_PAID, "event_id": "e4", "store_id": "s2"}),
    ]
    results = _read(_csv(tmp_path, lines))
    assert [e["event_id"] for e in _events(results)] == ["e1"]
    codes = [[(e.row, e.column, e.code) for e in r.errors] for r in results[1:]]
    assert codes == [
        [(2, None, "invalid_json")],
        [(3, None, "invalid_event")],
        [(4, None, "invalid_json")],
        [(5, "store_id", "store_mismatch")],
    ]
    assert "column" in results[1].errors[0].message
    assert "s2" in results[4].errors[0].message


def test_event_rows_take_non_empty_cells_as_fields(tmp_path: Path) -> None:
    path = _csv(
        tmp_path,
        [
            "event_id,type,store_id,occurred_at,order_id,product_id,sku_id,amount,refund_id,kind,reason,备注",
            "e1,order.paid,s1,2026-11-25T10:00:00+08:00,o1,p1,,19.90,,,,first",
            "e2,refund.requested,s1,2026-11-25T11:00:00+08:00,o1,,,,r1,refund_only,质量问题,",
            ",,,,,,,,,,,",
            "e3,order.paid,s2,2026-11-25T10:00:00+08:00,o2,p1,,,,,,",
        ],
    )
    with open_import(path, store_id="s1") as reader:
        assert reader.format == "events-csv"
        assert reader.ignored_columns == ("备注",)
        results = list(reader)
    assert results[0].events == [{**_PAID, "amount": "19.90"}]
    assert results[1].events == [
        {
            "event_id": "e2",
            "type": "refund.requested",
            "store_id": "s1",
            "occurred_at": "2026-11-25T11:00:00+08:00",
            "order_id": "o1",
            "refund_id": "r1",
            "kind": "refund_only",
            "reason": "质量问题",
        }
    ]
    assert results[2].skip == "blank"
    assert [(e.row, e.code) for e in results[3].errors] == [(5, "store_mismatch")]


def test_event_files_need_no_store(tmp_path: Path) -> None:
    path = _csv(
        tmp_path,
        ["event_id,type,store_id,occurred_at", "e1,order.delivered,s9,2026-11-25T10:00:00Z"],
    )
    with open_import(path) as reader:
        assert _events(list(reader))[0]["store_id"] == "s9"


def test_an_events_csv_header_needs_the_common_fields(tmp_path: Path) -> None:
    with pytest.raises(FormatError) as caught:
        open_import(_csv(tmp_path, ["event_id,type,order_id", "e1,order.delivered,o1"]))
    assert caught.value.missing_columns == ("store_id", "occurred_at")


# --- reason maps -------------------------------------------------------------


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "gb18030"])
def test_a_reason_map_loads_with_or_without_header(tmp_path: Path, encoding: str) -> None:
    with_header = _csv(
        tmp_path, ["label,reason", "尺码不合适,not_as_described", "", "瑕疵, damaged "], encoding
    )
    assert load_reason_map(with_header) == {"尺码不合适": "not_as_described", "瑕疵": "damaged"}
    bare = _csv(tmp_path, ["尺码不合适,质量问题"], encoding)
    assert load_reason_map(bare) == {"尺码不合适": "quality_issue"}


@pytest.mark.parametrize(
    ("lines", "line", "words"),
    [
        (["label,reason", "尺码不合适,quality"], 2, ["'quality'", "quality_issue"]),
        (["尺码不合适,other", "效果不好"], 2, ["two columns"]),
        (["尺码不合适,other", ",other"], 2, ["label is empty"]),
        (["尺码不合适,other", "尺码不合适,damaged"], 2, ["both other and damaged"]),
        (["a,b,c"], 1, ["found 3"]),
    ],
)
def test_a_bad_reason_map_names_the_line(
    tmp_path: Path, lines: list[str], line: int, words: list[str]
) -> None:
    with pytest.raises(ReasonMapError) as caught:
        load_reason_map(_csv(tmp_path, lines))
    assert caught.value.line == line
    assert str(caught.value).startswith(f"line {line}: ")
    for word in words:
        assert word in str(caught.value)


# --- summary and streaming ---------------------------------------------------


def test_the_tally_counts_rows_events_skips_errors_and_labels() -> None:
    tally = ImportTally()
    for result in [
        RowResult(1, events=[{}, {}], unmapped_reason="尺码不合适"),
        RowResult(2, skip="not_paid"),
        RowResult(3, skip="blank"),
        RowResult(
            4, errors=[RowError(4, "a", "invalid_time", ""), RowError(4, "b", "missing_value", "")]
        ),
        RowResult(5, events=[{}], unmapped_reason="尺码不合适"),
    ]:
        tally.add(result)
    assert (tally.rows, tally.rows_with_events, tally.rows_with_errors, tally.events) == (
        5,
        2,
        1,
        3,
    )
    assert tally.skipped == Counter({"not_paid": 1, "blank": 1})
    assert tally.errors == Counter({"invalid_time": 1, "missing_value": 1})
    assert tally.unmapped_reasons == Counter({"尺码不合适": 2})


def test_streaming_a_large_export_keeps_memory_flat(tmp_path: Path) -> None:
    # Few wide rows make a big file cheaply: tracemalloc slows every allocation.
    path = exports.write_many_orders_csv(tmp_path / "big.csv", 2500, remark_chars=2000)
    size = path.stat().st_size
    assert size > 15_000_000
    tracemalloc.start()
    try:
        events = 0
        with open_import(path, store_id=STORE) as reader:
            for result in reader:
                events += len(result.events)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert events > 2500
    # The leading sample (1 MiB, decoded) and I/O buffers, never the file.
    assert peak < 6_000_000, f"peak {peak:,} bytes for a {size:,}-byte file"
