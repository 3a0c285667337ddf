"""`refundwatch import FILE...`: the import job on a terminal (progress, summary, exit code)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from rich.console import Console

from app.cli import prepare_database
from app.clock import Clock, SystemClock
from app.config import Settings
from app.db.engine import Database, create_engine
from app.imports.formats import ImportFormat, ReasonMapError, load_reason_map
from app.imports.parts import Standby, parts_for, run_in_parts, standby_for
from app.imports.reading import ReadError
from app.imports.service import ImportRequest, file_digest, prepare, run_import, start
from app.imports.terminal import ProgressView, error_writer, summary_table

EXIT_REFUSED_ROWS = 1
EXIT_USAGE = 2


async def import_files(
    settings: Settings,
    files: list[Path],
    *,
    store_id: str | None,
    format: str | None,
    dry_run: bool,
    errors_path: Path | None,
    reason_map_path: Path | None,
    jobs: int | None = None,
    clock: Clock | None = None,
) -> int:
    """Import each file in turn; the exit code says whether anything was refused.

    ``clock``: the system's unless given (a test's frozen one: the tiers are judged
    on the day it says)."""
    console = Console(stderr=True)
    reason_map: dict[str, str] = {}
    if reason_map_path is not None:
        try:
            reason_map = load_reason_map(reason_map_path)
        except (ReasonMapError, ReadError, OSError) as exc:
            console.print(f"[red]--reason-map {reason_map_path}[/red]: {exc}", highlight=False)
            return EXIT_USAGE
    for path in files:
        if not path.is_file():
            console.print(f"[red]{path}[/red]: no such file", highlight=False)
            return EXIT_USAGE
    # children for the parts start loading now, while this process gets ready
    standby = await Standby.start(
        settings, standby_for(settings, files, store_id=store_id, dry_run=dry_run, jobs=jobs)
    )
    try:
        return await _import_files(
            settings,
            files,
            console,
            reason_map,
            standby,
            store_id=store_id,
            format=format,
            dry_run=dry_run,
            errors_path=errors_path,
            jobs=jobs,
            clock=clock or SystemClock(),
        )
    finally:
        await standby.close()


async def _import_files(
    settings: Settings,
    files: list[Path],
    console: Console,
    reason_map: dict[str, str],
    standby: Standby,
    *,
    store_id: str | None,
    format: str | None,
    dry_run: bool,
    errors_path: Path | None,
    jobs: int | None,
    clock: Clock,
) -> int:
    await asyncio.to_thread(prepare_database, settings)
    db = Database(create_engine(settings))
    worst = 0
    try:
        with error_writer(errors_path) as errors_file:
            for path in files:
                request = ImportRequest(
                    path=path,
                    filename=path.name,
                    store_id=store_id,
                    format=format,  # type: ignore[arg-type]
                    dry_run=dry_run,
                    reason_map=reason_map,
                    source="cli",
                )
                try:
                    _ctx, reader = await prepare(db, settings, request)
                except ReadError as exc:
                    console.print(f"[red]{path}[/red]: {exc.message}", highlight=False)
                    worst = max(worst, EXIT_USAGE)
                    continue
                format_name: ImportFormat = reader.format
                console.print(
                    f"{path}: {format_name}"
                    + (f", header on row {reader.header_row}" if reader.header_row else "")
                    + (f", {reader.encoding}" if reader.encoding else "")
                    + (" (dry run: nothing is stored)" if dry_run else ""),
                    highlight=False,
                )
                record, skip_to = await start(db, request, reader, clock, file_digest(path))
                if skip_to:
                    console.print(
                        f"resuming import {record.id if record else ''}: rows up to {skip_to} "
                        "were committed by an earlier run",
                        highlight=False,
                    )
                parts = parts_for(settings, request, reader, record, jobs)
                if parts > 1:
                    console.print(f"{parts} parts, one process each, by store", highlight=False)
                on_error = errors_file.write if errors_file else None
                with ProgressView(console, path.name) as view:
                    if parts > 1 and record is not None:
                        summary = await run_in_parts(
                            *(db, settings, clock, request, reader, record, parts),
                            on_error=on_error,
                            on_progress=view.update,
                            standby=standby,
                        )
                    else:
                        summary = await run_import(
                            *(db, settings, clock, request, reader, record),
                            skip_to_row=skip_to,
                            on_error=on_error,
                            on_progress=view.update,
                        )
                title = f"{path.name} ({format_name})" + (" — dry run" if dry_run else "")
                if summary.import_id is not None:
                    title += f" — import {summary.import_id}"
                console.print(summary_table(title, summary))
                if summary.unmapped_labels:
                    console.print(
                        "unknown 退款原因 labels were counted as `other`; map them with "
                        "--reason-map (label,reason) or the policy's reason_aliases",
                        highlight=False,
                    )
                if summary.rejected_rows:
                    worst = max(worst, EXIT_REFUSED_ROWS)
            if errors_file is not None and errors_path is not None:
                console.print(f"{errors_file.count} refused rows written to {errors_path}")
    finally:
        await db.dispose()
    return worst
