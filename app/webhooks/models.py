"""Subscriptions, the delivery outbox, and one row per delivery attempt."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, Boolean, Date, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.db.base import Base, UTCDateTime


class WebhookSubscription(Base):
    """Where alerts go. Signing secrets are kept in clear: HMAC needs them."""

    __tablename__ = "webhooks"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    url: Mapped[str] = mapped_column(String(2000))
    format: Mapped[str] = mapped_column(String(16))
    description: Mapped[str | None] = mapped_column(String(200))
    secret: Mapped[str | None] = mapped_column(Text)
    previous_secret: Mapped[str | None] = mapped_column(Text)
    previous_secret_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    store_ids: Mapped[list[str] | None] = mapped_column(JSON)
    tiers: Mapped[list[str] | None] = mapped_column(JSON)
    alert_types: Mapped[list[str] | None] = mapped_column(JSON)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    disabled_reason: Mapped[str | None] = mapped_column(String(200))
    failing_since: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The last configuration refusal of a group robot (bad signature, missing
    # keyword, address not allowed, unknown token), in the robot's own words;
    # cleared by a delivered message or an edit of the URL or secret.
    refusal_code: Mapped[str | None] = mapped_column(String(32))
    refusal_message: Mapped[str | None] = mapped_column(String(300))
    refused_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The daily report (日报): "HH:MM" in report_timezone; the last day one was sent.
    daily_report_at: Mapped[str | None] = mapped_column(String(5))
    report_timezone: Mapped[str] = mapped_column(String(64), default="Asia/Shanghai")
    last_report_on: Mapped[date | None] = mapped_column(Date)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Delivery(Base):
    """One alert (or test ping) for one subscription: the outbox row.

    ``msg_id`` is the stable ``webhook-id`` across retries, so receivers can
    deduplicate an at-least-once delivery.
    """

    __tablename__ = "deliveries"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    webhook_id: Mapped[int] = mapped_column(
        Integer, ForeignKey("webhooks.id", ondelete="CASCADE"), index=True
    )
    alert_id: Mapped[str | None] = mapped_column(String(40))
    event_type: Mapped[str] = mapped_column(String(32))
    msg_id: Mapped[str] = mapped_column(String(64), unique=True)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16))  # pending delivering delivered failed cancelled
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime)
    lease_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_status_code: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    __table_args__ = (Index(None, "status", "next_attempt_at"),)


class DeliveryAttempt(Base):
    __tablename__ = "delivery_attempts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    delivery_id: Mapped[int] = mapped_column(
        Integer, ForeignKey("deliveries.id", ondelete="CASCADE"), index=True
    )
    webhook_id: Mapped[int] = mapped_column(Integer)
    attempted_at: Mapped[datetime] = mapped_column(UTCDateTime)
    status_code: Mapped[int | None] = mapped_column(Integer)
    duration_ms: Mapped[int] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(Text)
    response_excerpt: Mapped[str | None] = mapped_column(Text)
    digest_size: Mapped[int] = mapped_column(Integer, default=1)

    __table_args__ = (Index(None, "webhook_id", "attempted_at"),)
