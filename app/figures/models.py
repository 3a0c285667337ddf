"""Daily buckets: per store (product_id '') and per product, one row a day."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import Date, Integer, Numeric, String
from sqlalchemy.orm import Mapped, mapped_column

from app.db.base import Base, UTCDateTime

STORE_SCOPE = ""  # product_id of the store-wide bucket rows


class DailyFigures(Base):
    __tablename__ = "daily_figures"

    store_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    product_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    orders: Mapped[int] = mapped_column(Integer, default=0)
    applied_quality_refunds: Mapped[int] = mapped_column(Integer, default=0)
    quality_refunds: Mapped[int] = mapped_column(Integer, default=0)
    pending_quality_refunds: Mapped[int] = mapped_column(Integer, default=0)


class DailySkuFigures(Base):
    """The same four counts per SKU of a product (an order's SKU, see figures.rules)."""

    __tablename__ = "daily_sku_figures"

    store_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    product_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    sku_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    orders: Mapped[int] = mapped_column(Integer, default=0)
    applied_quality_refunds: Mapped[int] = mapped_column(Integer, default=0)
    quality_refunds: Mapped[int] = mapped_column(Integer, default=0)
    pending_quality_refunds: Mapped[int] = mapped_column(Integer, default=0)


class DailyBreakdown(Base):
    """Orders and quality refunds a day per value of a dimension (courier, ship_hours,
    reason, kind), for the store (product_id '') and for each product. key '' is null."""

    __tablename__ = "daily_breakdowns"

    store_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    product_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    dimension: Mapped[str] = mapped_column(String(16), primary_key=True)
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    orders: Mapped[int] = mapped_column(Integer, default=0)
    quality_refunds: Mapped[int] = mapped_column(Integer, default=0)


class PlatformFigures(Base):
    """What the merchant backend showed for a store's day (typed in by the seller)."""

    __tablename__ = "platform_figures"

    store_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    quality_refund_rate: Mapped[Any] = mapped_column(Numeric(9, 6, asdecimal=True), nullable=True)
    quality_refunds: Mapped[int | None] = mapped_column(Integer)
    orders: Mapped[int | None] = mapped_column(Integer)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
