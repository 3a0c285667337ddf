"""Import shapes: what ``GET /v1/imports/{id}`` says about an import."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from app.imports.models import Import, ImportRowError


class ImportProgress(BaseModel):
    done: int = Field(description="Bytes (text files) or rows (workbooks) read so far")
    total: int | None = Field(description="The file's size in the same unit, if known")
    unit: str | None = Field(description="bytes or rows")
    fraction: float | None = Field(description="done / total, between 0 and 1")


class ImportEvents(BaseModel):
    accepted: int = Field(description="Stored now (committed)")
    duplicate: int = Field(description="Already stored with the same content: nothing new")
    rejected: int
    rejected_by_code: dict[str, int] = Field(description="e.g. event_id_conflict, invalid_field")


class LabelCount(BaseModel):
    label: str = Field(description="A 退款原因 label no table or alias knew (counted as other)")
    count: int


class RowErrorOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    row: int = Field(description="The row number as a spreadsheet shows it")
    column: str | None = Field(description="The column at fault, as the file's header writes it")
    code: str = Field(
        description="e.g. invalid_time, missing_value, invalid_amount, event_id_conflict"
    )
    message: str


class ImportOut(BaseModel):
    id: int
    store_id: str | None
    format: str | None = Field(description="events-jsonl, events-csv, pdd-orders, pdd-aftersales")
    filename: str
    file_bytes: int
    source: str = Field(description="cli or http")
    dry_run: bool = Field(description="Validated and counted, nothing stored")
    status: str = Field(
        description="queued, running, succeeded, failed, or interrupted (its process stopped; "
        "import the same file again to finish it)"
    )
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    progress: ImportProgress
    rows_read: int
    rows_committed: int = Field(
        description="The last row whose events are committed (of an import in parts: the "
        "last row every part has committed)"
    )
    parts: int = Field(
        description="Processes the import ran in, each taking some stores' rows (1 unless "
        "`refundwatch import` split a large events file of many stores)"
    )
    events: ImportEvents
    skipped_by_cause: dict[str, int] = Field(
        description="Rows that are no events: blank, not_paid (待支付/已取消), not_a_refund (换货…)"
    )
    unmapped_labels: list[LabelCount]
    row_errors: int = Field(description="Refused rows, all counted (the first 10,000 are kept)")
    errors: list[RowErrorOut] = Field(
        description="The first refused rows; page through all with GET …/errors"
    )
    failure: str | None = Field(description="Why a failed import stopped")

    @classmethod
    def of(cls, record: Import, status: str, errors: list[ImportRowError]) -> ImportOut:
        total = record.progress_total
        return cls(
            id=record.id,
            store_id=record.store_id,
            format=record.format,
            filename=record.filename,
            file_bytes=record.file_bytes,
            source=record.source,
            dry_run=record.dry_run,
            status=status,
            created_at=record.created_at,
            started_at=record.started_at,
            finished_at=record.finished_at,
            progress=ImportProgress(
                done=record.progress_done,
                total=total,
                unit=record.progress_unit,
                fraction=min(1.0, record.progress_done / total) if total else None,
            ),
            rows_read=record.rows_read,
            rows_committed=record.rows_committed,
            parts=len(record.part_rows) if record.part_rows else 1,
            events=ImportEvents(
                accepted=record.events_accepted,
                duplicate=record.events_duplicate,
                rejected=record.events_rejected,
                rejected_by_code=dict(record.rejected_by_code or {}),
            ),
            skipped_by_cause=dict(record.skipped_by_cause or {}),
            unmapped_labels=[
                LabelCount(label=label, count=count)
                for label, count in sorted(
                    (record.unmapped_labels or {}).items(), key=lambda kv: (-kv[1], kv[0])
                )
            ],
            row_errors=record.row_errors,
            errors=[RowErrorOut.model_validate(e) for e in errors],
            failure=record.failure,
        )


ROW_ERROR_EXAMPLE: dict[str, object] = {
    "row": 88,
    "column": "申请时间",
    "code": "invalid_time",
    "message": "not a time: 2026/13/01",
}

IMPORT_EXAMPLE: dict[str, object] = {
    "id": 3,
    "store_id": "s1",
    "format": "pdd-aftersales",
    "filename": "售后列表.xlsx",
    "file_bytes": 482113,
    "source": "http",
    "dry_run": False,
    "status": "succeeded",
    "created_at": "2026-11-26T04:00:00Z",
    "started_at": "2026-11-26T04:00:00Z",
    "finished_at": "2026-11-26T04:00:07Z",
    "progress": {"done": 5120, "total": 5120, "unit": "rows", "fraction": 1.0},
    "rows_read": 5120,
    "rows_committed": 5120,
    "parts": 1,
    "events": {
        "accepted": 8790,
        "duplicate": 0,
        "rejected": 2,
        "rejected_by_code": {"invalid_field": 2},
    },
    "skipped_by_cause": {"not_a_refund": 14},
    "unmapped_labels": [{"label": "买家原因", "count": 3}],
    "row_errors": 2,
    "errors": [ROW_ERROR_EXAMPLE],
    "failure": None,
}
