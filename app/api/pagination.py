"""Opaque cursors: clients pass back ``next_cursor`` as ``cursor``."""

from __future__ import annotations

import base64
from typing import Annotated, Any, TypeVar

import orjson
from fastapi import Query

from app.api.problems import Unprocessable, field_error

LimitQuery = Annotated[int, Query(ge=1, le=500, description="Page size (1–500)")]
CursorQuery = Annotated[
    str | None, Query(description="The `next_cursor` of the previous page; omit for the first")
]


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
    return position


T = TypeVar("T")


def split_page(rows: list[T], limit: int) -> tuple[list[T], bool]:
    """A page from ``limit + 1`` fetched rows, and whether another page follows."""
    return rows[:limit], len(rows) > limit


def decode_offset(cursor: str | None) -> int:
    """The position of an offset cursor (lists sorted in memory, such as worst-first)."""
    offset: int = decode_cursor(cursor, int) or 0
    if offset < 0:
        raise invalid_cursor()
    return offset
