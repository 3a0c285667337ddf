"""Import rows: create, find an unfinished one to resume, checkpoint, finish, page."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.imports.formats import RowError
from app.imports.models import Import, ImportRowError
from app.imports.reading import Progress

if TYPE_CHECKING:
    from app.imports.service import ImportSummary


async def create(
    session: AsyncSession,
    *,
    store_id: str | None,
    format: str,
    filename: str,
    file_bytes: int,
    file_sha256: str,
    source: str,
    dry_run: bool,
    now: datetime,
    status: str = "running",
) -> Import:
    record = Import(
        store_id=store_id,
        format=format,
        filename=filename[:300],
        file_bytes=file_bytes,
        file_sha256=file_sha256,
        source=source,
        dry_run=dry_run,
        status=status,
        created_at=now,
        started_at=now if status == "running" else None,
        heartbeat_at=now,
        progress_done=0,
        rows_committed=0,
        rows_read=0,
        events_accepted=0,
        events_duplicate=0,
        events_rejected=0,
        rejected_by_code={},
        skipped_by_cause={},
        unmapped_labels={},
        row_errors=0,
    )
    session.add(record)
    await session.flush()
    return record


async def unfinished(
    session: AsyncSession, store_id: str | None, file_sha256: str, *, stale_before: datetime
) -> Import | None:
    """The latest import of this file into this store that stopped before its end."""
    return await session.scalar(
        select(Import)
        .where(
            Import.store_id.is_(None) if store_id is None else Import.store_id == store_id,
            Import.file_sha256 == file_sha256,
            Import.dry_run.is_(False),
            or_(
                Import.status.in_(("failed", "interrupted")),
                (Import.status == "running") & (Import.heartbeat_at < stale_before),
            ),
        )
        .order_by(Import.id.desc())
        .limit(1)
        .with_for_update()
    )


def restore_counts(summary: ImportSummary, record: Import) -> None:
    """Start a resumed import's summary from what its earlier run committed."""
    summary.rows_read = record.rows_read
    summary.rows_resumed = record.rows_read
    summary.rows_committed = record.rows_committed
    summary.events_accepted = record.events_accepted
    summary.events_duplicate = record.events_duplicate
    summary.events_rejected = record.events_rejected
    summary.rejected_by_code = Counter(record.rejected_by_code)
    summary.skipped_by_cause = Counter(record.skipped_by_cause)
    summary.unmapped_labels = Counter(record.unmapped_labels)
    summary.row_errors = record.row_errors


def _count_values(summary: ImportSummary) -> dict[str, Any]:
    return {
        "rows_read": summary.rows_read,
        "rows_committed": summary.rows_committed,
        "events_accepted": summary.events_accepted,
        "events_duplicate": summary.events_duplicate,
        "events_rejected": summary.events_rejected,
        "rejected_by_code": dict(summary.rejected_by_code),
        "skipped_by_cause": dict(summary.skipped_by_cause),
        "unmapped_labels": dict(summary.unmapped_labels),
        "row_errors": summary.row_errors,
    }


async def checkpoint(
    session: AsyncSession,
    record: Import,
    summary: ImportSummary,
    progress: Progress,
    now: datetime,
) -> None:
    """The counts and the last committed row, in the transaction of the events they count."""
    await session.execute(
        update(Import)
        .where(Import.id == record.id)
        .values(
            heartbeat_at=now,
            progress_done=progress.done,
            progress_total=progress.total,
            progress_unit=progress.unit,
            **_count_values(summary),
        )
    )


async def begin_parts(
    session: AsyncSession, import_id: int, parts: int, stores: dict[str, int] | None = None
) -> None:
    """Make a new import one of ``parts`` parts, none of which has committed a row yet,
    with the stores dealt to them (``stores``: store id → part)."""
    await session.execute(
        update(Import)
        .where(Import.id == import_id)
        .values(part_rows=[[0, 0]] * parts, part_stores=stores or {})
    )


async def checkpoint_part(
    session: AsyncSession,
    import_id: int,
    part: int,
    added: ImportSummary,
    last_row: int,
    progress: Progress,
    now: datetime,
) -> None:
    """A part's counts added to the import's, and its last committed row, under the row's lock.

    Parts commit on their own; each adds what its transaction counted
    (``added``) to the totals. The import's ``rows_committed`` is the least of
    its parts' (what every part has got past); its progress their average (each
    part reads the whole file).
    """
    record = await session.scalar(
        select(Import)
        .where(Import.id == import_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    if record is None or not record.part_rows:
        raise LookupError(f"import {import_id} is not an import in parts")
    part_rows = [list(p) for p in record.part_rows]
    part_rows[part] = [last_row, progress.done]
    await session.execute(
        update(Import)
        .where(Import.id == import_id)
        .values(
            heartbeat_at=now,
            part_rows=part_rows,
            rows_committed=min(p[0] for p in part_rows),
            progress_done=sum(p[1] for p in part_rows) // len(part_rows),
            progress_total=progress.total,
            progress_unit=progress.unit,
            rows_read=record.rows_read + added.rows_read,
            events_accepted=record.events_accepted + added.events_accepted,
            events_duplicate=record.events_duplicate + added.events_duplicate,
            events_rejected=record.events_rejected + added.events_rejected,
            row_errors=record.row_errors + added.row_errors,
            rejected_by_code=dict(Counter(record.rejected_by_code) + added.rejected_by_code),
            skipped_by_cause=dict(Counter(record.skipped_by_cause) + added.skipped_by_cause),
            unmapped_labels=dict(Counter(record.unmapped_labels) + added.unmapped_labels),
        )
    )


async def finish(
    session: AsyncSession,
    import_id: int,
    summary: ImportSummary,
    status: str,
    failure: str | None,
    now: datetime,
) -> None:
    values: dict[str, Any] = {"status": status, "failure": failure, "heartbeat_at": now}
    if status != "interrupted":
        values["finished_at"] = now
    if summary.progress is not None:
        values.update(
            progress_done=summary.progress.done,
            progress_total=summary.progress.total,
            progress_unit=summary.progress.unit,
        )
    if status == "succeeded" or summary.import_id is None:
        values.update(_count_values(summary))
    await session.execute(update(Import).where(Import.id == import_id).values(**values))


async def keep_errors(session: AsyncSession, import_id: int, errors: Sequence[RowError]) -> None:
    if errors:
        await session.execute(
            insert(ImportRowError),
            [
                {
                    "import_id": import_id,
                    "row": e.row,
                    "column": (e.column or None) and e.column[:100],
                    "code": e.code[:64],
                    "message": e.message,
                }
                for e in errors
            ],
        )


async def get_import(session: AsyncSession, import_id: int) -> Import | None:
    return await session.get(Import, import_id)


def imports_query(store_id: str | None) -> Any:
    """Imports (newest first by keyset on ``Import.id``), of one store if given."""
    query = select(Import)
    if store_id is not None:
        query = query.where(Import.store_id == store_id)
    return query


def errors_query(import_id: int) -> Any:
    """An import's kept row errors, for keyset paging on ``ImportRowError.id``."""
    return select(ImportRowError).where(ImportRowError.import_id == import_id)
