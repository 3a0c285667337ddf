"""Realistic Pinduoduo merchant-backend exports, deterministic from a seed.

For tests, the bench and the demo: order exports (订单查询 → 导出) and after-sales
exports (售后列表 → 导出) with the backend's Chinese headers, a title line above
the header, its number formats and its quirks — a tab (or ``'`` or ``="…"``) in
front of long numbers, UTF-8 with or without BOM or GB18030, and XLSX files whose
``<dimension>`` claims the sheet is the single cell A1.

Each record also knows the events an independent reading of the import rules
expects (:func:`expected_order_events`, :func:`expected_aftersale_events`),
computed from the typed record, not from the written text, so a test compares
two readings of the rules rather than one reading with itself.
"""

from __future__ import annotations

import csv
import random
import re
import shutil
import tempfile
import zipfile
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo

SHANGHAI = ZoneInfo("Asia/Shanghai")
EXPORT_DAY = datetime(2026, 11, 26, 9, 30, 12)

NumberWrapper = Literal["tab", "quote", "excel", "none"]

COURIERS = ("中通快递", "圆通速递", "韵达快递", "申通快递", "极兔速递", "顺丰速运", "邮政快递包裹")
GOODS = (
    ("夏季新款纯棉短袖T恤男宽松百搭", ("白色,XL", "黑色,L", "灰色,XXL", "藏青,M")),
    ("加厚珊瑚绒四件套床上用品", ("1.5m床-灰色", "1.8m床-粉色", "2.0m床-蓝色")),
    ("不锈钢保温杯大容量学生水杯", ("500ml-白", "750ml-黑", "1000ml-绿")),
    ("儿童防滑拖鞋夏季室内家用", ("24-25码 粉", "26-27码 蓝", "28-29码 黄")),
    ("手机壳适用苹果15 透明防摔", ("iPhone15-透明", "iPhone15Pro-磨砂黑")),
)
PROVINCES = (
    ("广东省", "深圳市", "南山区"),
    ("浙江省", "杭州市", "余杭区"),
    ("江苏省", "苏州市", "吴中区"),
    ("四川省", "成都市", "武侯区"),
    ("河南省", "郑州市", "金水区"),
)
SURNAMES = "王李张刘陈杨黄赵吴周"

# (订单状态, paid, shipped, delivered, weight)
ORDER_STATUSES: tuple[tuple[str, bool, bool, bool, int], ...] = (
    ("待发货", True, False, False, 14),
    ("已发货待签收", True, True, False, 20),
    ("已签收", True, True, True, 52),
    ("未发货，退款成功", True, False, False, 3),
    ("待支付", False, False, False, 5),
    ("已取消", False, False, False, 6),
)
SKIPPED_ORDER_STATUSES = frozenset({"待支付", "已取消"})

KNOWN_REASONS: dict[str, str] = {
    "质量问题": "quality_issue",
    "做工粗糙": "quality_issue",
    "瑕疵": "quality_issue",
    "商品腐败/变质/胀气": "quality_issue",
    "货物与描述不符": "not_as_described",
    "大小/规格/重量与描述不符": "not_as_described",
    "破损/压坏": "damaged",
    "发错货": "wrong_item",
    "少件/漏发": "missing_parts",
    "疑似假货": "counterfeit",
    "不想要了": "changed_mind",
    "七天无理由退货": "changed_mind",
    "拍错/多拍": "ordered_by_mistake",
    "发货慢": "shipping_delay",
    "快递丢件": "lost_in_transit",
    "其他原因": "other",
}
UNKNOWN_REASONS = ("尺码不合适", "效果不好/不喜欢", "买贵了/降价", "与商家协商一致退款")
REFUND_TYPES = (("仅退款", 55), ("退货退款", 35), ("换货", 6), ("补寄", 3), ("维修", 1))
KIND_BY_TYPE = {"仅退款": "refund_only", "退货退款": "return_refund"}
AFTERSALE_STATUSES = (
    ("退款成功", 45),
    ("退款关闭", 20),
    ("待商家处理", 15),
    ("待买家退货", 10),
    ("待商家收货", 6),
    ("商家已拒绝，待买家处理", 4),
)

ORDER_COLUMNS = (
    "商品",
    "订单号",
    "订单状态",
    "商品总价(元)",
    "店铺优惠折扣(元)",
    "用户实付金额(元)",
    "商品数量(件)",
    "收货人",
    "手机",
    "省",
    "市",
    "区",
    "街道",
    "订单成交时间",
    "支付时间",
    "拼单成功时间",
    "发货时间",
    "确认收货时间",
    "商品id",
    "商品规格",
    "样式ID",
    "商家编码-SKU维度",
    "快递单号",
    "快递公司",
    "售后状态",
    "商家备注",
)
ORDER_LONG_NUMBERS = frozenset({"订单号", "商品id", "样式ID", "快递单号"})

AFTERSALE_COLUMNS = (
    "售后编号",
    "订单编号",
    "商品名称",
    "商品ID",
    "商品规格",
    "订单状态",
    "售后状态",
    "退款类型",
    "退款原因",
    "申请时间",
    "同意退款时间",
    "订单金额(元)",
    "退款金额(元)",
    "买家退货物流公司",
    "买家退货运单号",
    "售后说明",
)
AFTERSALE_LONG_NUMBERS = frozenset({"售后编号", "订单编号", "商品ID", "买家退货运单号"})


@dataclass(frozen=True)
class OrderRecord:
    """One row of the order export, typed (times naive, in the store's zone)."""

    order_sn: str
    goods_name: str
    goods_id: str
    spec: str
    style_id: str
    status: str
    amount: Decimal
    quantity: int
    deal_time: datetime | None  # 订单成交时间
    pay_time: datetime | None  # 支付时间
    group_time: datetime | None  # 拼单成功时间
    shipped_at: datetime | None
    courier: str
    tracking_no: str
    delivered_at: datetime | None
    receiver: str
    region: tuple[str, str, str]


@dataclass(frozen=True)
class AfterSaleRecord:
    """One row of the after-sales export, typed."""

    after_sale_id: str
    order_sn: str
    goods_name: str
    goods_id: str
    spec: str
    order_status: str
    status: str
    refund_type: str
    reason: str
    applied_at: datetime
    agreed_at: datetime | None
    order_amount: Decimal
    refund_amount: Decimal


def _weighted(rng: random.Random, choices: Sequence[tuple[Any, int]]) -> Any:
    return rng.choices([c[0] for c in choices], weights=[c[1] for c in choices])[0]


def _digits(rng: random.Random, count: int) -> str:
    return str(rng.randrange(10 ** (count - 1), 10**count))


def iter_orders(
    seed: int, count: int, *, start: datetime = datetime(2026, 10, 20), days: int = 35
) -> Iterator[OrderRecord]:
    """``count`` orders placed over ``days`` days from ``start``, deterministic from ``seed``.

    About 1 in 9 rows is unpaid or cancelled; the paid time columns vary per row
    (订单成交时间 sometimes empty, sometimes only 拼单成功时间), as exports do.
    """
    rng = random.Random(seed)
    goods = [
        (name, _digits(rng, 12), specs, [_digits(rng, 11) for _ in specs]) for name, specs in GOODS
    ]
    statuses = [(s[0], s[4]) for s in ORDER_STATUSES]
    flags = {s[0]: s[1:4] for s in ORDER_STATUSES}
    for _ in range(count):
        created = start + timedelta(seconds=rng.randrange(days * 86400))
        name, goods_id, specs, style_ids = rng.choice(goods)
        variant = rng.randrange(len(specs))
        status = _weighted(rng, statuses)
        paid, shipped, delivered = flags[status]
        pay_time = created + timedelta(seconds=rng.randrange(5, 600)) if paid else None
        deal_time = group_time = None
        if pay_time is not None:
            group_time = pay_time + timedelta(seconds=rng.randrange(0, 3600))
            shape = rng.random()
            if shape < 0.75:
                deal_time = group_time
            elif shape < 0.9:
                pass  # 订单成交时间 left empty: 支付时间 is the fallback
            else:
                pay_time = None  # only 拼单成功时间
        elif status == "已取消" and rng.random() < 0.5:
            pay_time = created + timedelta(seconds=30)  # paid, then cancelled before grouping
        base = group_time or pay_time or created
        shipped_at = base + timedelta(hours=rng.uniform(2, 80)) if shipped else None
        delivered_at = (
            shipped_at + timedelta(hours=rng.uniform(20, 120))
            if delivered and shipped_at is not None
            else None
        )
        quantity = rng.choice((1, 1, 1, 2, 3))
        amount = Decimal(rng.randrange(390, 29900)) / 100 * quantity
        yield OrderRecord(
            order_sn=f"{created:%y%m%d}-{_digits(rng, 15)}",
            goods_name=name,
            goods_id=goods_id,
            spec=specs[variant],
            style_id=style_ids[variant],
            status=status,
            amount=amount.quantize(Decimal("0.01")),
            quantity=quantity,
            deal_time=_to_second(deal_time),
            pay_time=_to_second(pay_time),
            group_time=_to_second(group_time),
            shipped_at=_to_second(shipped_at),
            courier=rng.choice(COURIERS) if shipped else "",
            tracking_no=("YT" + _digits(rng, 13)) if shipped else "",
            delivered_at=_to_second(delivered_at),
            receiver=rng.choice(SURNAMES) + "**",
            region=rng.choice(PROVINCES),
        )


def orders(seed: int, count: int) -> list[OrderRecord]:
    """:func:`iter_orders` as a list."""
    return list(iter_orders(seed, count))


def aftersales(
    seed: int, count: int, *, source: Sequence[OrderRecord] | None = None
) -> list[AfterSaleRecord]:
    """``count`` after-sale applications on paid orders of ``source`` (generated if None).

    Reasons come from the platform's label table, with about 1 in 8 an unknown
    label; about 1 in 10 rows is an exchange, resend or repair (not a refund).
    """
    rng = random.Random(seed * 7919 + 1)
    paid = [
        o for o in (source or orders(seed, count * 3)) if o.status not in SKIPPED_ORDER_STATUSES
    ]
    known = list(KNOWN_REASONS)
    records: list[AfterSaleRecord] = []
    for _ in range(count):
        order = rng.choice(paid)
        base = order.group_time or order.pay_time or order.deal_time
        assert base is not None
        applied_at = base + timedelta(hours=rng.uniform(1, 240))
        status = _weighted(rng, AFTERSALE_STATUSES)
        # A refund paid out usually shows when it was agreed; a closed one seldom does.
        agreed_share = {"退款成功": 0.85, "退款关闭": 0.2}.get(status, 0.0)
        agreed_at: datetime | None = None
        if rng.random() < agreed_share:
            agreed_at = applied_at + timedelta(hours=rng.uniform(0.1, 48))
        reason = rng.choice(UNKNOWN_REASONS) if rng.random() < 0.125 else rng.choice(known)
        records.append(
            AfterSaleRecord(
                after_sale_id=_digits(rng, 11),
                order_sn=order.order_sn,
                goods_name=order.goods_name,
                goods_id=order.goods_id,
                spec=order.spec,
                order_status=order.status,
                status=status,
                refund_type=_weighted(rng, REFUND_TYPES),
                reason=reason,
                applied_at=_to_second(applied_at) or applied_at,
                agreed_at=_to_second(agreed_at),
                order_amount=order.amount,
                refund_amount=order.amount,
            )
        )
    return records


def _to_second(moment: datetime | None) -> datetime | None:
    return moment.replace(microsecond=0) if moment is not None else None


# ---------------------------------------------------------------------------
# What the rules expect


def _local(moment: datetime, tz: ZoneInfo) -> str:
    return moment.replace(tzinfo=tz).isoformat()


def expected_order_events(
    records: Iterable[OrderRecord], store_id: str, tz: ZoneInfo = SHANGHAI
) -> list[dict[str, Any]]:
    """The events the import rules give for these order rows, in row order."""
    events: list[dict[str, Any]] = []
    for record in records:
        if record.status in SKIPPED_ORDER_STATUSES:
            continue
        paid_at = record.deal_time or record.pay_time or record.group_time
        assert paid_at is not None
        prefix = f"pdd:{store_id}:order:{record.order_sn}"
        paid: dict[str, Any] = {
            "event_id": f"{prefix}:paid",
            "type": "order.paid",
            "store_id": store_id,
            "occurred_at": _local(paid_at, tz),
            "order_id": record.order_sn,
            "product_id": record.goods_id,
        }
        if record.style_id or record.spec:
            paid["sku_id"] = record.style_id or record.spec
        paid["amount"] = f"{record.amount:.2f}"
        events.append(paid)
        if record.shipped_at is not None:
            shipped = {
                "event_id": f"{prefix}:shipped",
                "type": "order.shipped",
                "store_id": store_id,
                "occurred_at": _local(record.shipped_at, tz),
                "order_id": record.order_sn,
            }
            if record.courier:
                shipped["courier"] = record.courier
            events.append(shipped)
        if record.delivered_at is not None:
            events.append(
                {
                    "event_id": f"{prefix}:delivered",
                    "type": "order.delivered",
                    "store_id": store_id,
                    "occurred_at": _local(record.delivered_at, tz),
                    "order_id": record.order_sn,
                }
            )
    return events


def expected_aftersale_events(
    records: Iterable[AfterSaleRecord],
    store_id: str,
    tz: ZoneInfo = SHANGHAI,
    aliases: Mapping[str, str] | None = None,
) -> list[dict[str, Any]]:
    """The events the import rules give for these after-sale rows, in row order."""
    events: list[dict[str, Any]] = []
    for record in records:
        kind = KIND_BY_TYPE.get(record.refund_type)
        if kind is None:
            continue
        prefix = f"pdd:{store_id}:refund:{record.after_sale_id}"
        reason = (aliases or {}).get(record.reason) or KNOWN_REASONS.get(record.reason, "other")
        events.append(
            {
                "event_id": f"{prefix}:requested",
                "type": "refund.requested",
                "store_id": store_id,
                "occurred_at": _local(record.applied_at, tz),
                "refund_id": record.after_sale_id,
                "order_id": record.order_sn,
                "kind": kind,
                "reason": reason,
                "product_id": record.goods_id,
            }
        )
        outcome = {"退款成功": "succeeded", "退款关闭": "withdrawn"}.get(record.status)
        if outcome is not None:
            at = record.agreed_at or record.applied_at
            events.append(
                {
                    "event_id": f"{prefix}:{outcome}",
                    "type": f"refund.{outcome}",
                    "store_id": store_id,
                    "occurred_at": _local(at, tz),
                    "refund_id": record.after_sale_id,
                }
            )
    return events


def expected_unmapped(
    records: Iterable[AfterSaleRecord], aliases: Mapping[str, str] | None = None
) -> Counter[str]:
    """Each reason label that the import should report as unknown, with its count."""
    return Counter(
        r.reason
        for r in records
        if r.refund_type in KIND_BY_TYPE
        and r.reason not in KNOWN_REASONS
        and r.reason not in (aliases or {})
    )


# ---------------------------------------------------------------------------
# Cells


def _time_text(moment: datetime | None) -> str:
    return f"{moment:%Y-%m-%d %H:%M:%S}" if moment is not None else ""


def order_cells(record: OrderRecord) -> dict[str, Any]:
    """The order row as the backend writes it, typed (times as datetimes, money as
    Decimal); :func:`write_csv` turns it into text, :func:`write_xlsx` keeps types."""
    province, city, district = record.region
    return {
        "商品": record.goods_name,
        "订单号": record.order_sn,
        "订单状态": record.status,
        "商品总价(元)": record.amount,
        "店铺优惠折扣(元)": Decimal("0.00"),
        "用户实付金额(元)": record.amount,
        "商品数量(件)": record.quantity,
        "收货人": record.receiver,
        "手机": "1" + "*" * 6 + record.order_sn[-4:],
        "省": province,
        "市": city,
        "区": district,
        "街道": "科技园街道***",
        "订单成交时间": record.deal_time,
        "支付时间": record.pay_time,
        "拼单成功时间": record.group_time,
        "发货时间": record.shipped_at,
        "确认收货时间": record.delivered_at,
        "商品id": record.goods_id,
        "商品规格": record.spec,
        "样式ID": record.style_id,
        "商家编码-SKU维度": f"SKU-{record.style_id[-4:]}",
        "快递单号": record.tracking_no,
        "快递公司": record.courier,
        "售后状态": "无售后或售后取消",
        "商家备注": "",
    }


def aftersale_cells(record: AfterSaleRecord) -> dict[str, Any]:
    """The after-sale row as the backend writes it, typed."""
    return {
        "售后编号": record.after_sale_id,
        "订单编号": record.order_sn,
        "商品名称": record.goods_name,
        "商品ID": record.goods_id,
        "商品规格": record.spec,
        "订单状态": record.order_status,
        "售后状态": record.status,
        "退款类型": record.refund_type,
        "退款原因": record.reason,
        "申请时间": record.applied_at,
        "同意退款时间": record.agreed_at,
        "订单金额(元)": record.order_amount,
        "退款金额(元)": record.refund_amount,
        "买家退货物流公司": "中通快递" if record.refund_type == "退货退款" else "",
        "买家退货运单号": _digits(random.Random(record.after_sale_id), 12)
        if record.refund_type == "退货退款"
        else "",
        "售后说明": "",
    }


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return _time_text(value)
    if isinstance(value, Decimal):
        return f"{value:.2f}"
    return str(value)


def _wrap(text: str, wrapper: NumberWrapper) -> str:
    if not text or wrapper == "none":
        return text
    if wrapper == "tab":
        return "\t" + text
    if wrapper == "quote":
        return "'" + text
    return f'="{text}"'


# ---------------------------------------------------------------------------
# Writers


def write_csv(
    path: Path,
    rows: Iterable[Mapping[str, Any]],
    columns: Sequence[str],
    *,
    encoding: str = "utf-8",
    title_lines: Sequence[str] = (),
    long_numbers: frozenset[str] = frozenset(),
    wrapper: NumberWrapper = "tab",
    delimiter: str = ",",
    line_ending: str = "\r\n",
) -> Path:
    """Write ``rows`` (cells by column name) as an export: title lines, then the
    header, then the rows, streaming. A column absent from a row is left empty;
    ``long_numbers`` columns get ``wrapper`` in front, as the backend does."""
    with path.open("w", encoding=encoding, newline="") as out:
        writer = csv.writer(out, delimiter=delimiter, lineterminator=line_ending)
        for line in title_lines:
            writer.writerow([line])
        writer.writerow(columns)
        for row in rows:
            writer.writerow(
                [
                    _wrap(_text(row.get(c)), wrapper) if c in long_numbers else _text(row.get(c))
                    for c in columns
                ]
            )
    return path


def write_orders_csv(
    path: Path,
    records: Iterable[OrderRecord],
    *,
    columns: Sequence[str] = ORDER_COLUMNS,
    **options: Any,
) -> Path:
    """An order export as CSV (title line ``订单查询导出 2026-11-26`` unless told)."""
    options.setdefault("title_lines", (f"订单查询导出 {EXPORT_DAY:%Y-%m-%d}",))
    return write_csv(
        path,
        (order_cells(r) for r in records),
        columns,
        long_numbers=ORDER_LONG_NUMBERS,
        **options,
    )


def write_aftersales_csv(
    path: Path,
    records: Iterable[AfterSaleRecord],
    *,
    columns: Sequence[str] = AFTERSALE_COLUMNS,
    **options: Any,
) -> Path:
    """An after-sales export as CSV."""
    options.setdefault("title_lines", ("售后列表导出", f"导出时间：{EXPORT_DAY:%Y-%m-%d %H:%M:%S}"))
    return write_csv(
        path,
        (aftersale_cells(r) for r in records),
        columns,
        long_numbers=AFTERSALE_LONG_NUMBERS,
        **options,
    )


def write_many_orders_csv(
    path: Path, count: int, *, seed: int = 0, remark_chars: int = 0, encoding: str = "utf-8"
) -> Path:
    """A large order export, fast: a few generated orders repeated with fresh order
    numbers, each row's 商家备注 padded to ``remark_chars`` (to make a big file of
    few rows). For memory tests and the bench, where volume matters, not variety."""
    patterns = [o for o in iter_orders(seed, 64) if o.status not in SKIPPED_ORDER_STATUSES]
    remark = ("备注" * remark_chars)[:remark_chars]
    columns = ORDER_COLUMNS
    with path.open("w", encoding=encoding, newline="") as out:
        writer = csv.writer(out, lineterminator="\r\n")
        writer.writerow([f"订单查询导出 {EXPORT_DAY:%Y-%m-%d}"])
        writer.writerow(columns)
        for number in range(count):
            cells = order_cells(patterns[number % len(patterns)])
            cells["订单号"] = f"{cells['订单号'][:6]}-{number:015d}"
            cells["商家备注"] = remark
            writer.writerow(
                [
                    _wrap(_text(cells[c]), "tab") if c in ORDER_LONG_NUMBERS else _text(cells[c])
                    for c in columns
                ]
            )
    return path


def write_xlsx(
    path: Path,
    rows: Iterable[Mapping[str, Any]],
    columns: Sequence[str],
    *,
    title_lines: Sequence[str] = (),
    typed: bool = False,
    wrong_dimension: bool = True,
) -> Path:
    """Write ``rows`` as an XLSX export.

    ``typed`` keeps times as Excel dates and money as numbers (as a seller's
    re-save does); otherwise every cell is text, as the backend writes it.
    ``wrong_dimension`` rewrites the sheet's ``<dimension ref=…>`` to ``A1``, the
    backend's quirk that makes read-only readers see one column.
    """
    from openpyxl import Workbook

    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet("Sheet1")
    for line in title_lines:
        sheet.append([line])
    sheet.append(list(columns))
    for row in rows:
        values: list[Any] = []
        for column in columns:
            value = row.get(column)
            if not typed:
                values.append(_text(value) or None)
            elif isinstance(value, Decimal):
                values.append(float(value))
            elif isinstance(value, str) and value.isdigit() and len(value) <= 15:
                values.append(int(value))
            else:
                values.append(value if value != "" else None)
        sheet.append(values)
    workbook.save(path)
    if wrong_dimension:
        set_dimension(path, "A1")
    return path


def write_aftersales_xlsx(
    path: Path,
    records: Iterable[AfterSaleRecord],
    *,
    columns: Sequence[str] = AFTERSALE_COLUMNS,
    **options: Any,
) -> Path:
    """An after-sales export as XLSX, with the wrong ``<dimension>`` unless told."""
    options.setdefault("title_lines", ("售后列表导出",))
    return write_xlsx(path, (aftersale_cells(r) for r in records), columns, **options)


def write_orders_xlsx(
    path: Path,
    records: Iterable[OrderRecord],
    *,
    columns: Sequence[str] = ORDER_COLUMNS,
    **options: Any,
) -> Path:
    """An order export as XLSX (the backend gives CSV; sellers re-save as XLSX)."""
    options.setdefault("title_lines", (f"订单查询导出 {EXPORT_DAY:%Y-%m-%d}",))
    return write_xlsx(path, (order_cells(r) for r in records), columns, **options)


_DIMENSION = re.compile(rb'<dimension ref="[^"]*"\s*/>')


def set_dimension(path: Path, ref: str) -> None:
    """Rewrite every worksheet's ``<dimension ref=…>`` inside the zip to ``ref``."""
    with tempfile.NamedTemporaryFile(dir=path.parent, delete=False, suffix=".xlsx") as tmp:
        temporary = Path(tmp.name)
    with (
        zipfile.ZipFile(path) as source,
        zipfile.ZipFile(temporary, "w", zipfile.ZIP_DEFLATED) as target,
    ):
        for item in source.infolist():
            data = source.read(item.filename)
            if item.filename.startswith("xl/worksheets/") and item.filename.endswith(".xml"):
                data, replaced = _DIMENSION.subn(
                    f'<dimension ref="{ref}"/>'.encode(), data, count=1
                )
                if not replaced:  # the writer omitted it: add one where the schema puts it
                    data = _after_sheet_pr(data, f'<dimension ref="{ref}"/>'.encode())
            target.writestr(item, data)
    shutil.move(temporary, path)


_WORKSHEET_START = re.compile(rb"<worksheet[^>]*>")


def _after_sheet_pr(xml: bytes, element: bytes) -> bytes:
    end = xml.find(b"</sheetPr>")
    if end >= 0:
        cut = end + len(b"</sheetPr>")
    else:
        start = _WORKSHEET_START.search(xml)
        assert start is not None
        cut = start.end()
    return xml[:cut] + element + xml[cut:]


def with_changes(record: Any, **changes: Any) -> Any:
    """A copy of a record with some fields changed (a row to break or to vary)."""
    return replace(record, **changes)
