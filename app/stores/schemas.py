"""Store shapes."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator

from app.api.params import Id, Text


class StoreOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    store_id: str
    name: str | None
    timezone: str = Field(
        description="IANA time zone that decides the days", examples=["Asia/Shanghai"]
    )
    policy_id: int
    window_days: int
    created_at: datetime
    updated_at: datetime


class StorePatch(BaseModel):
    """Fields to change; a change of time zone or policy recomputes the store's figures."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"name": "旗舰店", "timezone": "Asia/Shanghai"}]},
    )

    name: Text | None = Field(
        default=None, max_length=200, description="A name to tell the store apart (null clears it)"
    )
    timezone: Text | None = Field(
        default=None,
        max_length=64,
        description="IANA name, e.g. Asia/Shanghai: decides the store's days",
    )
    policy_id: Id | None = Field(default=None, description="The policy the store is judged by")

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            ZoneInfo(value)
        # OSError: a name the file system refuses (too long, a directory, no access).
        except (ZoneInfoNotFoundError, ValueError, OSError):
            raise ValueError(
                f"unknown time zone {value!r}; use an IANA name such as Asia/Shanghai"
            ) from None
        return value


STORE_EXAMPLE: dict[str, Any] = {
    "store_id": "s1",
    "name": "旗舰店",
    "timezone": "Asia/Shanghai",
    "policy_id": 1,
    "window_days": 30,
    "created_at": "2026-11-01T02:00:00Z",
    "updated_at": "2026-11-26T04:00:00Z",
}
