"""The console's own rows: sign-in sessions, and the operator's acknowledgements of alerts."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, ForeignKey, Integer, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from app.db.base import Base, UTCDateTime


class ConsoleSession(Base):
    """One browser signed in with an API key.

    Only a SHA-256 of the session token is kept (the cookie holds the token), so a copy of
    the table opens no session. ``key_hash`` is the SHA-256 of the API key that signed in, the
    same digest ``api_keys`` keeps: it lets each request re-check that key the way the API
    does, so a revoked key, or a bootstrap key that changed, ends its sessions.
    """

    __tablename__ = "console_sessions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    token_hash: Mapped[bytes] = mapped_column(LargeBinary(32), unique=True)
    # NULL for the bootstrap key from the environment (it has no row in api_keys).
    key_id: Mapped[int | None] = mapped_column(
        Integer, ForeignKey("api_keys.id", ondelete="CASCADE"), index=True
    )
    key_hash: Mapped[bytes] = mapped_column(LargeBinary(32))
    key_name: Mapped[str] = mapped_column(String(100))
    scopes: Mapped[list[str]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class AlertAcknowledgement(Base):
    """An operator has seen an alert and is on it (the alert itself stays as it was sent)."""

    __tablename__ = "console_alert_acks"

    alert_id: Mapped[str] = mapped_column(
        String(40), ForeignKey("alerts.alert_id", ondelete="CASCADE"), primary_key=True
    )
    acknowledged_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # The name of the key the operator signed in with, kept as text: keys are revoked, not
    # deleted, but the acknowledgement should read the same whatever happens to the key.
    acknowledged_by: Mapped[str] = mapped_column(String(100))
    key_id: Mapped[int | None] = mapped_column(Integer)
