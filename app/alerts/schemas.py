"""Alert and silence shapes."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from app.alerts.models import Alert, Silence
from app.api.params import EntityIdText, Instant, StoreIdText, Text


class AlertOut(BaseModel):
    alert_id: str
    seq: int = Field(
        description="Commit order: every alert with a smaller seq was stored before this one "
        "became visible, so `GET /v1/alerts?after=<the last seq you saw>` never skips one"
    )
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
            # Numbered at its commit: every alert another transaction can read has one.
            seq=alert.seq or 0,
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
                    # Far in the future: an example must still work when pasted later.
                    "until": "2099-12-01T00:00:00+08:00",
                    "comment": "talking to the buyers",
                }
            ]
        },
    )

    store_id: StoreIdText | None = Field(default=None, description="Only this store")
    product_id: EntityIdText | None = Field(default=None, description="Only this product")
    tier: Literal["demotion", "listing_ban", "delisting"] | None = Field(
        default=None, description="Only this tier"
    )
    until: Instant = Field(description="RFC 3339 with an offset, in the future, before 2100")
    comment: Text | None = Field(default=None, max_length=1000, description="Why, for the team")


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


ALERT_EXAMPLE: dict[str, Any] = {
    "alert_id": "0b6f3c1e-7d8a-4f57-9a51-2f9e5c1d4a3b",
    "seq": 42,
    "type": "alert.breached",
    "store_id": "s1",
    "product_id": None,
    "tier": "demotion",
    "state": "breached",
    "previous_state": "approaching",
    "silenced": False,
    "created_at": "2026-11-26T04:00:00Z",
    "data": {
        "alert_id": "0b6f3c1e-7d8a-4f57-9a51-2f9e5c1d4a3b",
        "store_id": "s1",
        "store_name": "旗舰店",
        "product_id": None,
        "tier": "demotion",
        "scope": "store",
        "state": "breached",
        "previous_state": "approaching",
        "figures": {
            "as_of": "2026-11-26",
            "window_days": 30,
            "orders": 400,
            "quality_refunds": 5,
            "applied_quality_refunds": 7,
            "pending_quality_refunds": 2,
            "quality_refund_rate": "0.012500",
        },
        "rate_threshold": "0.01",
        "min_count": 5,
        "refunds_until_breach": 0,
        "orders_to_recover": 101,
        "pending_refunds": [
            {
                "refund_id": "r7",
                "order_id": "o7",
                "product_id": "p1",
                "kind": "refund_only",
                "reason": "quality_issue",
                "requested_on": "2026-11-25",
            }
        ],
        "top_products": [{"product_id": "p1", "quality_refunds": 4}],
        "top_reasons": [{"reason": "quality_issue", "count": 4}],
        "advice": {
            "zh": "店铺 s1 已触发降权线：联系 2 笔待处理的品质退款买家，争取撤销。",
            "en": "Store s1 is over the demotion line: talk to the buyers of the 2 pending "
            "quality refunds.",
        },
    },
}

SILENCE_EXAMPLE: dict[str, Any] = {
    "id": 1,
    "store_id": "s1",
    "product_id": None,
    "tier": "demotion",
    "until": "2099-12-01T00:00:00Z",
    "comment": "talking to the buyers",
    "created_at": "2026-11-26T04:00:00Z",
    "active": True,
}
