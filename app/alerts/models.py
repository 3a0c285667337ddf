"""Alert state per (store, product, tier), the alert history, and silences."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.db.base import Base, UTCDateTime


class AlertState(Base):
    """The last evaluated state of one scope against one tier.

    Only scopes that ever left ``ok`` have a row: an absent row means ``ok``.
    """

    __tablename__ = "alert_states"

    store_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    product_id: Mapped[str] = mapped_column(String(128), primary_key=True)  # "" = store
    tier: Mapped[str] = mapped_column(String(32), primary_key=True)
    state: Mapped[str] = mapped_column(String(16))
    since: Mapped[datetime] = mapped_column(UTCDateTime)
    last_alert_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    evaluated_at: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (Index(None, "state", "last_alert_at"),)


class Alert(Base):
    __tablename__ = "alerts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    alert_id: Mapped[str] = mapped_column(String(40), unique=True)
    type: Mapped[str] = mapped_column(String(32))
    store_id: Mapped[str] = mapped_column(String(64))
    product_id: Mapped[str | None] = mapped_column(String(128))
    tier: Mapped[str] = mapped_column(String(32))
    state: Mapped[str] = mapped_column(String(16))
    previous_state: Mapped[str] = mapped_column(String(16))
    silenced: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # The alert's `data` as sent to webhooks (DESIGN §6).
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    # Commit order: numbered as its transaction commits (alerts.repository), so a
    # poller reading `seq > n` never skips one. NULL only inside that transaction.
    seq: Mapped[int | None] = mapped_column(Integer)

    __table_args__ = (Index(None, "store_id", "id"), Index(None, "seq", unique=True))


class AlertSequence(Base):
    """One row: the last ``seq`` handed out. Its row lock orders alert-writing commits."""

    __tablename__ = "alert_sequence"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    last_seq: Mapped[int] = mapped_column(Integer)


class Silence(Base):
    __tablename__ = "silences"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    store_id: Mapped[str | None] = mapped_column(String(64))
    product_id: Mapped[str | None] = mapped_column(String(128))
    tier: Mapped[str | None] = mapped_column(String(32))
    until: Mapped[datetime] = mapped_column(UTCDateTime)
    comment: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
