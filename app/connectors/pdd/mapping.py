"""Open-platform records to the events of ``POST /v1/events``. All pure.

Orders (``pdd.order.number.list.increment.get``, ``order_sn_list[]``):

==================  ======================================================
record              becomes
==================  ======================================================
``confirm_time``    ``order.paid`` at that time: ``product_id`` the first
                    item's ``goods_id``, ``sku_id`` its ``sku_id``, ``amount``
                    ``pay_amount`` (yuan) as a decimal string
``shipping_time``   ``order.shipped`` at that time; ``courier`` the record's
                    ``logistics_id`` (the platform's courier number) as text
``receive_time``    ``order.delivered`` at that time
==================  ======================================================

After-sales (``pdd.refund.list.increment.get``, ``refund_list[]``):
``after_sales_type`` 2 (仅退款) is ``refund_only``, 3 (退货退款) ``return_refund``;
any other type (换货, 补寄, 维修) is not a refund and is skipped.
``created_time`` gives ``refund.requested`` (``reason`` from
``after_sale_reason`` through the label table; ``product_id``/``sku_id`` from
``goods_id``/``sku_id``); ``after_sales_status`` 10 gives ``refund.succeeded``,
11 ``refund.withdrawn``, 9, 12 and 13 ``refund.rejected``, at ``updated_time``;
any other status leaves the refund open.

Times are the platform's naive ``YYYY-MM-DD HH:MM:SS`` in Asia/Shanghai; an
empty string, ``null``, ``0`` or ``0000-00-00 00:00:00`` means "not yet".
Event ids are derived from the platform's numbers, so reading a record again
gives the same events (duplicates at ingest), and a refund seen again with a
new status adds only that outcome.

Every event carries only what is fixed once it has happened: the refund's
amount is left out (a buyer may edit the application, and a changed amount
would make the same event id carry different content). A record that cannot be
mapped whole is reported with the field at fault and gives no events at all.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any, Final, Literal
from zoneinfo import ZoneInfo

from app.imports.pdd_vocabulary import (
    order_event_id,
    parse_local_time,
    reason_code,
    refund_event_id,
    rfc3339,
)

__all__ = [
    "KIND_BY_AFTER_SALES_TYPE",
    "OUTCOME_BY_AFTER_SALES_STATUS",
    "PLATFORM_TZ",
    "Event",
    "MalformedRecord",
    "MappedRecords",
    "RecordProblem",
    "RefundEvents",
    "SkippedRecord",
    "map_orders",
    "map_refunds",
    "order_events",
    "refund_events",
]

PLATFORM_TZ: Final = ZoneInfo("Asia/Shanghai")

KIND_BY_AFTER_SALES_TYPE: Final[Mapping[int, str]] = {2: "refund_only", 3: "return_refund"}

OUTCOME_BY_AFTER_SALES_STATUS: Final[
    Mapping[int, Literal["succeeded", "withdrawn", "rejected"]]
] = {
    10: "succeeded",  # 退款成功
    11: "withdrawn",  # 买家撤销
    9: "rejected",  # 平台拒绝退款，退款关闭
    12: "rejected",  # 买家逾期未处理，退款失败
    13: "rejected",  # 买家逾期，超过有效期
}

Event = dict[str, str]
"""One event exactly as ``POST /v1/events`` takes it (every value a string)."""

_ZERO_TIMES: Final = frozenset({"", "0", "0000-00-00 00:00:00", "0000-00-00"})
_MAX_ID = 128  # the event contract's limit on order/refund/product/sku ids
_MAX_COURIER = 64
_MAX_AMOUNT = Decimal("1e12")  # the event contract's 12 integer digits


class MalformedRecord(ValueError):
    """A record that cannot be mapped whole; ``field`` names the culprit."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


@dataclass(frozen=True)
class RecordProblem:
    """A malformed record: which one (``key`` when it has one), where, and what."""

    record: Literal["order", "refund"]
    key: str | None
    field: str
    message: str


@dataclass(frozen=True)
class SkippedRecord:
    """A well-formed record that gives no events, and why (``not_a_refund``, ``no_times``)."""

    record: Literal["order", "refund"]
    key: str
    cause: str


@dataclass
class MappedRecords:
    """What a page (or a window) of records gave.

    ``unknown_reasons`` counts the ``after_sale_reason`` labels the table does
    not know (each became ``other``), so the seller can map them.
    """

    events: list[Event] = field(default_factory=list)
    malformed: list[RecordProblem] = field(default_factory=list)
    skipped: list[SkippedRecord] = field(default_factory=list)
    unknown_reasons: Counter[str] = field(default_factory=Counter)

    def extend(self, other: MappedRecords) -> None:
        """Add another batch's results to this one."""
        self.events.extend(other.events)
        self.malformed.extend(other.malformed)
        self.skipped.extend(other.skipped)
        self.unknown_reasons.update(other.unknown_reasons)


@dataclass(frozen=True)
class RefundEvents:
    """One after-sale's events; ``unknown_reason`` is its label when the table lacks it."""

    events: list[Event]
    unknown_reason: str | None = None


# --------------------------------------------------------------------------- fields


def _identifier(record: Mapping[str, Any], name: str, *, required: bool) -> str | None:
    """A platform number or code as text: ids come as JSON numbers or strings,
    depending on the API and the SDK generation. 0 and "" mean none."""
    value = record.get(name)
    if value is None or value == "" or value == 0:
        if required:
            raise MalformedRecord(name, "is missing")
        return None
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise MalformedRecord(name, f"must be a number or a string, not {type(value).__name__}")
    text = str(value).strip()
    if isinstance(value, int) and value < 0:
        raise MalformedRecord(name, f"must not be negative, got {text}")
    if not text or text == "0":
        if required:
            raise MalformedRecord(name, "is missing")
        return None
    if len(text) > _MAX_ID or "\x00" in text:
        raise MalformedRecord(name, f"is not a usable id ({len(text)} characters)")
    return text


def _time(record: Mapping[str, Any], name: str) -> datetime | None:
    value = record.get(name)
    if value is None or value == 0:
        return None
    if not isinstance(value, str):
        raise MalformedRecord(name, f"must be a time string, not {type(value).__name__}")
    if value.strip() in _ZERO_TIMES:
        return None
    moment = parse_local_time(value, PLATFORM_TZ)
    if moment is None:
        raise MalformedRecord(name, f"{value!r} is not a YYYY-MM-DD HH:MM:SS time")
    return moment


def _integer(record: Mapping[str, Any], name: str) -> int:
    value = record.get(name)
    if isinstance(value, bool):
        raise MalformedRecord(name, "must be an integer")
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    if value is None:
        raise MalformedRecord(name, "is missing")
    raise MalformedRecord(name, f"must be an integer, got {value!r}")


def _amount(record: Mapping[str, Any], name: str) -> str | None:
    """Yuan as a canonical decimal string: 2 places unless the platform gave more.

    Canonical so that "12.3", "12.30" and 12.3 read on different days give the
    same event content. ``pay_amount`` is a string in one SDK generation and a
    JSON number in another; the gateway decodes numbers as ``Decimal`` so no
    binary rounding sneaks in, and a float is read through its shortest repr.
    """
    value = record.get(name)
    if value is None or value == "":
        return None
    if isinstance(value, bool) or not isinstance(value, str | int | float | Decimal):
        raise MalformedRecord(name, f"must be a decimal amount, got {value!r}")
    try:
        amount = Decimal(value.strip() if isinstance(value, str) else str(value))
    except InvalidOperation:
        raise MalformedRecord(name, f"must be a decimal amount, got {value!r}") from None
    if not amount.is_finite() or amount < 0 or amount >= _MAX_AMOUNT:
        raise MalformedRecord(name, f"must be a non-negative amount in yuan, got {value!r}")
    exponent = amount.as_tuple().exponent
    assert isinstance(exponent, int)  # finite, checked above
    if exponent < -6:
        raise MalformedRecord(name, f"has more than 6 decimal places: {value!r}")
    if exponent >= -2:
        return f"{amount:.2f}"
    return f"{amount:f}"


def _event(event_id: str, type_: str, store_id: str, at: datetime, **fields: str | None) -> Event:
    event: Event = {
        "event_id": event_id,
        "type": type_,
        "store_id": store_id,
        "occurred_at": rfc3339(at),
    }
    event.update({name: value for name, value in fields.items() if value is not None})
    return event


# --------------------------------------------------------------------------- orders


def order_events(store_id: str, record: Mapping[str, Any]) -> list[Event]:
    """The events of one ``order_sn_list`` record (possibly none: an order not yet
    confirmed, shipped or received).

    Raises:
        MalformedRecord: a field is missing or unreadable; no event is given.
    """
    order_sn = _identifier(record, "order_sn", required=True)
    assert order_sn is not None
    confirmed = _time(record, "confirm_time")
    shipped = _time(record, "shipping_time")
    received = _time(record, "receive_time")
    events: list[Event] = []
    if confirmed is not None:
        items = record.get("item_list")
        if not isinstance(items, list) or not items or not isinstance(items[0], Mapping):
            raise MalformedRecord("item_list", "a confirmed order needs at least one item")
        first = items[0]
        try:
            product_id = _identifier(first, "goods_id", required=True)
            sku_id = _identifier(first, "sku_id", required=False)
        except MalformedRecord as error:
            raise MalformedRecord(f"item_list[0].{error.field}", error.message) from None
        events.append(
            _event(
                order_event_id(store_id, order_sn, "paid"),
                "order.paid",
                store_id,
                confirmed,
                order_id=order_sn,
                product_id=product_id,
                sku_id=sku_id,
                amount=_amount(record, "pay_amount"),
            )
        )
    if shipped is not None:
        courier = _identifier(record, "logistics_id", required=False)
        if courier is not None and len(courier) > _MAX_COURIER:
            raise MalformedRecord("logistics_id", "is too long for a courier")
        events.append(
            _event(
                order_event_id(store_id, order_sn, "shipped"),
                "order.shipped",
                store_id,
                shipped,
                order_id=order_sn,
                courier=courier,
            )
        )
    if received is not None:
        events.append(
            _event(
                order_event_id(store_id, order_sn, "delivered"),
                "order.delivered",
                store_id,
                received,
                order_id=order_sn,
            )
        )
    return events


def map_orders(store_id: str, records: Iterable[Mapping[str, Any]]) -> MappedRecords:
    """Map a batch of order records; each bad one is reported and the rest mapped."""
    result = MappedRecords()
    for record in records:
        key = _key(record, "order_sn")
        if not isinstance(record, Mapping):
            result.malformed.append(RecordProblem("order", None, "", "is not an object"))
            continue
        try:
            events = order_events(store_id, record)
        except MalformedRecord as error:
            result.malformed.append(RecordProblem("order", key, error.field, error.message))
            continue
        if not events:
            result.skipped.append(SkippedRecord("order", key or "", "no_times"))
        result.events.extend(events)
    return result


# --------------------------------------------------------------------------- refunds


def refund_events(
    store_id: str,
    record: Mapping[str, Any],
    *,
    reason_aliases: Mapping[str, str] | None = None,
) -> RefundEvents | None:
    """The events of one ``refund_list`` record, or None when it is not a refund
    (an exchange, a re-shipment, a repair).

    ``reason_aliases`` (the policy's ``reason_aliases``) re-map labels first.

    Raises:
        MalformedRecord: a field is missing or unreadable; no event is given.
    """
    refund_id = _identifier(record, "id", required=True)
    assert refund_id is not None
    kind = KIND_BY_AFTER_SALES_TYPE.get(_integer(record, "after_sales_type"))
    if kind is None:
        return None
    order_sn = _identifier(record, "order_sn", required=True)
    status = _integer(record, "after_sales_status")
    created = _time(record, "created_time")
    if created is None:
        raise MalformedRecord("created_time", "is missing")
    label = record.get("after_sale_reason")
    if label is None:
        label = ""
    if not isinstance(label, str):
        raise MalformedRecord("after_sale_reason", "must be a string")
    reason, known = reason_code(label, reason_aliases)
    events = [
        _event(
            refund_event_id(store_id, refund_id, "requested"),
            "refund.requested",
            store_id,
            created,
            refund_id=refund_id,
            order_id=order_sn,
            kind=kind,
            reason=reason,
            product_id=_identifier(record, "goods_id", required=False),
            sku_id=_identifier(record, "sku_id", required=False),
        )
    ]
    outcome = OUTCOME_BY_AFTER_SALES_STATUS.get(status)
    if outcome is not None:
        updated = _time(record, "updated_time")
        if updated is None:
            raise MalformedRecord("updated_time", f"is missing for status {status}")
        events.append(
            _event(
                refund_event_id(store_id, refund_id, outcome),
                f"refund.{outcome}",
                store_id,
                updated,
                refund_id=refund_id,
            )
        )
    return RefundEvents(events, None if known else label.strip())


def map_refunds(
    store_id: str,
    records: Iterable[Mapping[str, Any]],
    *,
    reason_aliases: Mapping[str, str] | None = None,
) -> MappedRecords:
    """Map a batch of after-sale records; each bad one is reported and the rest mapped."""
    result = MappedRecords()
    for record in records:
        key = _key(record, "id")
        if not isinstance(record, Mapping):
            result.malformed.append(RecordProblem("refund", None, "", "is not an object"))
            continue
        try:
            mapped = refund_events(store_id, record, reason_aliases=reason_aliases)
        except MalformedRecord as error:
            result.malformed.append(RecordProblem("refund", key, error.field, error.message))
            continue
        if mapped is None:
            result.skipped.append(SkippedRecord("refund", key or "", "not_a_refund"))
            continue
        result.events.extend(mapped.events)
        if mapped.unknown_reason is not None:
            result.unknown_reasons[mapped.unknown_reason] += 1
    return result


def _key(record: object, name: str) -> str | None:
    """The record's number for a report, whatever state the rest of it is in."""
    if not isinstance(record, Mapping):
        return None
    value = record.get(name)
    if isinstance(value, int | str) and not isinstance(value, bool) and str(value).strip():
        return str(value).strip()[:_MAX_ID]
    return None
