"""Store shapes."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator


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

    name: str | None = Field(default=None, max_length=200, pattern=r"^[^\x00]*$")
    timezone: str | None = Field(default=None, description="IANA name, e.g. Asia/Shanghai")
    policy_id: int | None = Field(default=None, ge=1)

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"unknown time zone {value!r}; use an IANA name such as Asia/Shanghai"
            ) from None
        return value
