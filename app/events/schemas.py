"""The event contract (DESIGN §2) as a discriminated union, and the batch answer.

Each event is validated on its own: one bad event is rejected with a code
and the field it concerns, the good events of the same batch are stored.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    TypeAdapter,
    ValidationError,
)
from pydantic_core import PydanticCustomError

from app.events.vocabulary import EVENT_TYPES, KINDS, REASON_CODES, normalise_reason

STORE_ID_PATTERN = r"^[A-Za-z0-9._:-]{1,64}$"
# RFC 3339 date-time; the offset is optional here only so that a missing one is
# reported as naive_occurred_at rather than as unparsable.
_RFC3339 = re.compile(
    r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})?\Z",
    re.ASCII,
)
_AMOUNT = re.compile(r"^[0-9]{1,12}(\.[0-9]{1,6})?\Z")
# Orders and refunds happen in this range; outside it a day (in any store's time
# zone) or a window could not even be computed, so such a time is refused alone.
EARLIEST_OCCURRED_AT = datetime(1970, 1, 1, tzinfo=UTC)
LATEST_OCCURRED_AT = datetime(2100, 1, 1, tzinfo=UTC)

StoreId = Annotated[
    str,
    StringConstraints(min_length=1, max_length=64, pattern=STORE_ID_PATTERN),
    Field(description="Store id chosen by the client: 1–64 of A-Za-z0-9._:-", examples=["s1"]),
]


def _reject_nul(value: str) -> str:
    # PostgreSQL text cannot hold U+0000: it would fail the whole batch, not this event.
    if "\x00" in value:
        raise PydanticCustomError("nul_character", "must not contain the NUL character (\\u0000)")
    return value


NoNul = AfterValidator(_reject_nul)
EntityId = Annotated[str, StringConstraints(min_length=1, max_length=128), NoNul]


def _parse_occurred_at(value: Any) -> datetime:
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, str):
        try:
            if not _RFC3339.match(value):
                raise ValueError(value)
            parsed = datetime.fromisoformat(value)
        except ValueError:
            raise PydanticCustomError(
                "invalid_occurred_at",
                "occurred_at must be an RFC 3339 time with an offset, e.g. 2026-11-26T10:00:00+08:00",
            ) from None
    else:
        raise PydanticCustomError("invalid_occurred_at", "occurred_at must be an RFC 3339 string")
    if parsed.tzinfo is None or parsed.utcoffset() is None:
        raise PydanticCustomError(
            "naive_occurred_at",
            "occurred_at has no UTC offset; add one, e.g. +08:00 or Z",
        )
    try:
        instant = parsed.astimezone(UTC)
    except OverflowError:  # 0001-01-01T05:00:00+08:00 is before the first representable instant
        instant = None
    if instant is None or not EARLIEST_OCCURRED_AT <= instant < LATEST_OCCURRED_AT:
        raise PydanticCustomError(
            "invalid_occurred_at",
            "occurred_at must lie between 1970-01-01 and 2100-01-01 (UTC)",
        )
    return instant


def _parse_reason(value: Any) -> str:
    code = normalise_reason(value) if isinstance(value, str) else None
    if code is None:
        raise PydanticCustomError(
            "unknown_reason",
            "reason {value} is unknown; valid: {valid}",
            {"value": repr(value), "valid": ", ".join(REASON_CODES) + " (or their Chinese labels)"},
        )
    return code


def _parse_kind(value: Any) -> str:
    if value not in KINDS:
        raise PydanticCustomError(
            "unknown_kind",
            "kind {value} is unknown; valid: {valid}",
            {"value": repr(value), "valid": ", ".join(KINDS)},
        )
    return str(value)


def _parse_amount(value: Any) -> str:
    if not isinstance(value, str) or not _AMOUNT.match(value):
        raise PydanticCustomError(
            "invalid_amount",
            'amount must be a non-negative decimal string such as "19.90"',
        )
    return value


OccurredAt = Annotated[
    datetime,
    BeforeValidator(_parse_occurred_at),
    Field(description="RFC 3339 with an offset; at most 5 minutes in the future"),
]
Reason = Annotated[
    str,
    BeforeValidator(_parse_reason),
    Field(description="Reason code or its Chinese label", examples=["quality_issue", "质量问题"]),
]
Kind = Annotated[str, BeforeValidator(_parse_kind), Field(examples=list(KINDS))]
Amount = Annotated[str, BeforeValidator(_parse_amount), Field(examples=["19.90"])]


class _Event(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    event_id: Annotated[str, StringConstraints(min_length=1, max_length=128), NoNul] = Field(
        description="Idempotency key, 1–128 characters"
    )
    store_id: StoreId
    occurred_at: OccurredAt


class _OrderEvent(_Event):
    order_id: EntityId


class OrderPaid(_OrderEvent):
    """Order paid / group completed (成团): counts in the denominator on its day."""

    type: Literal["order.paid"]
    product_id: EntityId
    sku_id: EntityId | None = None
    amount: Amount | None = None


class OrderShipped(_OrderEvent):
    type: Literal["order.shipped"]
    courier: Annotated[str, StringConstraints(max_length=64), NoNul] | None = None


class OrderDelivered(_OrderEvent):
    type: Literal["order.delivered"]


class _RefundEvent(_Event):
    refund_id: EntityId


class RefundRequested(_RefundEvent):
    """The buyer applies (发起); the refund's day is this event's day."""

    type: Literal["refund.requested"]
    order_id: EntityId
    kind: Kind
    reason: Reason
    product_id: EntityId | None = None
    sku_id: EntityId | None = None
    amount: Amount | None = None


class RefundReturnShipped(_RefundEvent):
    type: Literal["refund.return_shipped"]
    courier: Annotated[str, StringConstraints(max_length=64), NoNul] | None = None


class RefundReasonChanged(_RefundEvent):
    type: Literal["refund.reason_changed"]
    reason: Reason


class RefundApproved(_RefundEvent):
    type: Literal["refund.approved"]


class RefundReturnReceived(_RefundEvent):
    type: Literal["refund.return_received"]


class RefundSucceeded(_RefundEvent):
    type: Literal["refund.succeeded"]


class RefundRejected(_RefundEvent):
    type: Literal["refund.rejected"]


class RefundWithdrawn(_RefundEvent):
    type: Literal["refund.withdrawn"]


class RefundAppealUpheld(_RefundEvent):
    type: Literal["refund.appeal_upheld"]


class RefundAppealRejected(_RefundEvent):
    type: Literal["refund.appeal_rejected"]


EventIn = Annotated[
    OrderPaid
    | OrderShipped
    | OrderDelivered
    | RefundRequested
    | RefundApproved
    | RefundReturnShipped
    | RefundReturnReceived
    | RefundReasonChanged
    | RefundSucceeded
    | RefundRejected
    | RefundWithdrawn
    | RefundAppealUpheld
    | RefundAppealRejected,
    Field(discriminator="type"),
]
EVENT_ADAPTER: TypeAdapter[EventIn] = TypeAdapter(EventIn)

_FIELD_CODES = {
    "store_id": "invalid_store_id",
    "amount": "invalid_amount",
    "event_id": "invalid_event_id",
}
_CUSTOM_CODES = {"invalid_occurred_at", "naive_occurred_at", "unknown_reason", "unknown_kind"}


# The answer's parts are plain dataclasses: a bulk import builds one per event, and a
# model's validation would cost more than the rest of the answer. FastAPI still
# documents them from these annotations.


@dataclass(slots=True)
class FieldError:
    """One thing wrong with an event: its code, the field, and what is wrong in words."""

    code: Annotated[str, Field(description="Machine code, e.g. unknown_reason, missing_field")]
    message: str
    field: Annotated[str | None, Field(description="The event field at fault, if one")] = None

    def as_dict(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, "field": self.field}


@dataclass(slots=True)
class EventError:
    """Why an event was rejected: the first problem (``code``, ``field``, ``message``)
    and, in ``errors``, every problem found, that one first."""

    code: Annotated[str, Field(description="Machine code, e.g. unknown_reason, event_id_conflict")]
    message: str
    field: Annotated[str | None, Field(description="The event field at fault, if one")] = None
    errors: Annotated[
        list[FieldError] | None,
        Field(description="Every problem of the event, the first one included"),
    ] = None

    def as_dict(self) -> dict[str, Any]:
        problems = self.errors or [FieldError(self.code, self.message, self.field)]
        return {
            "code": self.code,
            "message": self.message,
            "field": self.field,
            "errors": [p.as_dict() for p in problems],
        }


def describe_validation_error(exc: ValidationError) -> EventError:
    """Every pydantic error of one event in our codes, fields and messages.

    The first is the event's ``code``/``field``/``message`` (what clients read
    first); ``errors`` lists them all, so a client fixes an event in one go.
    """
    problems: list[FieldError] = []
    for err in exc.errors(include_url=False):
        problem = _describe_one(err)
        if problem not in problems:
            problems.append(problem)
    first = problems[0]
    return EventError(code=first.code, message=first.message, field=first.field, errors=problems)


def _describe_one(err: Any) -> FieldError:
    kind = err["type"]
    loc = [str(part) for part in err["loc"]]
    if kind == "union_tag_not_found":
        return FieldError(code="missing_field", field="type", message="type is required")
    if kind == "union_tag_invalid":
        tag = err.get("input", {}).get("type") if isinstance(err.get("input"), dict) else None
        return FieldError(
            code="unknown_type",
            field="type",
            message=f"type {tag!r} is unknown; valid: {', '.join(_event_types())}",
        )
    if kind in ("model_attributes_type", "dict_type", "model_type"):
        return FieldError(code="invalid_event", message="each event must be a JSON object")
    # loc is (tag, field, ...) for a discriminated union.
    field = loc[1] if len(loc) > 1 else (loc[0] if loc else None)
    if kind == "missing":
        return FieldError(code="missing_field", field=field, message=f"{field} is required")
    message = _naming(field, err["msg"])
    if kind in _CUSTOM_CODES:
        return FieldError(code=kind, field=field, message=message)
    code = _FIELD_CODES.get(field or "", "invalid_field")
    return FieldError(code=code, field=field, message=message)


def _naming(field: str | None, message: str) -> str:
    """The message with the field named once: ours already start with it
    ("amount must be…"), pydantic's do not ("String should have…")."""
    if field is None or message.startswith(field):
        return message
    if message[:1].islower():  # "must not contain…" reads on from the name
        return f"{field} {message}"
    return f"{field}: {message}"


def _event_types() -> list[str]:
    return list(EVENT_TYPES)


@dataclass(slots=True)
class EventResult:
    event_id: str | None
    status: Literal["accepted", "duplicate", "rejected"]
    error: EventError | None = None


@dataclass(slots=True)
class IngestAnswer:
    accepted: int
    duplicates: int
    rejected: int
    results: Annotated[list[EventResult], Field(description="One result per event, in input order")]

    @classmethod
    def of(cls, results: list[EventResult]) -> IngestAnswer:
        """The answer to these results: each status counted."""
        return cls(
            accepted=sum(r.status == "accepted" for r in results),
            duplicates=sum(r.status == "duplicate" for r in results),
            rejected=sum(r.status == "rejected" for r in results),
            results=results,
        )


MAX_EVENTS = 1000


class EventBatch(BaseModel):
    """The request body: 1 to 1000 events (documentation only; each event is validated alone)."""

    events: list[EventIn] = Field(min_length=1, max_length=MAX_EVENTS)


INGEST_ANSWER_EXAMPLE: dict[str, Any] = {
    "accepted": 2,
    "duplicates": 1,
    "rejected": 1,
    "results": [
        {"event_id": "e1", "status": "accepted"},
        {"event_id": "e2", "status": "accepted"},
        {"event_id": "e3", "status": "duplicate"},
        {
            "event_id": "e4",
            "status": "rejected",
            "error": {
                "code": "unknown_reason",
                "message": "reason 'too_expensive' is unknown; valid: quality_issue, "
                "not_as_described, damaged, wrong_item, missing_parts, counterfeit, "
                "changed_mind, ordered_by_mistake, shipping_delay, lost_in_transit, other "
                "(or their Chinese labels)",
                "field": "reason",
                "errors": [
                    {
                        "code": "unknown_reason",
                        "message": "reason 'too_expensive' is unknown; valid: quality_issue, "
                        "not_as_described, damaged, wrong_item, missing_parts, counterfeit, "
                        "changed_mind, ordered_by_mistake, shipping_delay, lost_in_transit, "
                        "other (or their Chinese labels)",
                        "field": "reason",
                    },
                    {
                        "code": "invalid_amount",
                        "message": 'amount must be a non-negative decimal string such as "19.90"',
                        "field": "amount",
                    },
                ],
            },
        },
    ],
}

INGEST_EXAMPLE: dict[str, Any] = {
    "events": [
        {
            "event_id": "e1",
            "type": "order.paid",
            "store_id": "s1",
            "occurred_at": "2026-11-25T10:00:00+08:00",
            "order_id": "o1",
            "product_id": "p1",
            "amount": "19.90",
        },
        {
            "event_id": "e2",
            "type": "refund.requested",
            "store_id": "s1",
            "occurred_at": "2026-11-25T12:00:00+08:00",
            "refund_id": "r1",
            "order_id": "o1",
            "kind": "refund_only",
            "reason": "质量问题",
        },
        {
            "event_id": "e3",
            "type": "refund.succeeded",
            "store_id": "s1",
            "occurred_at": "2026-11-25T15:00:00+08:00",
            "refund_id": "r1",
        },
    ]
}
