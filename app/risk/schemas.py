"""Risk list and what-if shapes."""

from __future__ import annotations

from datetime import date, datetime

from pydantic import BaseModel, ConfigDict, Field

from app.figures.schemas import FigureFields, TierStatus


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


class WhatIfIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"extra_quality_refunds": 2, "extra_orders": 0}]},
    )

    extra_quality_refunds: int = Field(default=0, ge=0, le=10_000_000)
    extra_orders: int = Field(default=0, ge=0, le=100_000_000)
    product_id: str | None = Field(
        default=None, description="Ask about one product's tiers instead of the store's"
    )
    as_of: date | None = None


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
