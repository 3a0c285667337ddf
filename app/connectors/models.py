"""A store's connection to a marketplace's open platform, and where its sync stands."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.db.base import Base, UTCDateTime


class Connection(Base):
    """One store's authorised app: credentials (encrypted), the sync's position and health."""

    __tablename__ = "connections"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    platform: Mapped[str] = mapped_column(String(16))
    store_id: Mapped[str] = mapped_column(String(64))
    client_id: Mapped[str] = mapped_column(String(100))
    # Fernet tokens (app.connectors.secrets): never returned, never logged.
    client_secret_encrypted: Mapped[str] = mapped_column(Text)
    access_token_encrypted: Mapped[str] = mapped_column(Text)
    # The store's refresh_token, if given: renews an expired access_token (10019).
    refresh_token_encrypted: Mapped[str | None] = mapped_column(Text)
    token_refreshed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The store's mall id (店铺ID) at the platform: its pushed messages wake this sync.
    mall_id: Mapped[str | None] = mapped_column(String(32))
    # When a pushed message last asked for a sync (app.connectors.pdd.messages).
    poked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # backfilling → live; failing (the platform refused the credentials); disabled (paused).
    status: Mapped[str] = mapped_column(String(16))
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    sync_from: Mapped[datetime] = mapped_column(UTCDateTime)
    # Every update up to this instant is in (moves only after the window's commit).
    synced_through: Mapped[datetime] = mapped_column(UTCDateTime)
    next_sync_at: Mapped[datetime] = mapped_column(UTCDateTime)
    lease_owner: Mapped[str | None] = mapped_column(String(64))
    lease_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    events_accepted: Mapped[int] = mapped_column(Integer, default=0)
    events_duplicate: Mapped[int] = mapped_column(Integer, default=0)
    events_rejected: Mapped[int] = mapped_column(Integer, default=0)
    calls: Mapped[int] = mapped_column(Integer, default=0)
    windows: Mapped[int] = mapped_column(Integer, default=0)
    consecutive_failures: Mapped[int] = mapped_column(Integer, default=0)
    last_sync_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_error_code: Mapped[str | None] = mapped_column(String(64))
    last_error_message: Mapped[str | None] = mapped_column(Text)
    last_error_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    failing_since: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (
        UniqueConstraint("platform", "store_id"),
        Index(None, "status", "next_sync_at"),
    )
