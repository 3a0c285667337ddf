"""Risk list and what-if shapes."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from app.api.params import Count, Day, EntityIdText
from app.figures.schemas import TREND_DESCRIPTION, FigureFields, TierStatus, Trend


class RiskItem(FigureFields):
    store_id: str
    product_id: str | None
    tier: str
    scope: str
    state: str
    rate_threshold: str
    min_count: int
    refunds_until_breach: int | None
    orders_to_recover: int | None
    since: datetime = Field(description="When the scope entered its current state")
    as_of: date
    trend: Trend = Field(description=TREND_DESCRIPTION)
    count_clears_on: date | None = Field(
        description="When breached: the first day the count falls below min_count with no new "
        "quality refunds"
    )


class WhatIfIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"extra_quality_refunds": 2, "extra_orders": 0}]},
    )

    extra_quality_refunds: Annotated[Count, Field(le=10_000_000)] = Field(
        default=0, description="More counted quality refunds (orders unchanged)"
    )
    extra_orders: Annotated[Count, Field(le=100_000_000)] = Field(
        default=0, description="More clean orders (no refund)"
    )
    product_id: EntityIdText | None = Field(
        default=None, description="Ask about one product's tiers instead of the store's"
    )
    as_of: Day | None = Field(
        default=None, description="The window's last day (YYYY-MM-DD); default today"
    )


class WhatIfTier(TierStatus):
    current_state: str = Field(description="The state today, before the change")


class WhatIfOut(BaseModel):
    store_id: str
    product_id: str | None
    as_of: date
    extra_quality_refunds: int
    extra_orders: int
    orders: int = Field(description="Orders after the change")
    quality_refunds: int = Field(description="Quality refunds after the change")
    quality_refund_rate: str | None
    tiers: list[WhatIfTier]


RISK_EXAMPLE: dict[str, Any] = {
    "store_id": "s1",
    "product_id": None,
    "tier": "demotion",
    "scope": "store",
    "state": "breached",
    "rate_threshold": "0.01",
    "min_count": 5,
    "refunds_until_breach": 0,
    "orders_to_recover": 101,
    "since": "2026-11-26T04:00:00Z",
    "as_of": "2026-11-26",
    "trend": "rising",
    "count_clears_on": "2026-12-19",
    "orders": 400,
    "quality_refunds": 5,
    "applied_quality_refunds": 7,
    "pending_quality_refunds": 2,
    "quality_refund_rate": "0.012500",
}

WHAT_IF_EXAMPLE: dict[str, Any] = {
    "store_id": "s1",
    "product_id": None,
    "as_of": "2026-11-26",
    "extra_quality_refunds": 2,
    "extra_orders": 0,
    "orders": 400,
    "quality_refunds": 6,
    "quality_refund_rate": "0.015000",
    "tiers": [
        {
            "tier": "demotion",
            "scope": "store",
            "state": "breached",
            "rate_threshold": "0.01",
            "min_count": 5,
            "refunds_until_breach": 0,
            "orders_to_recover": 201,
            "count_clears_on": None,
            "current_state": "approaching",
        },
        {
            "tier": "listing_ban",
            "scope": "store",
            "state": "ok",
            "rate_threshold": "0.02",
            "min_count": 10,
            "refunds_until_breach": 4,
            "orders_to_recover": None,
            "count_clears_on": None,
            "current_state": "ok",
        },
    ],
}
