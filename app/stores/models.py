"""Stores: created on their first event; name, time zone and policy are editable."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Date, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from app.db.base import Base, UTCDateTime


class Store(Base):
    __tablename__ = "stores"

    store_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str | None] = mapped_column(String(200))
    timezone: Mapped[str] = mapped_column(String(64))
    policy_id: Mapped[int] = mapped_column(Integer, ForeignKey("policies.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # The local day of the last full time-based evaluation (window slide).
    evaluated_on: Mapped[date | None] = mapped_column(Date)
    # The version of the bucket rules its figures were built with; an older one is
    # rebuilt from the folded state at start (app.figures.rebuild).
    figures_version: Mapped[int] = mapped_column(Integer, default=2)
