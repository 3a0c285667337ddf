"""Response shapes of the figures (DESIGN §7)."""

from __future__ import annotations

from datetime import date
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from app.api.pagination import Page
from app.policies.tiers import TierVerdict


class TierStatus(BaseModel):
    tier: str = Field(description="demotion 降权 · listing_ban 禁止上新 · delisting 下架")
    scope: str = Field(description="store or product")
    state: str = Field(description="ok, approaching, breached or unrated")
    rate_threshold: str = Field(description="The line's rate, a decimal string", examples=["0.01"])
    min_count: int = Field(description="The line's minimum count of quality refunds")
    refunds_until_breach: int | None = Field(
        description="Fewest further counted quality refunds (orders unchanged) that breach; "
        "0 when breached; null when orders is 0"
    )
    orders_to_recover: int | None = Field(
        description="When breached: fewest further clean orders that bring the rate under the line"
    )
    count_clears_on: date | None = Field(
        default=None,
        description="When breached: the first day on which, with no new quality refunds, the "
        "window's count falls below min_count (so the tier cannot stay breached)",
    )

    @classmethod
    def of(cls, verdict: TierVerdict, count_clears_on: date | None = None) -> TierStatus:
        return cls(
            count_clears_on=count_clears_on,
            tier=verdict.tier,
            scope=verdict.scope,
            state=verdict.state,
            rate_threshold=str(verdict.rate_threshold),
            min_count=verdict.min_count,
            refunds_until_breach=verdict.refunds_until_breach,
            orders_to_recover=verdict.orders_to_recover,
        )


class FigureFields(BaseModel):
    orders: int = Field(description="Distinct orders paid in the window (the denominator)")
    quality_refunds: int = Field(
        description="品质退款单数: orders whose earliest counted quality refund is in the window"
    )
    applied_quality_refunds: int = Field(
        description="顾客申请品质退款: orders whose earliest quality refund (any outcome) is in the window"
    )
    pending_quality_refunds: int = Field(
        description="Orders in quality_refunds whose counted refunds are all still open"
    )
    quality_refund_rate: str | None = Field(
        description="quality_refunds / orders, rounded half-even to 6 places; null when orders is 0",
        examples=["0.012500"],
    )


Trend = Literal["rising", "falling", "flat"] | None
TREND_DESCRIPTION = (
    "The rate against the rate as of 7 days earlier: rising or falling by at least 0.001 "
    "(0.1 percentage point), else flat; null when either rate is null"
)


class StoreMetrics(FigureFields):
    trend: Trend = Field(description=TREND_DESCRIPTION)
    store_id: str
    as_of: date = Field(description="The window's last day, in the store's time zone")
    window_days: int
    window_start: date
    tiers: list[TierStatus] = Field(description="Every store-scope tier's state and headroom")


class ProductMetrics(FigureFields):
    trend: Trend = Field(description=TREND_DESCRIPTION)
    product_id: str
    tiers: list[TierStatus] = Field(description="The product-scope tiers (delisting 下架)")


class ProductPage(Page[ProductMetrics]):
    """Worst first: state, then headroom, then count."""

    store_id: str
    as_of: date
    window_days: int


class HistoryPoint(FigureFields):
    day: date = Field(description="The window ending on this day")


class MetricsHistory(BaseModel):
    store_id: str
    window_days: int
    points: list[HistoryPoint]


class RefundItem(BaseModel):
    refund_id: str
    order_id: str | None
    product_id: str | None = Field(description="The order's product (the one its figures go to)")
    kind: str | None
    reason: str | None = Field(description="The reason the policy judges (first or latest)")
    requested_at: str | None
    requested_on: date | None = Field(description="The refund's day in the store's time zone")
    outcome: str = Field(
        description="open, succeeded, rejected, withdrawn (unrequested: not yet requested)"
    )
    stage: str | None = Field(description="The latest lifecycle stage")
    appeal: str | None = Field(description="upheld or rejected, if appealed")
    quality: bool = Field(description="The reason is one of the policy's quality reasons")
    counted: bool = Field(
        description="A quality refund that is not rejected, withdrawn or appeal-upheld"
    )
    counts_for_order: bool = Field(
        description="This refund is the one that puts its order in quality_refunds this window"
    )
    pending: bool = Field(description="Counted and still open: the seller can still turn it")
    why: str = Field(description="Why it counts or not, in one line")


class RefundPage(Page[RefundItem]):
    store_id: str
    as_of: date


class SkuMetrics(FigureFields):
    sku_id: str
    trend: Trend = Field(description=TREND_DESCRIPTION)


class SkuPage(Page[SkuMetrics]):
    """SKUs of one product, most quality refunds first (then highest rate, then id)."""

    store_id: str
    product_id: str
    as_of: date
    window_days: int


_KEY_DESCRIPTION = (
    "The courier, the hours-to-ship band (0-24, 24-48, 48-72, 72+), the reason code or "
    "the kind; null: no courier named / never shipped"
)


class OrderBreakdownItem(BaseModel):
    """by=courier or ship_hours: the window's orders and their quality refunds."""

    key: str | None = Field(description=_KEY_DESCRIPTION)
    orders: int = Field(description="Orders paid in the window with this key")
    quality_refunds: int = Field(description="Orders in the window's quality_refunds with this key")
    quality_refund_rate: str | None = Field(description="quality_refunds / orders")


class RefundBreakdownItem(BaseModel):
    """by=reason or kind: the window's quality refunds by their earliest counted refund."""

    key: str | None = Field(description=_KEY_DESCRIPTION)
    quality_refunds: int


class Breakdown(BaseModel):
    store_id: str
    product_id: str | None
    by: str = Field(description="courier, ship_hours, reason or kind")
    as_of: date
    window_days: int
    window_start: date
    items: list[OrderBreakdownItem] | list[RefundBreakdownItem] = Field(
        description="Most quality refunds first, then key (null last)"
    )


class PlatformNumbers(BaseModel):
    quality_refund_rate: str | None = Field(description="A decimal string, e.g. 0.0219")
    quality_refunds: int | None
    orders: int | None


class PlatformDay(BaseModel):
    day: date
    platform: PlatformNumbers = Field(description="What the merchant backend showed")
    ours: PlatformNumbers = Field(description="refundwatch's figures, window ending that day")
    drift: PlatformNumbers = Field(
        description="ours − platform, each where both are known (rate to 6 places)"
    )


class PlatformFiguresOut(BaseModel):
    store_id: str
    window_days: int
    days: list[PlatformDay]


class PlatformFiguresIn(BaseModel):
    """What the merchant backend shows for a day; any field may be omitted (not all)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"quality_refund_rate": "0.0219", "quality_refunds": 11, "orders": 502}]
        },
    )

    quality_refund_rate: str | None = Field(
        default=None,
        pattern=r"^(0(\.[0-9]{1,6})?|1(\.0{1,6})?)$",
        description="A decimal string between 0 and 1 with at most 6 places, e.g. 0.0219",
    )
    quality_refunds: int | None = Field(default=None, ge=0, le=2**31 - 1)
    orders: int | None = Field(default=None, ge=0, le=2**31 - 1)

    @model_validator(mode="after")
    def _something_given(self) -> PlatformFiguresIn:
        if (
            self.quality_refund_rate is None
            and self.quality_refunds is None
            and self.orders is None
        ):
            raise ValueError("give at least one of quality_refund_rate, quality_refunds, orders")
        return self
