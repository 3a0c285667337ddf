"""Policies: the window, what counts as a quality refund, and the penalty lines."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Integer, Numeric, String
from sqlalchemy.orm import Mapped, mapped_column

from app.db.base import Base, UTCDateTime

DEFAULT_POLICY_ID = 1


class Policy(Base):
    __tablename__ = "policies"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    window_days: Mapped[int] = mapped_column(Integer)
    quality_reasons: Mapped[list[str]] = mapped_column(JSON)
    reason_basis: Mapped[str] = mapped_column(String(16))
    warn_ratio: Mapped[Any] = mapped_column(Numeric(8, 6, asdecimal=True))
    warn_headroom: Mapped[int] = mapped_column(Integer)
    min_orders: Mapped[int] = mapped_column(Integer)
    reminder_interval_seconds: Mapped[int] = mapped_column(Integer)
    # [{"tier": "demotion", "scope": "store", "rate_threshold": "0.01", "min_count": 5}, ...]
    tiers: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    # Platform after-sale labels → reason codes, for imports and connectors.
    reason_aliases: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    # counted: tiers judge quality_refunds; applied: applied_quality_refunds.
    count_basis: Mapped[str] = mapped_column(String(16), default="counted")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
