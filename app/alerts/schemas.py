"""Alert and silence shapes."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from app.alerts.models import Alert, Silence


class AlertOut(BaseModel):
    alert_id: str
    type: str = Field(
        description="alert.approaching, alert.breached, alert.resolved, alert.reminder"
    )
    store_id: str
    product_id: str | None
    tier: str
    state: str
    previous_state: str
    silenced: bool = Field(description="Held back from webhooks by a silence (still recorded)")
    created_at: datetime
    data: dict[str, Any] = Field(description="What the webhook carries (DESIGN §6)")

    @classmethod
    def of(cls, alert: Alert) -> AlertOut:
        return cls(
            alert_id=alert.alert_id,
            type=alert.type,
            store_id=alert.store_id,
            product_id=alert.product_id,
            tier=alert.tier,
            state=alert.state,
            previous_state=alert.previous_state,
            silenced=alert.silenced,
            created_at=alert.created_at,
            data={"alert_id": alert.alert_id, **alert.payload},
        )


class SilenceIn(BaseModel):
    """Hold back sending for matching alerts until a time; states and alerts are still kept."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "store_id": "s1",
                    "tier": "demotion",
                    "until": "2026-12-01T00:00:00+08:00",
                    "comment": "talking to the buyers",
                }
            ]
        },
    )

    store_id: str | None = Field(default=None, max_length=64)
    product_id: str | None = Field(default=None, max_length=128)
    tier: Literal["demotion", "listing_ban", "delisting"] | None = None
    until: datetime = Field(description="RFC 3339 with an offset, in the future")
    comment: str | None = Field(default=None, max_length=1000)


class SilenceOut(BaseModel):
    id: int
    store_id: str | None
    product_id: str | None
    tier: str | None
    until: datetime
    comment: str | None
    created_at: datetime
    active: bool

    @classmethod
    def of(cls, silence: Silence, now: datetime) -> SilenceOut:
        return cls(
            id=silence.id,
            store_id=silence.store_id,
            product_id=silence.product_id,
            tier=silence.tier,
            until=silence.until,
            comment=silence.comment,
            created_at=silence.created_at,
            active=silence.until > now,
        )
