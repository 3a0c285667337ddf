"""What ingest keeps: the raw events, and the folded state of each refund and order.

The raw ``events`` table is the source of truth (figures can always be
recomputed from it); ``refunds`` and ``orders`` hold the per-entity state that
makes each new event O(1) to fold; ``orders`` also remembers what the order
currently contributes to the daily buckets, so a change is a delta.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Boolean, Date, Index, LargeBinary, SmallInteger, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.db.base import Base, UTCDateTime


class Event(Base):
    __tablename__ = "events"

    event_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    store_id: Mapped[str] = mapped_column(String(64))
    type: Mapped[str] = mapped_column(String(32))
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime)
    content_hash: Mapped[bytes] = mapped_column(LargeBinary(16))
    # The event exactly as accepted (canonical JSON, sorted keys); NULL once older than
    # REFUNDWATCH_RAW_RETENTION_DAYS. Nothing reads it back: the id and content_hash
    # keep resends exact, and the figures come from the folded state below.
    payload: Mapped[str | None] = mapped_column(Text)
    # Read only by event_id: no other index (migration 0003 says why).


class RefundRecord(Base):
    """One after-sale application, folded from all of its events so far."""

    __tablename__ = "refunds"

    store_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    refund_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    # From the earliest refund.requested; NULL until it arrives.
    order_id: Mapped[str | None] = mapped_column(String(128))
    kind: Mapped[str | None] = mapped_column(String(32))
    product_id: Mapped[str | None] = mapped_column(String(128))
    requested_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    requested_event_id: Mapped[str | None] = mapped_column(String(128))
    first_reason: Mapped[str | None] = mapped_column(String(32))
    first_reason_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    first_reason_event_id: Mapped[str | None] = mapped_column(String(128))
    latest_reason: Mapped[str | None] = mapped_column(String(32))
    latest_reason_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    latest_reason_event_id: Mapped[str | None] = mapped_column(String(128))
    stage: Mapped[int | None] = mapped_column(SmallInteger)
    stage_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    stage_event_id: Mapped[str | None] = mapped_column(String(128))
    appeal: Mapped[str | None] = mapped_column(String(16))
    appeal_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    appeal_event_id: Mapped[str | None] = mapped_column(String(128))
    sku_id: Mapped[str | None] = mapped_column(String(128))

    __table_args__ = (
        Index(None, "store_id", "order_id"),
        Index(None, "store_id", "requested_at"),
    )


class OrderRecord(Base):
    """One order: its winning order.paid, its product, and its current contribution."""

    __tablename__ = "orders"

    store_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    order_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    paid_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    paid_event_id: Mapped[str | None] = mapped_column(String(128))
    paid_product_id: Mapped[str | None] = mapped_column(String(128))
    sku_id: Mapped[str | None] = mapped_column(String(128))
    amount: Mapped[str | None] = mapped_column(String(32))
    shipped_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    courier: Mapped[str | None] = mapped_column(String(64))
    courier_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    courier_event_id: Mapped[str | None] = mapped_column(String(128))
    # What the order adds to the daily buckets right now (see app.figures.rules).
    c_product_id: Mapped[str | None] = mapped_column(String(128))
    c_paid_day: Mapped[date | None] = mapped_column(Date)
    c_applied_day: Mapped[date | None] = mapped_column(Date)
    c_quality_day: Mapped[date | None] = mapped_column(Date)
    c_pending: Mapped[bool] = mapped_column(Boolean, default=False)
    c_sku_id: Mapped[str | None] = mapped_column(String(128))
    c_courier: Mapped[str | None] = mapped_column(String(64))
    c_ship_band: Mapped[str | None] = mapped_column(String(8))
    c_reason: Mapped[str | None] = mapped_column(String(32))
    c_kind: Mapped[str | None] = mapped_column(String(32))
