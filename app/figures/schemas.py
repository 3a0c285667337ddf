"""Response shapes of the figures (DESIGN §7)."""

from __future__ import annotations

from datetime import date

from pydantic import BaseModel, Field

from app.api.pagination import Page
from app.figures.rules import WindowFigures
from app.policies.tiers import TierVerdict, quality_refund_rate


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

    @classmethod
    def of(cls, verdict: TierVerdict) -> TierStatus:
        return cls(
            tier=verdict.tier,
            scope=verdict.scope,
            state=verdict.state,
            rate_threshold=str(verdict.rate_threshold),
            min_count=verdict.min_count,
            refunds_until_breach=verdict.refunds_until_breach,
            orders_to_recover=verdict.orders_to_recover,
        )


def figure_fields(figures: WindowFigures) -> dict[str, object]:
    """The fields of :class:`FigureFields` for these window figures (the rate derived)."""
    return {
        "orders": figures.orders,
        "quality_refunds": figures.quality_refunds,
        "applied_quality_refunds": figures.applied_quality_refunds,
        "pending_quality_refunds": figures.pending_quality_refunds,
        "quality_refund_rate": quality_refund_rate(figures.quality_refunds, figures.orders),
    }


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


class StoreMetrics(FigureFields):
    store_id: str
    as_of: date = Field(description="The window's last day, in the store's time zone")
    window_days: int
    window_start: date
    tiers: list[TierStatus] = Field(description="Every store-scope tier's state and headroom")


class ProductMetrics(FigureFields):
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
