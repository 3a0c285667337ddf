"""Pages and cursors: one page type, one keyset helper, one offset helper.

Clients pass a page's ``next_cursor`` back as ``cursor``. A cursor is opaque
(base64 of a JSON position) and checked before it reaches a query: a forged or
garbled one is a 422 ``invalid_cursor``, never a database error.

- Keyset paging (:func:`keyset`, :func:`next_page`) for lists in the order of
  one unique column: ids, store ids. Stable under inserts, O(limit) per page.
- Offset paging (:func:`offset_page`) for short lists sorted in memory by a
  computed rank (worst first), where no column holds the order.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Sequence
from typing import Annotated, Any, Generic, TypeVar

import orjson
from fastapi import Query
from pydantic import BaseModel, Field
from sqlalchemy import Select

from app.errors import Unprocessable, field_error

T = TypeVar("T")
S = TypeVar("S", bound=Select[Any])

LimitQuery = Annotated[int, Query(ge=1, le=500, description="Page size (1–500)")]
CursorQuery = Annotated[
    str | None,
    Query(
        max_length=1000,
        description="The `next_cursor` of the previous page; omit for the first",
    ),
]

# Integer keys are 32-bit columns: a position outside them cannot be one we issued.
MAX_INT_KEY = 2**31 - 1
MAX_OFFSET = 10_000_000


class Page(BaseModel, Generic[T]):
    """One page of a list, and the cursor of the next (null on the last page)."""

    items: list[T]
    next_cursor: str | None = Field(
        description="Pass as `cursor` to read the next page; null when this is the last"
    )


def encode_cursor(position: Any) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(position)).decode().rstrip("=")


def invalid_cursor() -> Unprocessable:
    return field_error("query.cursor", "invalid_cursor", "cursor is not one this API issued")


def decode_cursor(cursor: str | None, expect: type | tuple[type, ...] | None = None) -> Any:
    """The position in a cursor. With ``expect``, a position of another JSON type is a
    422 too: a forged or garbled cursor must never reach a query."""
    if cursor is None:
        return None
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        position = orjson.loads(base64.urlsafe_b64decode(padded.encode()))
    except (ValueError, orjson.JSONDecodeError):
        raise invalid_cursor() from None
    if expect is not None and (not isinstance(position, expect) or isinstance(position, bool)):
        raise invalid_cursor()
    if isinstance(position, int) and not 0 <= position <= MAX_INT_KEY:
        raise invalid_cursor()
    if isinstance(position, str) and ("\x00" in position or len(position) > 200):
        raise invalid_cursor()
    return position


def keyset(
    query: S,
    column: Any,
    cursor: str | None,
    limit: int,
    *,
    descending: bool = False,
    kind: type = int,
) -> S:
    """``query`` ordered by the unique ``column``, after the cursor's position,
    ``limit + 1`` rows (the extra row tells whether another page follows)."""
    after = decode_cursor(cursor, kind)
    if after is not None:
        query = query.where(column < after if descending else column > after)
    return query.order_by(column.desc() if descending else column).limit(limit + 1)


def next_page(rows: Sequence[T], limit: int, key: Callable[[T], Any]) -> tuple[list[T], str | None]:
    """The page from ``limit + 1`` rows fetched by :func:`keyset`, and its next cursor."""
    page = list(rows[:limit])
    more = len(rows) > limit
    return page, encode_cursor(key(page[-1])) if more and page else None


def offset_page(items: Sequence[T], cursor: str | None, limit: int) -> tuple[list[T], str | None]:
    """A page of a list sorted in memory, and the cursor of the next page."""
    offset: int = decode_cursor(cursor, int) or 0
    if offset > MAX_OFFSET:
        raise invalid_cursor()
    end = offset + limit
    return list(items[offset:end]), encode_cursor(end) if end < len(items) else None
