"""Parameter types the database can hold, declared once for every route.

A value the database cannot store (an integer beyond its 32-bit column, a NUL
character in PostgreSQL text, an instant whose conversion to UTC overflows, a
day whose window would start before year 1) must be refused as a 422 that
names the field, never reach a query and come back as a 500. Routes and body
schemas use these types instead of bare ``int``/``str``/``date``/``datetime``:

- ``Count``, ``Id``: body integers, strict (a JSON ``true`` or ``1.5`` is not a
  count) and within the column type. Tighten one as ``Annotated[Count,
  Field(le=1000)]``: written ``x: Count = Field(le=1000)``, pydantic keeps the
  alias's own bound and drops the field's.
- ``Flag``: a JSON boolean (not ``0`` or ``"no"``).
- ``Text``, ``StoreIdText``, ``EntityIdText`` and the ``NO_NUL``, ``STORE_ID``,
  ``ENTITY_ID`` patterns for ``Query``/``Path``: text without U+0000; being
  constrained, pydantic also refuses a lone surrogate in them (a bare ``str``
  takes one, and no database encodes it).
- ``Day`` and ``Instant``: a calendar day (1970-01-01 to 2099-12-31) and an aware
  instant (1970 to 2100 UTC), the range events may carry; ``Instant`` is RFC 3339
  text with an offset only (a bare number is no time).
- ``StoreIdQuery``, ``ProductIdQuery``: the common filters.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from typing import Annotated, Any, Final

from fastapi import Query
from pydantic import BeforeValidator, Field, Strict, StringConstraints, ValidationInfo
from pydantic_core import PydanticCustomError

from app.events.schemas import EARLIEST_OCCURRED_AT, LATEST_OCCURRED_AT, STORE_ID_PATTERN

#: Integer columns are 32-bit (INTEGER on both backends).
MAX_INT: Final = 2**31 - 1
#: Text without the NUL character, which PostgreSQL text cannot hold.
NO_NUL: Final = r"^[^\x00]*$"
#: A store id as events carry it (so a path or filter of any other shape is a 422).
STORE_ID: Final = STORE_ID_PATTERN
#: A product, order, refund or SKU id: 1–128 characters without NUL.
ENTITY_ID: Final = r"^[^\x00]{1,128}$"

EARLIEST_DAY: Final = EARLIEST_OCCURRED_AT.date()
LATEST_DAY: Final = date(2099, 12, 31)

Count = Annotated[int, Strict(), Field(ge=0, le=MAX_INT)]
Id = Annotated[int, Strict(), Field(ge=1, le=MAX_INT)]
Flag = Annotated[bool, Strict()]
Text = Annotated[str, StringConstraints(pattern=NO_NUL)]
StoreIdText = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=STORE_ID)]
EntityIdText = Annotated[str, StringConstraints(min_length=1, max_length=128, pattern=ENTITY_ID)]

_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}\Z", re.ASCII)
# The offset is optional here only so that a missing one is named as such.
_INSTANT = re.compile(
    r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})?\Z", re.ASCII
)


def _parse_day(value: Any) -> date:
    if isinstance(value, datetime):
        raise PydanticCustomError("invalid_date", "must be a day (YYYY-MM-DD), not a time")
    if isinstance(value, date):
        day = value
    elif isinstance(value, str) and _DAY.match(value):
        try:
            day = date.fromisoformat(value)
        except ValueError:
            raise PydanticCustomError(
                "invalid_date", "must be a calendar day (YYYY-MM-DD)"
            ) from None
    else:
        raise PydanticCustomError("invalid_date", "must be a day written YYYY-MM-DD")
    if not EARLIEST_DAY <= day <= LATEST_DAY:
        raise PydanticCustomError(
            "date_out_of_range",
            "must lie between {earliest} and {latest}",
            {"earliest": EARLIEST_DAY.isoformat(), "latest": LATEST_DAY.isoformat()},
        )
    return day


def _parse_instant(value: Any, info: ValidationInfo) -> datetime:
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, str) and _INSTANT.match(value):
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            raise PydanticCustomError(
                "invalid_datetime", "must be a real RFC 3339 time, e.g. 2026-11-26T10:00:00+08:00"
            ) from None
    else:
        raise PydanticCustomError(
            "invalid_datetime",
            "must be an RFC 3339 time with an offset, e.g. 2026-11-26T10:00:00+08:00",
        )
    if parsed.tzinfo is None or parsed.utcoffset() is None:
        # naive_until, naive_since, naive_sync_from: the code names the field, as
        # naive_occurred_at does for events.
        code = f"naive_{info.field_name}" if info.field_name else "naive_datetime"
        raise PydanticCustomError(code, "needs a UTC offset, e.g. +08:00 or Z")
    try:
        instant = parsed.astimezone(UTC)
    except OverflowError:  # 0001-01-01T05:00:00+08:00 is before the first instant
        instant = None
    if instant is None or not EARLIEST_OCCURRED_AT <= instant < LATEST_OCCURRED_AT:
        raise PydanticCustomError(
            "datetime_out_of_range", "must lie between 1970-01-01 and 2100-01-01 (UTC)"
        )
    return instant


#: A calendar day between 1970-01-01 and 2099-12-31: every window around it is computable.
Day = Annotated[date, BeforeValidator(_parse_day)]
#: An aware instant (RFC 3339 with an offset) between 1970 and 2100, returned in UTC.
Instant = Annotated[datetime, BeforeValidator(_parse_instant)]

#: ``?store_id=``: a store id as events carry it.
StoreIdQuery = Annotated[
    str | None,
    Query(
        min_length=1,
        max_length=64,
        pattern=STORE_ID,
        description="Only this store",
        examples=["s1"],
    ),
]
#: ``?product_id=``: a product id (1–128 characters, no NUL).
ProductIdQuery = Annotated[
    str | None,
    Query(
        min_length=1,
        max_length=128,
        pattern=ENTITY_ID,
        description="Only this product",
        examples=["p1"],
    ),
]
