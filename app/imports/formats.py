"""Seller files → the events ``POST /v1/events`` takes, one row at a time.

Four formats: ``events-jsonl`` (one event object per line), ``events-csv`` (one
event per row, the event fields as columns), ``pdd-orders`` (the merchant
backend's order export) and ``pdd-aftersales`` (its after-sales export, XLSX or
CSV). :func:`open_import` detects the format from the header, then yields a
:class:`RowResult` per data row: the row's events, or why it was skipped, or
what is wrong with it (row, column, code, message). A bad row never stops the
read; a file that is no known format is refused at once with a
:class:`FormatError` naming what it lacks.

Platform rows become events whose ids derive from the platform's own numbers,
so importing the same or an overlapping export again yields the same events,
and a later export that shows a refund's new status yields only that outcome
as new. A row gives all of its events or none (a row with any error gives
none), so fixing a row and importing again never meets a half-imported row.

Everything here is pure apart from reading the file: no database, no clock.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal, InvalidOperation
from types import TracebackType
from typing import Any, Final, Literal, Self, get_args
from zoneinfo import ZoneInfo

import orjson

from app.events.vocabulary import REASON_CODES, normalise_reason
from app.imports.pdd_vocabulary import (
    order_event_id,
    parse_local_time,
    reason_code,
    refund_event_id,
    rfc3339,
)
from app.imports.reading import (
    FileInput,
    Line,
    Progress,
    ReadError,
    Row,
    Source,
    TextSource,
    first_rows,
    open_source,
    sniff_delimiter,
)

ImportFormat = Literal["events-jsonl", "events-csv", "pdd-orders", "pdd-aftersales"]
FORMATS: Final[tuple[ImportFormat, ...]] = get_args(ImportFormat)

SkipCause = Literal["blank", "not_paid", "not_a_refund"]
"""Why a row gives no events and no error: an empty row, an order never paid
(待支付, 已取消), or an after-sale that is no refund (换货, 补寄, 维修)."""

Event = dict[str, Any]
"""One event, exactly as an element of ``POST /v1/events``' ``events`` list."""

HEADER_SEARCH_ROWS: Final = 15
"""Title lines above the header are skipped; the header must be among these rows."""

SHANGHAI: Final = ZoneInfo("Asia/Shanghai")

# Where the header row is found by one of these columns.
_PDD_ORDER_MARKERS: Final = ("订单号",)
_PDD_AFTERSALE_MARKERS: Final = ("售后编号", "订单编号")
_EVENT_MARKERS: Final = ("event_id", "type")

# pdd-orders columns.
ORDER_SN: Final = "订单号"
GOODS_ID: Final = "商品id"
STYLE_ID: Final = "样式ID"
GOODS_SPEC: Final = "商品规格"
PAID_TIME_COLUMNS: Final = ("订单成交时间", "支付时间", "拼单成功时间")
"""Tried in this order, per row: the first non-empty one is when the order was paid."""
PAID_AMOUNT: Final = "用户实付金额(元)"
SHIPPED_AT: Final = "发货时间"
COURIER: Final = "快递公司"
DELIVERED_AT: Final = "确认收货时间"
ORDER_STATUS: Final = "订单状态"
NOT_PAID_STATUSES: Final = frozenset({"待支付", "已取消"})

# pdd-aftersales columns.
AFTER_SALE_ID: Final = "售后编号"
AFTER_SALE_ORDER_SN: Final = "订单编号"
AFTER_SALE_GOODS_ID: Final = "商品ID"
APPLIED_AT: Final = "申请时间"
REFUND_TYPE: Final = "退款类型"
REFUND_REASON: Final = "退款原因"
AFTER_SALE_STATUS: Final = "售后状态"
AGREED_AT: Final = "同意退款时间"
KIND_BY_REFUND_TYPE: Final[Mapping[str, str]] = {
    "仅退款": "refund_only",
    "退货退款": "return_refund",
}
NOT_REFUND_TYPES: Final = frozenset({"换货", "补寄", "维修"})
OUTCOME_BY_STATUS: Final[Mapping[str, Literal["succeeded", "withdrawn"]]] = {
    "退款成功": "succeeded",
    "退款关闭": "withdrawn",
}

EVENT_FIELDS: Final = (
    "event_id",
    "type",
    "store_id",
    "occurred_at",
    "order_id",
    "product_id",
    "sku_id",
    "amount",
    "courier",
    "refund_id",
    "kind",
    "reason",
)
"""The columns an events-csv file may carry; any other column is ignored."""

# Each entry is one required column, or a tuple of alternatives (any one will do).
REQUIRED_COLUMNS: Final[Mapping[ImportFormat, tuple[str | tuple[str, ...], ...]]] = {
    "events-csv": ("event_id", "type", "store_id", "occurred_at"),
    "pdd-orders": (ORDER_SN, GOODS_ID, PAID_TIME_COLUMNS),
    "pdd-aftersales": (AFTER_SALE_ID, AFTER_SALE_ORDER_SN, APPLIED_AT, REFUND_TYPE, REFUND_REASON),
}

_STORE_ID: Final = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")


# ---------------------------------------------------------------------------
# Results


@dataclass(frozen=True, slots=True)
class RowError:
    """What is wrong with one value of one row.

    ``column`` is the column's name as the file's header writes it (None when
    the fault is the whole line, as for a JSON line that does not parse).
    ``code`` is one of ``missing_value``, ``invalid_time``, ``invalid_amount``,
    ``invalid_id``, ``unknown_refund_type``, ``invalid_json``, ``invalid_event``,
    ``store_mismatch``.
    """

    row: int
    column: str | None
    code: str
    message: str


@dataclass(slots=True)  # not frozen: one per row, and a frozen __init__ costs 2.5× more
class RowResult:
    """What one data row of a file gives.

    Exactly one holds: ``events`` is non-empty; or ``skip`` names why the row
    gives nothing; or ``errors`` lists every fault found (and ``events`` is
    empty). ``unmapped_reason`` is a 退款原因 label that no table or alias
    knows; the row's refund then carries the reason ``other``.
    """

    row: int
    events: list[Event] = field(default_factory=list)
    skip: SkipCause | None = None
    errors: list[RowError] = field(default_factory=list)
    unmapped_reason: str | None = None


class FormatError(ReadError):
    """The file is not (or not entirely) an importable format: refused whole.

    ``code``: ``unknown_format`` (no known header), ``missing_columns`` (the
    header lacks required columns, listed in ``missing_columns``; a tuple of
    alternatives is shown joined with ``/``), ``not_jsonl``, ``store_required``
    or ``invalid_store_id``.
    """

    def __init__(
        self,
        code: str,
        message: str,
        *,
        format: ImportFormat | None = None,
        missing_columns: tuple[str, ...] = (),
    ) -> None:
        super().__init__(code, message)
        self.format = format
        self.missing_columns = missing_columns


@dataclass
class ImportTally:
    """Running counts over the results of one import, for its summary."""

    rows: int = 0
    rows_with_events: int = 0
    rows_with_errors: int = 0
    events: int = 0
    skipped: Counter[str] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    unmapped_reasons: Counter[str] = field(default_factory=Counter)

    def add(self, result: RowResult) -> None:
        """Count one row's result."""
        self.rows += 1
        if result.events:
            self.rows_with_events += 1
            self.events += len(result.events)
        if result.skip is not None:
            self.skipped[result.skip] += 1
        if result.errors:
            self.rows_with_errors += 1
            self.errors.update(error.code for error in result.errors)
        if result.unmapped_reason is not None:
            self.unmapped_reasons[result.unmapped_reason] += 1


# ---------------------------------------------------------------------------
# Headers


def header_key(name: str) -> str:
    """A column name as matched: NFKC (full-width brackets and letters to ASCII),
    no whitespace, case-folded — so ``商品ID``, ``商品id`` and ``用户实付金额（元）``
    find their columns."""
    return "".join(unicodedata.normalize("NFKC", name).split()).casefold()


class _Header:
    """The header row: each column's position by its matching key."""

    def __init__(self, row: Row) -> None:
        self.row = row
        self._positions: dict[str, int] = {}
        for position, name in enumerate(row.cells):
            if name:
                # A repeated column name: the first one counts.
                self._positions.setdefault(header_key(name), position)

    def position(self, name: str) -> int | None:
        return self._positions.get(header_key(name))

    def name_at(self, position: int) -> str:
        return self.row.cells[position]

    def missing(self, required: tuple[str | tuple[str, ...], ...]) -> tuple[str, ...]:
        missing: list[str] = []
        for column in required:
            options = (column,) if isinstance(column, str) else column
            if all(self.position(option) is None for option in options):
                missing.append("/".join(options))
        return tuple(missing)


def _has_any(row: Row, names: tuple[str, ...]) -> bool:
    keys = {header_key(cell) for cell in row.cells if cell}
    return any(header_key(name) in keys for name in names)


def _classify(row: Row, forced: ImportFormat | None) -> ImportFormat | None:
    """The format whose header this row is, or None when it is no header."""
    if forced == "events-csv":
        return forced if _has_any(row, _EVENT_MARKERS) else None
    if forced == "pdd-orders":
        return forced if _has_any(row, _PDD_ORDER_MARKERS) else None
    if forced == "pdd-aftersales":
        return forced if _has_any(row, _PDD_AFTERSALE_MARKERS) else None
    keys = {header_key(cell) for cell in row.cells if cell}
    if "event_id" in keys and "type" in keys:
        return "events-csv"
    # 订单编号 is how the after-sales export names the order; the order export says 订单号.
    if header_key(AFTER_SALE_ID) in keys or (
        header_key(AFTER_SALE_ORDER_SN) in keys and header_key(ORDER_SN) not in keys
    ):
        return "pdd-aftersales"
    if header_key(ORDER_SN) in keys:
        return "pdd-orders"
    return None


# ---------------------------------------------------------------------------
# Row mapping


def _cell(cells: tuple[str, ...], position: int | None) -> str:
    if position is None or position >= len(cells):
        return ""
    return cells[position]


_YUAN: Final = re.compile(r"^(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?$|^\.\d+$", re.ASCII)


def _yuan(text: str) -> str | None:
    """``¥1,299.9`` → ``"1299.90"``; None for anything that is not whole fen."""
    # NFKC: digits typed with a Chinese input method come full-width.
    value = unicodedata.normalize("NFKC", text)
    value = value.replace("¥", "").removesuffix("元").strip()
    if not _YUAN.match(value):
        return None
    try:
        amount = Decimal(value.replace(",", ""))
    except InvalidOperation:
        return None
    cents = amount.quantize(Decimal("0.01"))
    if cents != amount:
        return None  # money in yuan has at most two decimals; more is not an amount
    return f"{cents:f}"


# How Excel shows a long number it has rounded (5.87123E+11): the digits are lost.
_SHORTENED_NUMBER: Final = re.compile(r"^\d(?:\.\d+)?[Ee]\+\d+$")


class _RowReader:
    """What one format makes of a data row; shared helpers for errors."""

    def __init__(self, header: _Header) -> None:
        self.header = header

    def __call__(self, row: Row) -> RowResult:
        raise NotImplementedError

    def _name(self, position: int | None, fallback: str) -> str:
        return self.header.name_at(position) if position is not None else fallback

    def _required(self, row: Row, position: int | None, name: str, errors: list[RowError]) -> str:
        value = _cell(row.cells, position)
        if not value:
            column = self._name(position, name)
            errors.append(RowError(row.number, column, "missing_value", f"{column} is empty"))
        return value

    def _identifier(
        self,
        row: Row,
        position: int | None,
        name: str,
        errors: list[RowError],
        *,
        required: bool = True,
    ) -> str:
        """An id column's value; a spreadsheet's shortened number is an error, not an id."""
        value = (
            self._required(row, position, name, errors) if required else _cell(row.cells, position)
        )
        if value and _SHORTENED_NUMBER.match(value):
            column = self._name(position, name)
            errors.append(
                RowError(
                    row.number,
                    column,
                    "invalid_id",
                    f"{column} {value!r} is a number a spreadsheet shortened; export the file "
                    "again, or format the column as text before saving",
                )
            )
        return value

    def _moment(
        self,
        row: Row,
        position: int | None,
        name: str,
        tz: ZoneInfo,
        errors: list[RowError],
    ) -> datetime | None:
        """The column's local time as an instant; None when empty or (reported) invalid."""
        text = _cell(row.cells, position)
        if not text:
            return None
        moment = parse_local_time(text, tz)
        if moment is None:
            column = self._name(position, name)
            errors.append(
                RowError(
                    row.number,
                    column,
                    "invalid_time",
                    f"{column} {text!r} is not a time like 2026-11-26 10:00:00",
                )
            )
        return moment


class _OrderRows(_RowReader):
    """A pdd-orders row: order.paid, and order.shipped / order.delivered when done."""

    def __init__(self, header: _Header, store_id: str, tz: ZoneInfo) -> None:
        super().__init__(header)
        self.store_id = store_id
        self.tz = tz
        self.order_sn = header.position(ORDER_SN)
        self.goods_id = header.position(GOODS_ID)
        self.style_id = header.position(STYLE_ID)
        self.spec = header.position(GOODS_SPEC)
        self.paid_columns = [p for p in map(header.position, PAID_TIME_COLUMNS) if p is not None]
        self.amount = header.position(PAID_AMOUNT)
        self.shipped_at = header.position(SHIPPED_AT)
        self.courier = header.position(COURIER)
        self.delivered_at = header.position(DELIVERED_AT)
        self.status = header.position(ORDER_STATUS)

    def __call__(self, row: Row) -> RowResult:
        cells = row.cells
        if row.is_blank():
            return RowResult(row.number, skip="blank")
        if _cell(cells, self.status) in NOT_PAID_STATUSES:
            return RowResult(row.number, skip="not_paid")
        errors: list[RowError] = []
        order_sn = self._identifier(row, self.order_sn, ORDER_SN, errors)
        goods_id = self._identifier(row, self.goods_id, GOODS_ID, errors)
        style_id = self._identifier(row, self.style_id, STYLE_ID, errors, required=False)
        paid_position = next((p for p in self.paid_columns if _cell(cells, p)), None)
        if paid_position is None:
            names = "/".join(self.header.name_at(p) for p in self.paid_columns)
            errors.append(
                RowError(row.number, names, "missing_value", f"{names}: no time when it was paid")
            )
            paid_at = None
        else:
            paid_at = self._moment(row, paid_position, PAID_TIME_COLUMNS[0], self.tz, errors)
        amount_text = _cell(cells, self.amount)
        amount = _yuan(amount_text) if amount_text else None
        if amount_text and amount is None:
            column = self._name(self.amount, PAID_AMOUNT)
            errors.append(
                RowError(
                    row.number,
                    column,
                    "invalid_amount",
                    f"{column} {amount_text!r} is not an amount in yuan like 19.90",
                )
            )
        shipped_at = self._moment(row, self.shipped_at, SHIPPED_AT, self.tz, errors)
        delivered_at = self._moment(row, self.delivered_at, DELIVERED_AT, self.tz, errors)
        if errors or paid_at is None:
            return RowResult(row.number, errors=errors)

        paid: Event = {
            "event_id": order_event_id(self.store_id, order_sn, "paid"),
            "type": "order.paid",
            "store_id": self.store_id,
            "occurred_at": rfc3339(paid_at),
            "order_id": order_sn,
            "product_id": goods_id,
        }
        if sku := style_id or _cell(cells, self.spec):
            paid["sku_id"] = sku
        if amount is not None:
            paid["amount"] = amount
        events = [paid]
        if shipped_at is not None:
            shipped: Event = {
                "event_id": order_event_id(self.store_id, order_sn, "shipped"),
                "type": "order.shipped",
                "store_id": self.store_id,
                "occurred_at": rfc3339(shipped_at),
                "order_id": order_sn,
            }
            if courier := _cell(cells, self.courier):
                shipped["courier"] = courier
            events.append(shipped)
        if delivered_at is not None:
            events.append(
                {
                    "event_id": order_event_id(self.store_id, order_sn, "delivered"),
                    "type": "order.delivered",
                    "store_id": self.store_id,
                    "occurred_at": rfc3339(delivered_at),
                    "order_id": order_sn,
                }
            )
        return RowResult(row.number, events=events)


class _AfterSaleRows(_RowReader):
    """A pdd-aftersales row: refund.requested, and its outcome when it has one."""

    def __init__(
        self,
        header: _Header,
        store_id: str,
        tz: ZoneInfo,
        reason_aliases: Mapping[str, str] | None,
    ) -> None:
        super().__init__(header)
        self.store_id = store_id
        self.tz = tz
        self.reason_aliases = reason_aliases
        self.after_sale_id = header.position(AFTER_SALE_ID)
        self.order_sn = header.position(AFTER_SALE_ORDER_SN)
        self.goods_id = header.position(AFTER_SALE_GOODS_ID)
        self.applied_at = header.position(APPLIED_AT)
        self.refund_type = header.position(REFUND_TYPE)
        self.reason = header.position(REFUND_REASON)
        self.status = header.position(AFTER_SALE_STATUS)
        self.agreed_at = header.position(AGREED_AT)

    def __call__(self, row: Row) -> RowResult:
        cells = row.cells
        if row.is_blank():
            return RowResult(row.number, skip="blank")
        refund_type = _cell(cells, self.refund_type)
        if refund_type in NOT_REFUND_TYPES:
            return RowResult(row.number, skip="not_a_refund")
        errors: list[RowError] = []
        kind = KIND_BY_REFUND_TYPE.get(refund_type)
        if not refund_type:
            self._required(row, self.refund_type, REFUND_TYPE, errors)
        elif kind is None:
            column = self._name(self.refund_type, REFUND_TYPE)
            errors.append(
                RowError(
                    row.number,
                    column,
                    "unknown_refund_type",
                    f"{column} {refund_type!r} is not 仅退款 or 退货退款 "
                    "(换货, 补寄 and 维修 rows are skipped)",
                )
            )
        after_sale_id = self._identifier(row, self.after_sale_id, AFTER_SALE_ID, errors)
        order_sn = self._identifier(row, self.order_sn, AFTER_SALE_ORDER_SN, errors)
        goods_id = self._identifier(row, self.goods_id, AFTER_SALE_GOODS_ID, errors, required=False)
        self._required(row, self.applied_at, APPLIED_AT, errors)
        applied_at = self._moment(row, self.applied_at, APPLIED_AT, self.tz, errors)
        label = self._required(row, self.reason, REFUND_REASON, errors)
        outcome = OUTCOME_BY_STATUS.get(_cell(cells, self.status))
        outcome_at = applied_at
        if outcome is not None:
            agreed_at = self._moment(row, self.agreed_at, AGREED_AT, self.tz, errors)
            # An outcome cannot precede the application it ends: a clock-skewed
            # 同意退款时间 would otherwise leave a settled refund looking open.
            if agreed_at is not None and applied_at is not None:
                outcome_at = max(agreed_at, applied_at)
        if errors or applied_at is None or kind is None:
            return RowResult(row.number, errors=errors)

        reason, known = reason_code(label, self.reason_aliases)
        requested: Event = {
            "event_id": refund_event_id(self.store_id, after_sale_id, "requested"),
            "type": "refund.requested",
            "store_id": self.store_id,
            "occurred_at": rfc3339(applied_at),
            "refund_id": after_sale_id,
            "order_id": order_sn,
            "kind": kind,
            "reason": reason,
        }
        if goods_id:
            requested["product_id"] = goods_id
        events = [requested]
        if outcome is not None and outcome_at is not None:
            events.append(
                {
                    "event_id": refund_event_id(self.store_id, after_sale_id, outcome),
                    "type": f"refund.{outcome}",
                    "store_id": self.store_id,
                    "occurred_at": rfc3339(outcome_at),
                    "refund_id": after_sale_id,
                }
            )
        return RowResult(row.number, events=events, unmapped_reason=None if known else label)


def _store_mismatch(number: int, event: Mapping[str, Any], store_id: str | None) -> RowError | None:
    if store_id is None or "store_id" not in event or event["store_id"] == store_id:
        return None
    return RowError(
        number,
        "store_id",
        "store_mismatch",
        f"store_id {event['store_id']!r} is not the store being imported ({store_id})",
    )


class _EventCsvRows(_RowReader):
    """An events-csv row: one event, its non-empty cells as fields."""

    def __init__(self, header: _Header, store_id: str | None) -> None:
        super().__init__(header)
        self.store_id = store_id
        self.fields = [
            (name, position)
            for name in EVENT_FIELDS
            if (position := header.position(name)) is not None
        ]

    def __call__(self, row: Row) -> RowResult:
        if row.is_blank():
            return RowResult(row.number, skip="blank")
        cells = row.cells
        event: Event = {name: value for name, p in self.fields if (value := _cell(cells, p))}
        mismatch = _store_mismatch(row.number, event, self.store_id)
        if mismatch is not None:
            return RowResult(row.number, errors=[mismatch])
        return RowResult(row.number, events=[event])


def _json_line(line: Line, store_id: str | None) -> RowResult:
    """An events-jsonl line: one event object, passed through as it is."""
    text = line.text.strip()
    if not text:
        return RowResult(line.number, skip="blank")
    try:
        # orjson: strict JSON (no NaN or Infinity), and several times faster.
        value = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        detail = f"{exc.msg} at column {exc.colno}"
        return RowResult(
            line.number,
            errors=[RowError(line.number, None, "invalid_json", f"not valid JSON: {detail}")],
        )
    if not isinstance(value, dict):
        return RowResult(
            line.number,
            errors=[
                RowError(
                    line.number,
                    None,
                    "invalid_event",
                    f"a line must hold one JSON object (an event), not a {type(value).__name__}",
                )
            ],
        )
    mismatch = _store_mismatch(line.number, value, store_id)
    if mismatch is not None:
        return RowResult(line.number, errors=[mismatch])
    return RowResult(line.number, events=[value])


# ---------------------------------------------------------------------------
# Opening a file


class ImportReader:
    """An open import file of a known format: iterate it for one result per data row.

    Rows above the header (title lines) give no result; every row below it
    does, blank ones included (skipped as ``blank``). Iterate once. Close it,
    or use it as a context manager.
    """

    def __init__(
        self,
        source: Source,
        format: ImportFormat,
        results: Iterator[RowResult],
        header: _Header | None,
        ignored_columns: tuple[str, ...],
        *,
        lines: Iterator[Line] | None = None,
        store_id: str | None = None,
    ) -> None:
        self._source = source
        self._results = results
        self._lines = lines  # events-jsonl: the lines ``results`` maps, for rows_deciding
        self._store_id = store_id
        self.format: ImportFormat = format
        """The file's format, detected or as forced."""
        self.header_row: int | None = header.row.number if header else None
        """The header's row number (None for events-jsonl)."""
        self.columns: tuple[str, ...] = header.row.cells if header else ()
        """The header's cells as the file writes them."""
        self.ignored_columns = ignored_columns
        """Header columns that nothing reads (a seller may want to know)."""
        self.encoding: str | None = source.encoding if isinstance(source, TextSource) else None
        """The text codec chosen (utf-8, utf-8-sig, gb18030, utf-16), None for XLSX."""

    def __iter__(self) -> Iterator[RowResult]:
        return self._results

    def rows_deciding(
        self, decide: Callable[[str], bool | None]
    ) -> Iterator[tuple[int, RowResult | None, bool | None]]:
        """Every row as ``(number, result, owned)``, for a reader that wants only some.

        For events-jsonl each line's text is put to ``decide`` before it is parsed:
        ``False`` and the line is passed over unparsed (``result`` is None); ``True``
        and it is mapped, and owned; ``None`` (cannot tell from the text) and it is
        mapped, for the caller to decide from the result. Other formats map every
        row and leave it to the caller (``owned`` None). Iterate once, instead of
        iterating the reader.
        """
        if self._lines is None:
            for result in self._results:
                yield result.row, result, None
            return
        store_id = self._store_id
        for line in self._lines:
            verdict = decide(line.text)
            if verdict is False:
                yield line.number, None, False
            else:
                yield line.number, _json_line(line, store_id), verdict

    def progress(self) -> Progress:
        """How far the read has got (bytes of a text file, rows of a workbook)."""
        return self._source.progress()

    def close(self) -> None:
        """Release the file."""
        self._source.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def open_import(
    file: FileInput,
    *,
    store_id: str | None = None,
    tz: ZoneInfo = SHANGHAI,
    format: ImportFormat | None = None,
    reason_aliases: Mapping[str, str] | None = None,
) -> ImportReader:
    """Open a seller's file, find its format and header, and get ready to stream it.

    ``store_id`` is required for the platform formats (their rows carry no store
    id) and, for event files, rejects rows of any other store
    (``store_mismatch``). ``tz`` is the store's time zone, in which platform
    times are local. ``format`` forces a format instead of detecting one.
    ``reason_aliases`` (label → reason code, see :func:`load_reason_map`) take
    precedence over the platform's label table.

    Raises :class:`FormatError` when the file is no known format, lacks a
    required column, or needs a store id; :class:`ReadError` when it cannot be
    read at all. Past the leading sample (and, for a workbook, the first rows),
    nothing is read until iteration starts.
    """
    if format is not None and format not in FORMATS:
        raise ValueError(f"unknown format {format!r}; valid: {', '.join(FORMATS)}")
    if store_id is not None and not _STORE_ID.match(store_id):
        raise FormatError(
            "invalid_store_id", f"store id {store_id!r} is not 1–64 characters of A-Za-z0-9._:-"
        )
    source = open_source(file)
    try:
        return _open(source, store_id, tz, format, reason_aliases)
    except BaseException:
        source.close()
        raise


def _open(
    source: Source,
    store_id: str | None,
    tz: ZoneInfo,
    forced: ImportFormat | None,
    reason_aliases: Mapping[str, str] | None,
) -> ImportReader:
    if (
        isinstance(source, TextSource)
        and forced in (None, "events-jsonl")
        and source.first_text().startswith("{")
    ):
        lines = source.lines()
        return ImportReader(
            source,
            "events-jsonl",
            (_json_line(line, store_id) for line in lines),
            None,
            (),
            lines=lines,
            store_id=store_id,
        )
    if forced == "events-jsonl":
        raise FormatError(
            "not_jsonl",
            "events-jsonl: the first non-blank line is not a JSON object",
            format="events-jsonl",
        )

    def is_header(row: Row) -> bool:
        return _classify(row, forced) is not None

    if isinstance(source, TextSource):
        delimiter = sniff_delimiter(
            lambda d: source.sample_rows(d, HEADER_SEARCH_ROWS), looks_like_header=is_header
        )
        head = source.sample_rows(delimiter, HEADER_SEARCH_ROWS)
        rows = source.rows(delimiter)
    else:
        head, rows = first_rows(source.rows(), HEADER_SEARCH_ROWS)

    found = next(((row, fmt) for row in head if (fmt := _classify(row, forced))), None)
    if found is None:
        raise _no_header(forced)
    header_row, format = found
    header = _header_checked(header_row, format)

    reader: Callable[[Row], RowResult]
    if format == "events-csv":
        reader = _EventCsvRows(header, store_id)
        used = set(EVENT_FIELDS)
    else:
        if store_id is None:
            raise FormatError(
                "store_required",
                f"{format} rows carry no store id: give the store the file belongs to",
                format=format,
            )
        if format == "pdd-orders":
            reader = _OrderRows(header, store_id, tz)
            used = {
                ORDER_SN,
                GOODS_ID,
                STYLE_ID,
                GOODS_SPEC,
                *PAID_TIME_COLUMNS,
                PAID_AMOUNT,
                SHIPPED_AT,
                COURIER,
                DELIVERED_AT,
                ORDER_STATUS,
            }
        else:
            reader = _AfterSaleRows(header, store_id, tz, reason_aliases)
            used = {
                AFTER_SALE_ID,
                AFTER_SALE_ORDER_SN,
                AFTER_SALE_GOODS_ID,
                APPLIED_AT,
                REFUND_TYPE,
                REFUND_REASON,
                AFTER_SALE_STATUS,
                AGREED_AT,
            }
    used_keys = {header_key(name) for name in used}
    ignored = tuple(c for c in header_row.cells if c and header_key(c) not in used_keys)
    start = header_row.number
    results = (reader(row) for row in rows if row.number > start)
    return ImportReader(source, format, results, header, ignored)


def _header_checked(row: Row, format: ImportFormat) -> _Header:
    header = _Header(row)
    missing = header.missing(REQUIRED_COLUMNS[format])
    if missing:
        raise FormatError(
            "missing_columns",
            f"{format}: the header (row {row.number}) lacks the required "
            f"column{'s' if len(missing) > 1 else ''} {', '.join(missing)}",
            format=format,
            missing_columns=missing,
        )
    return header


def _no_header(forced: ImportFormat | None) -> FormatError:
    if forced is None:
        return FormatError(
            "unknown_format",
            f"not a file refundwatch can import: none of the first {HEADER_SEARCH_ROWS} rows is "
            "a header with 订单号 (pdd-orders), 售后编号 or 订单编号 (pdd-aftersales), or "
            "event_id and type (events-csv), and the first line is not a JSON object "
            "(events-jsonl)",
        )
    missing = tuple(
        column if isinstance(column, str) else "/".join(column)
        for column in REQUIRED_COLUMNS[forced]
    )
    return FormatError(
        "missing_columns",
        f"{forced}: none of the first {HEADER_SEARCH_ROWS} rows is a header with the required "
        f"columns {', '.join(missing)}",
        format=forced,
        missing_columns=missing,
    )


# ---------------------------------------------------------------------------
# Reason map


class ReasonMapError(ValueError):
    """A reason map that cannot be used; ``line`` is where (None for the whole file)."""

    def __init__(self, line: int | None, message: str) -> None:
        super().__init__(f"line {line}: {message}" if line is not None else message)
        self.line = line


def load_reason_map(file: FileInput) -> dict[str, str]:
    """A seller's reason map (``label,reason`` rows; a header row is optional).

    The file is CSV or TSV in any encoding the imports read (or an XLSX sheet);
    blank rows are skipped. Each reason must be a reason code (its Chinese name
    is accepted too, and stored as the code). Raises :class:`ReasonMapError`
    naming the line of the first bad row, or a label mapped to two reasons.
    """
    aliases: dict[str, str] = {}
    try:
        source = open_source(file)
    except ReadError as exc:
        raise ReasonMapError(None, exc.message) from None
    with source:
        try:
            for row in source.rows():
                cells = list(row.cells)
                while cells and not cells[-1]:
                    cells.pop()
                if not cells:
                    continue
                if not aliases and [c.casefold() for c in cells] == ["label", "reason"]:
                    continue
                label, reason = _alias(row.number, cells)
                earlier = aliases.get(label)
                if earlier is not None and earlier != reason:
                    raise ReasonMapError(
                        row.number, f"label {label!r} is mapped to both {earlier} and {reason}"
                    )
                aliases[label] = reason
        except ReadError as exc:
            raise ReasonMapError(None, exc.message) from None
    return aliases


def _alias(number: int, cells: list[str]) -> tuple[str, str]:
    if len(cells) != 2:
        raise ReasonMapError(number, f"expected two columns, label and reason; found {len(cells)}")
    label, reason = cells
    if not label:
        raise ReasonMapError(number, "the label is empty")
    code = normalise_reason(reason) if reason else None
    if code is None:
        raise ReasonMapError(
            number, f"reason {reason!r} is not a reason code; valid: {', '.join(REASON_CODES)}"
        )
    return label, code
