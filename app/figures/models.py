"""Daily buckets: per store (product_id '') and per product, one row a day."""

from __future__ import annotations

from datetime import date

from sqlalchemy import Date, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from app.db.base import Base

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
