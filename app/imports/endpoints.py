"""/v1/imports: upload an export or an event file; follow its progress and refused rows."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from fastapi import APIRouter, File, Form, Request, UploadFile
from fastapi import Path as PathParam

from app.api.deps import ClockDep, DatabaseDep, ReadSessionDep, SettingsDep
from app.api.pagination import CursorQuery, LimitQuery, Page, keyset, next_page
from app.api.params import MAX_INT, STORE_ID, StoreIdQuery
from app.api.problems import answers
from app.auth.deps import IngestKey, IngestOrReadKey
from app.errors import NotFound, field_error
from app.imports import repository
from app.imports.formats import FormatError, ReasonMapError, load_reason_map
from app.imports.models import Import, ImportRowError
from app.imports.reading import ReadError
from app.imports.schemas import IMPORT_EXAMPLE, ROW_ERROR_EXAMPLE, ImportOut, RowErrorOut
from app.imports.service import ImportRequest, ImportRunner, prepare, start, status_of
from app.imports.uploads import save_upload, upload_suffix

router = APIRouter(prefix="/v1/imports", tags=["imports"])

ImportIdPath = Annotated[
    int, PathParam(ge=1, le=MAX_INT, description="The import's id", examples=[3])
]
FormatField = Literal["events-jsonl", "events-csv", "pdd-orders", "pdd-aftersales"]
ERRORS_SHOWN = 100


def _filename(name: str | None) -> str:
    """The upload's name as kept (imports.filename is String(300), text without NUL)."""
    # A multipart filename may carry anything, lone surrogates included (undecodable
    # bytes): neither they nor NUL can be stored as text.
    text = (name or "").encode("utf-8", "replace").decode("utf-8").replace("\x00", "")
    base = Path(text).name.strip() or "upload"
    if len(base) <= 300:
        return base
    suffix = Path(base).suffix[:20]
    return base[: 300 - len(suffix)] + suffix


@router.post(
    "",
    status_code=202,
    summary="Import a file: a merchant-backend export or an event file",
    description=(
        "Multipart upload: `file` (the order export 订单查询 → 导出 CSV, the after-sales export "
        "售后列表 → 导出 XLSX/CSV, or events as JSONL/CSV), `store_id` (required for the PDD "
        "exports, whose rows carry no store), optionally `format` (default: detected from the "
        "header), `dry_run` and `reason_map` (a CSV of `label,reason`). A file that is no "
        "known format is refused at once (422, naming the columns it lacks). Otherwise the "
        "import starts in the background: follow it with `GET /v1/imports/{id}`. Importing "
        "the same file again accepts nothing new. Needs the `ingest` scope."
    ),
    response_model=ImportOut,
    operation_id="create_import",
    responses=answers(
        {
            **IMPORT_EXAMPLE,
            "status": "queued",
            "started_at": None,
            "finished_at": None,
            "progress": {"done": 0, "total": 482113, "unit": "bytes", "fraction": 0.0},
            "rows_read": 0,
            "rows_committed": 0,
            "events": {"accepted": 0, "duplicate": 0, "rejected": 0, "rejected_by_code": {}},
            "skipped_by_cause": {},
            "unmapped_labels": [],
            "row_errors": 0,
            "errors": [],
        },
        401,
        403,
        413,
        422,
        status=202,
    ),
)
async def create_import(
    request: Request,
    _key: IngestKey,
    db: DatabaseDep,
    clock: ClockDep,
    settings: SettingsDep,
    file: Annotated[UploadFile, File(description="The file to import")],
    store_id: Annotated[
        str | None,
        Form(max_length=64, pattern=STORE_ID, description="The store"),
    ] = None,
    format: Annotated[FormatField | None, Form(description="Default: detected")] = None,
    dry_run: Annotated[bool, Form(description="Validate and count; store no event")] = False,
    reason_map: Annotated[
        UploadFile | None, File(description="CSV label,reason: 退款原因 labels → reason codes")
    ] = None,
) -> ImportOut:
    path, digest = await save_upload(file, settings, upload_suffix(file.filename))
    try:
        aliases: dict[str, str] = {}
        if reason_map is not None:
            map_path, _ = await save_upload(reason_map, settings, ".csv")
            try:
                aliases = load_reason_map(map_path)
            except (ReasonMapError, ReadError) as exc:
                raise field_error("body.reason_map", "invalid_reason_map", str(exc)) from None
            finally:
                map_path.unlink(missing_ok=True)
        job = ImportRequest(
            path=path,
            filename=_filename(file.filename),
            store_id=store_id,
            format=format,
            dry_run=dry_run,
            reason_map=aliases,
            source="http",
        )
        try:
            _ctx, reader = await prepare(db, settings, job)
        except FormatError as exc:
            detail = exc.message
            if exc.missing_columns:
                detail += f" (missing: {', '.join(exc.missing_columns)})"
            raise field_error("body.file", exc.code, detail) from None
        except ReadError as exc:
            raise field_error("body.file", exc.code, exc.message) from None
        record, skip_to = await start(db, job, reader, clock, digest)
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    assert record is not None
    runner: ImportRunner = request.app.state.imports
    runner.launch(job, reader, record, skip_to)
    return ImportOut.of(record, record.status, [])


@router.get(
    "",
    summary="Imports, newest first",
    description=(
        "Every import (from the CLI or over HTTP), newest first, with its status and counts. "
        "Filter by `store_id`. Needs the `ingest` or `read` scope."
    ),
    response_model=Page[ImportOut],
    operation_id="list_imports",
    responses=answers({"items": [IMPORT_EXAMPLE], "next_cursor": None}, 401, 403, 422),
)
async def list_imports(
    _key: IngestOrReadKey,
    session: ReadSessionDep,
    clock: ClockDep,
    store_id: StoreIdQuery = None,
    limit: LimitQuery = 50,
    cursor: CursorQuery = None,
) -> Page[ImportOut]:
    query = keyset(repository.imports_query(store_id), Import.id, cursor, limit, descending=True)
    rows, next_cursor = next_page(list(await session.scalars(query)), limit, lambda i: i.id)
    now = clock.now()
    return Page(
        items=[ImportOut.of(r, status_of(r, now), []) for r in rows], next_cursor=next_cursor
    )


@router.get(
    "/{import_id}",
    summary="An import: status, progress, counts, refused rows, unknown labels",
    description=(
        "Where an import stands: `status`, `progress`, events accepted/duplicate/rejected, "
        "rows skipped by cause, 退款原因 labels no table knew, and the first 100 refused "
        "rows (all of them: `GET …/errors`). Needs the `ingest` or `read` scope."
    ),
    response_model=ImportOut,
    operation_id="get_import",
    responses=answers(IMPORT_EXAMPLE, 401, 403, 404, 422),
)
async def get_import(
    import_id: ImportIdPath, _key: IngestOrReadKey, session: ReadSessionDep, clock: ClockDep
) -> ImportOut:
    record = await repository.get_import(session, import_id)
    if record is None:
        raise NotFound(f"no import {import_id}", code="import_not_found")
    errors = list(
        await session.scalars(
            repository.errors_query(import_id).order_by(ImportRowError.id).limit(ERRORS_SHOWN)
        )
    )
    return ImportOut.of(record, status_of(record, clock.now()), errors)


@router.get(
    "/{import_id}/errors",
    summary="An import's refused rows, in file order",
    description=(
        "Each refused row: its number as a spreadsheet shows it, the column (as the file's "
        "header writes it), a code and a message. Needs the `ingest` or `read` scope."
    ),
    response_model=Page[RowErrorOut],
    operation_id="list_import_errors",
    responses=answers({"items": [ROW_ERROR_EXAMPLE], "next_cursor": None}, 401, 403, 404, 422),
)
async def list_import_errors(
    import_id: ImportIdPath,
    _key: IngestOrReadKey,
    session: ReadSessionDep,
    limit: LimitQuery = 100,
    cursor: CursorQuery = None,
) -> Page[RowErrorOut]:
    if await repository.get_import(session, import_id) is None:
        raise NotFound(f"no import {import_id}", code="import_not_found")
    query = keyset(repository.errors_query(import_id), ImportRowError.id, cursor, limit)
    rows, next_cursor = next_page(list(await session.scalars(query)), limit, lambda e: e.id)
    return Page(items=[RowErrorOut.model_validate(e) for e in rows], next_cursor=next_cursor)
