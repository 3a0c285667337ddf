"""An import of history files: its progress, its counts, and the rows it refused."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.db.base import Base, UTCDateTime


class Import(Base):
    """One file imported (or being imported) down the ingest road."""

    __tablename__ = "imports"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    store_id: Mapped[str | None] = mapped_column(String(64))
    format: Mapped[str | None] = mapped_column(String(32))
    filename: Mapped[str] = mapped_column(String(300))
    file_bytes: Mapped[int] = mapped_column(BigInteger)
    file_sha256: Mapped[str] = mapped_column(String(64))
    source: Mapped[str] = mapped_column(String(16))  # cli | http
    dry_run: Mapped[bool] = mapped_column(Boolean, default=False)
    # queued → running → succeeded | failed; a running import whose heartbeat
    # stopped is shown as interrupted (its process died; a rerun finishes it).
    status: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    heartbeat_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    progress_done: Mapped[int] = mapped_column(BigInteger, default=0)
    progress_total: Mapped[int | None] = mapped_column(BigInteger)
    progress_unit: Mapped[str | None] = mapped_column(String(8))
    # The last row whose events are committed: a rerun of the same file skips to it.
    rows_committed: Mapped[int] = mapped_column(Integer, default=0)
    rows_read: Mapped[int] = mapped_column(Integer, default=0)
    events_accepted: Mapped[int] = mapped_column(Integer, default=0)
    events_duplicate: Mapped[int] = mapped_column(Integer, default=0)
    events_rejected: Mapped[int] = mapped_column(Integer, default=0)
    rejected_by_code: Mapped[dict[str, Any]] = mapped_column(JSON)
    skipped_by_cause: Mapped[dict[str, Any]] = mapped_column(JSON)
    unmapped_labels: Mapped[dict[str, Any]] = mapped_column(JSON)
    row_errors: Mapped[int] = mapped_column(Integer, default=0)
    # An import in parts (several processes, each owning some stores' rows):
    # per part, [last committed row, progress done]. None for one part.
    part_rows: Mapped[list[list[int]] | None] = mapped_column(JSON, nullable=True)
    # The stores dealt to each part before it began (store id → part), kept so that
    # a rerun deals them alike; stores not in it are dealt as the file first names them.
    part_stores: Mapped[dict[str, int] | None] = mapped_column(JSON, nullable=True)
    failure: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (Index(None, "store_id", "file_sha256"),)


class ImportRowError(Base):
    """One refused row (the first few thousand of an import are kept)."""

    __tablename__ = "import_errors"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    import_id: Mapped[int] = mapped_column(
        Integer, ForeignKey("imports.id", ondelete="CASCADE"), index=True
    )
    row: Mapped[int] = mapped_column(Integer)
    column: Mapped[str | None] = mapped_column(String(100))
    code: Mapped[str] = mapped_column(String(64))
    message: Mapped[str] = mapped_column(Text)
