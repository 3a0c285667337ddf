"""An events file of many stores imported by several processes at once, one part each.

One interpreter takes at most one core: the import's Python steps (reading,
validation, the road's folds) run one after another, and PostgreSQL waits for
them. Stores are independent (each has its own lock, orders, figures and
alerts), so an events file of a store cluster splits cleanly by store: part
``k`` of ``n`` takes the rows of the stores whose id hashes to ``k``
(:class:`app.imports.service.Part`), in the file's order, down the same road
in its own transactions. The command's own process runs part 0; each other
part is a child process (``python -m app.imports.parts SPEC``) with the same
environment and database.

Every part's transaction adds its counts to the one import row and records
its last committed row there (``Import.part_rows``): the import stays one
import (``GET /v1/imports/{id}`` shows its totals), and a rerun of a cut-short
import resumes each part where it stopped. The parent finishes the import
once every part has ended; refused rows of all parts reach ``--errors`` in
the file's order.

Only the CLI splits, only on PostgreSQL (SQLite takes one writer at a time),
and only event files without ``--store`` (a merchant-backend export is one
store's). An upload to the API runs in one part: the server's process shares
its core with the requests it serves.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import json
import logging
import os
import re
import shutil
import sys
import tempfile
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from app.clock import Clock, SystemClock
from app.config import Settings, get_settings
from app.db.engine import Database, create_engine
from app.imports import repository
from app.imports.formats import ImportFormat, ImportReader, RowError
from app.imports.models import Import
from app.imports.reading import Progress
from app.imports.service import (
    TRANSACTION_EVENTS,
    ImportRequest,
    ImportSummary,
    Part,
    ProgressSink,
    prepare,
    run_import,
)

log = logging.getLogger("refundwatch.imports")

SPLITTABLE_FORMATS: frozenset[ImportFormat] = frozenset({"events-jsonl", "events-csv"})
PARTS_MIN_BYTES = 16 << 20
"""Files smaller than this (about 80,000 events) import in one part: a second
process costs about a second to start, which a small file does not win back."""
MAX_PARTS = 8
PROGRESS_EVERY_SECONDS = 1.0


PART_TRANSACTION_EVENTS = TRANSACTION_EVENTS
"""Events per transaction of each part: the one-part size, whatever the parts.

Each process holds its own transaction, so memory grows with the parts: a
200,000-event file in two parts of 50,000 peaked near 370 MiB for both processes
together (each under 200 MiB), against about 290 MiB for two of 25,000, and was
8% faster (median 7.1 against 7.7 s, alternated on one machine): every
transaction pays one evaluation of the scopes it touched, one rewrite of the
orders and buckets it shares with the next, a commit, and on a first import an
ANALYZE."""


class PartFailed(RuntimeError):
    """A part of the import stopped with an error (what it committed stays)."""


def parts_for(
    settings: Settings,
    request: ImportRequest,
    reader: ImportReader,
    record: Import | None,
    jobs: int | None,
) -> int:
    """How many parts this import runs in.

    A resumed import keeps the parts it began with (each part's rows are its
    own). Otherwise ``jobs`` if given, else one per core (at most 2 on this
    kind of machine's default) for a large events file of many stores on
    PostgreSQL; one part for anything else.
    """
    if record is not None and record.part_rows:
        return len(record.part_rows)
    if record is not None and record.rows_committed:
        return 1  # a one-part import cut short resumes as one part
    if reader.format not in SPLITTABLE_FORMATS:
        return 1
    return _parts_wanted(
        settings,
        dry_run=request.dry_run,
        store_id=request.store_id,
        jobs=jobs,
        size=request.path.stat().st_size,
    )


def _parts_wanted(
    settings: Settings, *, dry_run: bool, store_id: str | None, jobs: int | None, size: int
) -> int:
    """The parts for a new import of a splittable file (the rule :func:`parts_for` and
    :func:`standby_for` share)."""
    if dry_run or settings.is_sqlite or store_id is not None:
        return 1
    if jobs is not None:
        return max(1, min(jobs, MAX_PARTS))
    if size < PARTS_MIN_BYTES:
        return 1
    return max(1, min(os.cpu_count() or 1, 2))


_STORE_ID_BYTES = re.compile(rb'"store_id"\s*:\s*"([A-Za-z0-9._:-]{1,64})"')
SCAN_BLOCK = 1 << 22
MAX_DEALT_STORES = 10_000
"""Stores dealt by size (the largest); the deal is stored with the import, so a file
naming a million stores does not put a million keys into one row. The rest are
dealt as the file first names them."""


def deal_stores(path: Path, format: ImportFormat, parts: int) -> dict[str, int]:
    """Each store's part, the parts balanced by the stores' event counts in the file.

    A store cluster's stores differ in size (in the bench's 50-store file, from
    1,800 to 19,600 events); dealt blindly, one part got 55% of the events and
    the import waited for it. For an events-jsonl file, one pass over its bytes
    (a regular expression for ``"store_id": "…"``, about 0.15 s for 37 MB)
    counts each store's events; the largest stores go first, each to the
    lightest part so far. A store the pass misses (an escaped id, a match cut at
    a block's edge) is dealt as the file first names it (:class:`Part`). Other
    formats are not scanned. The result is stored with the import, so a rerun
    deals the stores alike.
    """
    if format != "events-jsonl" or parts < 2:
        return {}
    counts: Counter[bytes] = Counter()
    with path.open("rb") as handle:
        while block := handle.read(SCAN_BLOCK):
            counts.update(_STORE_ID_BYTES.findall(block))
    loads = [0] * parts
    dealt: dict[str, int] = {}
    largest = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:MAX_DEALT_STORES]
    for store, count in largest:
        lightest = min(range(parts), key=lambda k: (loads[k], k))
        dealt[store.decode("ascii")] = lightest
        loads[lightest] += count
    return dealt


@dataclass(frozen=True, slots=True)
class _Child:
    process: asyncio.subprocess.Process
    output: asyncio.Task[tuple[bytes, bytes]]
    part: int


async def run_in_parts(
    db: Database,
    settings: Settings,
    clock: Clock,
    request: ImportRequest,
    reader: ImportReader,
    record: Import,
    parts: int,
    *,
    on_error: Callable[[RowError], None] | None = None,
    on_progress: ProgressSink | None = None,
    standby: Standby | None = None,
) -> ImportSummary:
    """Import ``reader``'s file in ``parts`` parts: this process runs part 0, children the rest
    (those of ``standby`` first).

    Returns the import's totals (all parts). On failure or interruption the
    import is marked so, every part's committed work stays, and a rerun of the
    same file resumes each part; the exception propagates (:class:`PartFailed`
    for a child's failure).
    """
    if not record.part_rows:
        stores = await asyncio.to_thread(deal_stores, request.path, reader.format, parts)
        async with db.transaction() as session:
            await repository.begin_parts(session, record.id, parts, stores)
        record.part_rows = [[0, 0]] * parts
        record.part_stores = stores
    dealt = record.part_stores or {}
    skip_rows = [row for row, _done in record.part_rows]
    started = _totals(record)
    workdir = Path(tempfile.mkdtemp(prefix=f"refundwatch-import-{record.id}-"))
    children: list[_Child] = []
    poller: asyncio.Task[None] | None = None
    try:
        for k in range(1, parts):
            children.append(
                await _spawn(
                    settings,
                    request,
                    reader.format,
                    record.id,
                    Part(k, parts),
                    skip_rows[k],
                    workdir,
                    standby,
                )
            )
        if on_progress is not None:
            poller = asyncio.create_task(_show_progress(db, record.id, started, on_progress))
        with _error_file(workdir, 0) as own_errors:
            await run_import(
                db,
                settings,
                clock,
                request,
                reader,
                record,
                skip_to_row=skip_rows[0],
                on_error=own_errors,
                transaction_events=PART_TRANSACTION_EVENTS,
                part=Part(0, parts, dealt),
            )
        failures = [failure for child in children if (failure := await _ended(child))]
        if failures:
            raise PartFailed("; ".join(failures))
        if poller is not None:
            poller.cancel()
        if on_error is not None:
            for error in _merged_errors(workdir, parts):
                on_error(error)
        return await _end(db, clock, record.id, "succeeded", None, started)
    except BaseException as exc:
        for child in children:
            if child.process.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    child.process.terminate()
        for child in children:
            with contextlib.suppress(BaseException):
                await asyncio.shield(child.output)
        interrupted = isinstance(exc, asyncio.CancelledError | KeyboardInterrupt)
        status = "interrupted" if interrupted else "failed"
        with contextlib.suppress(Exception):
            await asyncio.shield(_end(db, clock, record.id, status, _failure_text(exc), started))
        raise
    finally:
        if poller is not None:
            poller.cancel()
        shutil.rmtree(workdir, ignore_errors=True)


def _failure_text(exc: BaseException) -> str:
    if isinstance(exc, asyncio.CancelledError | KeyboardInterrupt):
        return "interrupted before the end of the file; run the same import again to finish it"
    return f"{type(exc).__name__}: {exc}"[:1000]


def _totals(record: Import) -> ImportSummary:
    summary = ImportSummary(import_id=record.id, format=record.format)
    repository.restore_counts(summary, record)
    if record.progress_unit is not None:
        summary.progress = Progress(
            record.progress_done,
            record.progress_total,
            record.progress_unit,  # type: ignore[arg-type]
        )
    return summary


async def _end(
    db: Database,
    clock: Clock,
    import_id: int,
    status: str,
    failure: str | None,
    started: ImportSummary,
) -> ImportSummary:
    """Read the totals every part committed, and finish the import with them."""
    async with db.transaction() as session:
        record = await repository.get_import(session, import_id)
        if record is None:
            raise LookupError(f"import {import_id} is gone")
        await session.refresh(record)
        summary = _totals(record)
        summary.status = status
        summary.rows_resumed = started.rows_read
        summary.resumed_from_row = started.rows_committed
        await repository.finish(session, import_id, summary, status, failure, clock.now())
    return summary


async def _show_progress(
    db: Database, import_id: int, started: ImportSummary, on_progress: ProgressSink
) -> None:
    """The import's totals as the parts commit them, every second (for the progress view)."""
    while True:
        await asyncio.sleep(PROGRESS_EVERY_SECONDS)
        with contextlib.suppress(Exception):
            async with db.read() as session:
                record = await repository.get_import(session, import_id)
                if record is None:
                    return
                await session.refresh(record)
                summary = _totals(record)
            summary.rows_resumed = started.rows_read
            on_progress(summary)


async def _spawn(
    settings: Settings,
    request: ImportRequest,
    format: ImportFormat,
    import_id: int,
    part: Part,
    skip_to_row: int,
    workdir: Path,
    standby: Standby | None = None,
) -> _Child:
    spec = {
        "import_id": import_id,
        "part": part.index,
        "parts": part.count,
        "skip_to_row": skip_to_row,
        "path": str(request.path),
        "filename": request.filename,
        "format": format,
        "store_id": request.store_id,
        "reason_map": dict(request.reason_map),
        "errors": str(_errors_path(workdir, part.index)),
    }
    spec_path = workdir / f"part-{part.index}.json"
    spec_path.write_text(json.dumps(spec), encoding="utf-8")
    process = standby.take() if standby is not None else None
    if process is not None and process.stdin is not None:
        process.stdin.write(f"{spec_path}\n".encode())
        with contextlib.suppress(ConnectionError):  # it died meanwhile: _ended says so
            await process.stdin.drain()
        process.stdin.close()
    else:
        process = await _start_child(settings, [str(spec_path)], stdin=asyncio.subprocess.DEVNULL)
    return _Child(process, asyncio.create_task(process.communicate()), part.index)


async def _start_child(
    settings: Settings, argv: list[str], *, stdin: int
) -> asyncio.subprocess.Process:
    env = {
        **os.environ,
        "REFUNDWATCH_DATABASE_URL": settings.database_url,
        "REFUNDWATCH_DEFAULT_TIMEZONE": settings.default_timezone,
        "REFUNDWATCH_MAX_FUTURE_SKEW_SECONDS": str(settings.max_future_skew_seconds),
    }
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "app.imports.parts",
        *argv,
        env=env,
        stdin=stdin,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )


STANDBY = "--standby"


class Standby:
    """Child processes started ahead of their part, each waiting for its spec on stdin.

    A child's interpreter takes about 0.8 s to start and load the road (most of it
    imports), and the command's own process needs about as long to migrate, open the
    file, record the import and deal the stores before it knows the parts. Started at
    the command's start, when the files look splittable (:func:`standby_for`), the
    children load meanwhile, on the core the command leaves idle, and begin reading the
    moment their spec arrives. One that no part needs is told so (stdin closed) and
    exits. Measured on the bench's 200,000-event file: see docs/performance.md.
    """

    def __init__(self) -> None:
        self._waiting: list[asyncio.subprocess.Process] = []

    @classmethod
    async def start(cls, settings: Settings, count: int) -> Standby:
        standby = cls()
        for _ in range(count):
            standby._waiting.append(
                await _start_child(settings, [STANDBY], stdin=asyncio.subprocess.PIPE)
            )
        return standby

    def __len__(self) -> int:
        return len(self._waiting)

    def take(self) -> asyncio.subprocess.Process | None:
        """A waiting child still alive, or None."""
        while self._waiting:
            process = self._waiting.pop(0)
            if process.returncode is None:
                return process
        return None

    async def close(self) -> None:
        """Tell the children no part came for them, and wait for them to exit."""
        waiting, self._waiting = self._waiting, []
        for process in waiting:
            if process.stdin is not None:
                process.stdin.close()
        for process in waiting:
            try:
                await asyncio.wait_for(process.communicate(), timeout=10)
            except TimeoutError:  # still loading after 10 s: not worth waiting for
                with contextlib.suppress(ProcessLookupError):
                    process.kill()
                await process.wait()


def standby_for(
    settings: Settings,
    paths: Sequence[Path],
    *,
    store_id: str | None,
    dry_run: bool,
    jobs: int | None,
) -> int:
    """How many children to start ahead (:class:`Standby`): the extra parts that
    :func:`parts_for` will likely choose for the first of these files, judged before
    it is opened (an events-jsonl file by its first byte; an events-csv file is left
    to children started when its parts are known)."""
    if not paths:
        return 0
    try:
        size = paths[0].stat().st_size
        with paths[0].open("rb") as handle:
            head = handle.read(64).lstrip(b"\xef\xbb\xbf \t\r\n")
    except OSError:
        return 0
    if not head.startswith(b"{"):
        return 0
    wanted = _parts_wanted(settings, dry_run=dry_run, store_id=store_id, jobs=jobs, size=size)
    return wanted - 1


async def _ended(child: _Child) -> str | None:
    """Wait for a child part; what went wrong with it, or None."""
    _out, err = await child.output
    if child.process.returncode == 0:
        return None
    lines = [line for line in err.decode("utf-8", "replace").splitlines() if line.strip()]
    tail = lines[-1] if lines else "no message"
    return f"part {child.part} exited {child.process.returncode}: {tail}"[:500]


def _errors_path(workdir: Path, part: int) -> Path:
    return workdir / f"part-{part}.errors"


@contextlib.contextmanager
def _error_file(workdir: Path, part: int) -> Iterator[Callable[[RowError], None]]:
    """A part's refused rows, one JSON array per line, in the part's (the file's) order."""
    with _errors_path(workdir, part).open("w", encoding="utf-8") as handle:
        yield _ErrorLines(handle).write


class _ErrorLines:
    def __init__(self, handle: IO[str]) -> None:
        self._handle = handle

    def write(self, error: RowError) -> None:
        self._handle.write(json.dumps([error.row, error.column, error.code, error.message]) + "\n")


def _merged_errors(workdir: Path, parts: int) -> Iterator[RowError]:
    """Every part's refused rows, merged into the file's row order."""

    def read(part: int) -> Iterator[RowError]:
        path = _errors_path(workdir, part)
        if not path.exists():
            return
        with path.open(encoding="utf-8") as handle:
            for line in handle:
                row, column, code, message = json.loads(line)
                yield RowError(row=row, column=column, code=code, message=message)

    yield from heapq.merge(*(read(k) for k in range(parts)), key=lambda e: e.row)


async def _run_child(settings: Settings, spec: dict[str, Any]) -> None:
    db = Database(create_engine(settings))
    clock = SystemClock()
    try:
        async with db.read() as session:
            record = await repository.get_import(session, spec["import_id"])
        if record is None:
            raise LookupError(f"import {spec['import_id']} not found")
        request = ImportRequest(
            path=Path(spec["path"]),
            filename=spec["filename"],
            store_id=spec["store_id"],
            format=spec["format"],
            reason_map=spec["reason_map"],
            source="cli",
        )
        _ctx, reader = await prepare(db, settings, request)
        with _error_file(Path(spec["errors"]).parent, spec["part"]) as errors:
            await run_import(
                db,
                settings,
                clock,
                request,
                reader,
                record,
                skip_to_row=spec["skip_to_row"],
                on_error=errors,
                transaction_events=PART_TRANSACTION_EVENTS,
                part=Part(spec["part"], spec["parts"], record.part_stores),
            )
    finally:
        await db.dispose()


def main(argv: list[str]) -> int:
    """A child part: ``python -m app.imports.parts SPEC.json`` (started by :func:`run_in_parts`)."""
    from app.ops.logs import configure_logging

    settings = get_settings()
    configure_logging(settings)
    if argv == [STANDBY]:  # loaded (and the driver too); now wait for a part (see Standby)
        create_engine(settings)  # no connection yet: it only loads the dialect and driver
        line = sys.stdin.readline().strip()
        if not line:
            return 0  # no part came
        argv = [line]
    spec = json.loads(Path(argv[0]).read_text(encoding="utf-8"))
    try:
        asyncio.run(_run_child(settings, spec))
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # the parent reports the last line and marks the import failed
        log.exception("import part %s failed", spec.get("part"))
        print(f"{type(exc).__name__}: {exc}"[:1000], file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
