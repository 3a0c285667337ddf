"""The import job: a file's rows down the ingest road, in large chunks, resumable.

A reader thread streams the file (``app.imports.formats``), maps rows to
events and validates each as it is read, into chunks of :data:`TRANSACTION_EVENTS`
events, while the event loop takes each chunk down the road
(:func:`app.ingest.road.ingest`) in one transaction. Memory stays flat: one
chunk exists at a time (:data:`IN_FLIGHT_CHUNKS`), whatever the file's size.

Each transaction is one pass of the road's steps 1–3 over its chunk, with each
store's lock held exclusively (no per-row locks; new events copied straight in;
each order's state and bucket rows written once however many of its events the
chunk holds), then one evaluation of every scope it touched, and the import's
own checkpoint (counts and the last committed row) — all committed together. A
crash or Ctrl-C loses nothing committed; a rerun of the same file skips to the
checkpoint (and anything it reads again is a duplicate anyway).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import queue
import re
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy.exc import DBAPIError

from app.clock import Clock
from app.config import Settings
from app.db.dialect import is_retryable, refresh_statistics_after_bulk
from app.db.engine import Database
from app.events import repository as events_repository
from app.events.schemas import EventResult
from app.events.validation import BatchValidator, ValidatedBatch, duplicate_or_conflict
from app.imports import repository
from app.imports.formats import (
    ImportFormat,
    ImportReader,
    RowError,
    RowResult,
    open_import,
)
from app.imports.models import Import
from app.imports.reading import Progress
from app.ingest import road
from app.ops import collector, metrics
from app.stores.repository import load_context
from app.stores.rules import StoreContext, zone

log = logging.getLogger("refundwatch.imports")

TRANSACTION_EVENTS = 50_000
"""Events per transaction, taken down the road in one pass: each order's state,
contribution and bucket rows are written once per transaction however many of
its events the chunk holds, and the scopes it touched are evaluated once, at its
end. Larger is faster (fewer rewrites of the same orders and buckets) and holds
more in memory (about 3 kB an event on the road, see docs/performance.md)."""

SERVER_TRANSACTION_EVENTS = 10_000
"""The same for an upload run inside the API process: a pass of the road holds the
event loop for its Python steps, and the requests it serves wait meanwhile
(a 50,000-event pass holds it for up to half a second at a time)."""

IN_FLIGHT_CHUNKS = 1
"""Chunks alive at once. The reader begins the next chunk once the last is
committed: a second chunk read meanwhile bought no measurable speed (reading
and the road share one interpreter lock) and cost 40 MB."""

BULK_TABLES = ("orders", "refunds", "daily_figures", "daily_sku_figures", "daily_breakdowns")
"""Tables whose planner statistics a first import can leave stale (see dialect)."""

MAX_KEPT_ERRORS = 10_000
"""Refused rows kept per import for ``GET /v1/imports/{id}`` (all are counted)."""

STALE_AFTER = timedelta(minutes=2)
"""A running import whose heartbeat is older than this has lost its process."""


@dataclass(frozen=True, slots=True)
class ImportRequest:
    """What to import and how (the CLI's arguments, or an upload's form)."""

    path: Path
    filename: str
    store_id: str | None = None
    format: ImportFormat | None = None
    dry_run: bool = False
    reason_map: Mapping[str, str] = field(default_factory=dict)
    source: str = "cli"


@dataclass
class ImportSummary:
    """Where an import stands, in the words of its summary table."""

    import_id: int | None
    format: str | None = None
    status: str = "running"
    rows_read: int = 0
    rows_committed: int = 0
    events_accepted: int = 0
    events_duplicate: int = 0
    events_rejected: int = 0
    rejected_by_code: Counter[str] = field(default_factory=Counter)
    skipped_by_cause: Counter[str] = field(default_factory=Counter)
    unmapped_labels: Counter[str] = field(default_factory=Counter)
    row_errors: int = 0
    progress: Progress | None = None
    resumed_from_row: int = 0
    rows_resumed: int = 0

    @property
    def events(self) -> int:
        return self.events_accepted + self.events_duplicate + self.events_rejected

    @property
    def rejected_rows(self) -> bool:
        """Whether anything was refused (the CLI then exits non-zero)."""
        return self.row_errors > 0


class Part:
    """One of ``count`` parts of an import run by as many processes (``app.imports.parts``).

    A part reads the whole file and takes down the road only the rows it owns:
    those whose event belongs to one of its stores, and, for part 0, the rows
    that have no store (refused or skipped rows). A store's rows all go to one
    part, in the file's order. ``dealt`` gives stores their part in advance (the
    import's ``part_stores``: ``app.imports.parts.deal_stores`` balances the
    parts by the stores' sizes); any other store is dealt in the order the file
    first names it, round the parts, which every part reading the same file
    from its first row does alike.

    Call :meth:`owns` for every row of the file, in order, skipped ones included.
    """

    __slots__ = ("_dealt", "_extra", "count", "index")

    def __init__(self, index: int, count: int, dealt: Mapping[str, int] | None = None) -> None:
        if not 0 <= index < count:
            raise ValueError(f"part {index} of {count}")
        self.index = index
        self.count = count
        self._dealt: dict[str, int] = {s: p % count for s, p in (dealt or {}).items()}
        self._extra = 0

    def __repr__(self) -> str:
        return f"Part({self.index}, {self.count})"

    def owns(self, result: RowResult) -> bool:
        store_id = result.events[0].get("store_id") if result.events else None
        return self._owns_store(store_id if isinstance(store_id, str) else None)

    def decide(self, text: str) -> bool | None:
        """Whether an events-jsonl line is this part's, from its text alone (see
        :meth:`ImportReader.rows_deciding`): by the first ``"store_id": "…"`` it holds,
        or None when it holds none that way (the row is then parsed, and :meth:`owns`
        decides). Every part decides every line by the same text, so each line is
        exactly one part's; a line whose first such pair is not its event's own
        (a nested object's, say) only sends that event to another store's part,
        whose transaction then locks that store too: the outcome is the same.
        """
        found = _STORE_ID_TEXT.search(text)
        if found is None:
            return None
        return self._owns_store(found.group(1))

    def _owns_store(self, store_id: str | None) -> bool:
        if store_id is None:
            return self.index == 0
        part = self._dealt.get(store_id)
        if part is None:
            part = self._dealt[store_id] = self._extra % self.count
            self._extra += 1
        return part == self.index


_STORE_ID_TEXT = re.compile(r'"store_id"\s*:\s*"([A-Za-z0-9._:-]{1,64})"')


@dataclass(slots=True)
class _Chunk:
    """A validated chunk of events, the rows they came from, and what those rows said."""

    batch: ValidatedBatch
    rows_of_events: list[int]
    mapping_errors: list[RowError]
    skipped: Counter[str]
    unmapped: Counter[str]
    rows_read: int
    last_row: int
    progress: Progress


_END = object()

ErrorSink = Callable[[RowError], None]
ProgressSink = Callable[[ImportSummary], None]


def file_digest(path: Path) -> str:
    """The file's SHA-256 (streamed): how a rerun recognises the same file."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


async def prepare(
    db: Database, settings: Settings, request: ImportRequest
) -> tuple[StoreContext | None, ImportReader]:
    """Open the file as its format (refusing it whole if it is none), in the store's zone.

    Raises ``FormatError``/``ReadError`` (from the reader) before anything is stored.
    """
    ctx = None
    if request.store_id is not None:
        async with db.read() as session:
            ctx = await load_context(session, request.store_id)
    tz = ctx.tz if ctx is not None else zone(settings.default_timezone)
    aliases = {**(ctx.policy.reason_aliases if ctx else {}), **request.reason_map}
    reader = await asyncio.to_thread(
        open_import,
        request.path,
        store_id=request.store_id,
        tz=tz,
        format=request.format,
        reason_aliases=aliases,
    )
    return ctx, reader


async def start(
    db: Database, request: ImportRequest, reader: ImportReader, clock: Clock, digest: str
) -> tuple[Import | None, int]:
    """The import's row (a resumed one when the same file was cut short) and the row to skip to.

    A dry run stores nothing, not even its own row.
    """
    if request.dry_run and request.source == "cli":
        return None, 0
    now = clock.now()
    async with db.transaction() as session:
        previous = None
        if not request.dry_run:
            previous = await repository.unfinished(
                session, request.store_id, digest, stale_before=now - STALE_AFTER
            )
        if previous is not None:
            previous.status = "running"
            previous.heartbeat_at = now
            previous.failure = None
            return previous, previous.rows_committed
        record = await repository.create(
            session,
            store_id=request.store_id,
            format=reader.format,
            filename=request.filename,
            file_bytes=request.path.stat().st_size,
            file_sha256=digest,
            source=request.source,
            dry_run=request.dry_run,
            now=now,
        )
        return record, 0


async def run_import(
    db: Database,
    settings: Settings,
    clock: Clock,
    request: ImportRequest,
    reader: ImportReader,
    record: Import | None,
    *,
    skip_to_row: int = 0,
    on_error: ErrorSink | None = None,
    on_progress: ProgressSink | None = None,
    on_deliveries: Callable[[], None] | None = None,
    transaction_events: int | None = None,
    part: Part | None = None,
    pause_collector: bool = True,
) -> ImportSummary:
    """Import every row of ``reader``; returns the summary (also stored on ``record``).

    ``transaction_events`` defaults to :data:`TRANSACTION_EVENTS`.

    On failure or cancellation the import is marked failed or interrupted (what
    was committed stays) and the exception propagates.

    With ``part``, only that part's rows (:class:`Part`): the summary counts
    them alone, each transaction adds its counts to the import's, and the import
    is neither finished nor marked failed here (``app.imports.parts`` does that
    once every part has ended).

    ``pause_collector`` pauses Python's cyclic collector for the run
    (:mod:`app.ops.collector`): for the import's own process (the CLI and its
    parts). An upload inside the API process passes False: the pause would hold
    back collection for every request the process serves meanwhile.
    """
    summary = ImportSummary(import_id=record.id if record else None, format=reader.format)
    if record is not None and skip_to_row and part is None:
        repository.restore_counts(summary, record)
        summary.resumed_from_row = skip_to_row
    max_future = timedelta(seconds=settings.max_future_skew_seconds)
    chunks: queue.Queue[Any] = queue.Queue(maxsize=IN_FLIGHT_CHUNKS)
    permits = threading.Semaphore(IN_FLIGHT_CHUNKS)
    stop = threading.Event()
    producer = threading.Thread(
        target=_produce,
        args=(
            reader,
            chunks,
            permits,
            stop,
            clock,
            max_future,
            skip_to_row,
            transaction_events or TRANSACTION_EVENTS,
            part,
        ),
        name="import-reader",
        daemon=True,
    )
    producer.start()
    kept_errors = [0]

    def report(error: RowError) -> None:
        if on_error is not None:
            on_error(error)

    pause = collector.paused() if pause_collector else contextlib.nullcontext()
    with pause:  # collected between chunks instead (app.ops.collector)
        try:
            while True:
                item = await asyncio.to_thread(chunks.get)
                if item is _END:
                    break
                if isinstance(item, BaseException):
                    raise item
                chunk: _Chunk = item
                del item
                if request.dry_run:
                    await _check(db, chunk, summary, report)
                else:
                    enqueued = await _commit(
                        db, settings, clock, chunk, summary, record, report, kept_errors, part
                    )
                    if enqueued and on_deliveries is not None:
                        on_deliveries()
                summary.progress = chunk.progress
                del chunk  # nothing may keep a committed chunk: the reader builds the next now
                if pause_collector:
                    collector.collect()  # automatic collection is paused for the import
                permits.release()
                if on_progress is not None:
                    on_progress(summary)
            summary.status = "succeeded"
            if record is not None and part is None:
                await _finish(db, clock, record, summary, "succeeded", None)
            return summary
        except BaseException as exc:
            stop.set()
            status = (
                "interrupted"
                if isinstance(exc, asyncio.CancelledError | KeyboardInterrupt)
                else "failed"
            )
            summary.status = status
            if record is not None and part is None:
                with contextlib.suppress(Exception):
                    await asyncio.shield(
                        _finish(db, clock, record, summary, status, _failure_text(exc))
                    )
            raise
        finally:
            stop.set()
            _drain(chunks)
            producer.join(timeout=5)
            _drain(chunks)
            with contextlib.suppress(queue.Full):
                chunks.put_nowait(_END)  # releases a reader of the queue still waiting
            reader.close()


def _failure_text(exc: BaseException) -> str:
    if isinstance(exc, asyncio.CancelledError | KeyboardInterrupt):
        return "interrupted before the end of the file; run the same import again to finish it"
    return f"{type(exc).__name__}: {exc}"[:1000]


def _drain(chunks: queue.Queue[Any]) -> None:
    with contextlib.suppress(queue.Empty):
        while True:
            chunks.get_nowait()


def _produce(
    reader: ImportReader,
    chunks: queue.Queue[Any],
    permits: threading.Semaphore,
    stop: threading.Event,
    clock: Clock,
    max_future: timedelta,
    skip_to_row: int,
    size: int,
    part: Part | None,
) -> None:
    """The reader thread: rows → events → validated chunks (a row never spans two).

    A chunk is begun only with a permit, which the loop hands back once the
    chunk is committed: at most :data:`IN_FLIGHT_CHUNKS` exist at a time.
    """
    try:
        pieces = _chunks(reader, clock, max_future, skip_to_row, size, part)
        while True:
            while not permits.acquire(timeout=0.5):
                if stop.is_set():
                    return
            chunk = next(pieces, None)
            if chunk is None:
                break
            while not stop.is_set():
                try:
                    chunks.put(chunk, timeout=0.5)
                    break
                except queue.Full:
                    continue
            del chunk  # the loop holds it now, and lets it go once committed
            if stop.is_set():
                return
        chunks.put(_END)
    except BaseException as exc:  # handed to the loop, which raises it
        with contextlib.suppress(queue.Full):
            _drain(chunks)
            chunks.put(exc, timeout=5)


def _chunks(
    reader: ImportReader,
    clock: Clock,
    max_future: timedelta,
    skip_to_row: int,
    size: int,
    part: Part | None = None,
) -> Iterator[_Chunk]:
    """Validated chunks of about ``size`` events, each event checked
    as its row is read (no chunk holds its raw events and their validated form at once).

    With ``part``, the rows of other parts are read past: they count nowhere here,
    but a chunk's ``last_row`` moves past them (a rerun of this part skips them too).
    """

    def begin() -> BatchValidator:
        return BatchValidator(now=clock.now(), max_future=max_future)

    validator = begin()
    rows_of_events: list[int] = []
    errors: list[RowError] = []
    skipped: Counter[str] = Counter()
    unmapped: Counter[str] = Counter()
    rows_read = 0
    last_row = skip_to_row

    def chunk() -> _Chunk:
        return _Chunk(
            validator.batch,
            rows_of_events,
            errors,
            skipped,
            unmapped,
            rows_read,
            last_row,
            reader.progress(),
        )

    rows = ((r.row, r, True) for r in reader) if part is None else reader.rows_deciding(part.decide)
    for number, result, decided in rows:
        # every row is decided, to deal the stores alike in every part
        owned = decided
        if owned is None:
            owned = result is not None and part is not None and part.owns(result)
        if number <= skip_to_row:
            continue
        last_row = number
        if not owned or result is None:
            continue
        rows_read += 1
        if result.skip is not None:
            skipped[result.skip] += 1
        if result.unmapped_reason is not None:
            unmapped[result.unmapped_reason] += 1
        errors.extend(result.errors)
        for event in result.events:
            validator.add(event)
            rows_of_events.append(result.row)
        del result
        if len(validator) >= size:
            yield chunk()
            validator, rows_of_events, errors = begin(), [], []
            skipped, unmapped, rows_read = Counter(), Counter(), 0
    yield chunk()


def _tally(chunk: _Chunk, results: list[Any], summary: ImportSummary) -> list[RowError]:
    """Count a chunk's outcome; returns its refused rows (mapping and ingest errors)."""
    summary.rows_read += chunk.rows_read
    summary.skipped_by_cause.update(chunk.skipped)
    summary.unmapped_labels.update(chunk.unmapped)
    refused = list(chunk.mapping_errors)
    for row, result in zip(chunk.rows_of_events, results, strict=True):
        if result.status == "accepted":
            summary.events_accepted += 1
        elif result.status == "duplicate":
            summary.events_duplicate += 1
        else:
            summary.events_rejected += 1
            code = result.error.code if result.error else "rejected"
            summary.rejected_by_code[code] += 1
            refused.append(
                RowError(
                    row=row,
                    column=result.error.field if result.error else None,
                    code=code,
                    message=result.error.message if result.error else "rejected",
                )
            )
    refused.sort(key=lambda e: e.row)
    summary.row_errors += len(refused)
    return refused


async def _commit(
    db: Database,
    settings: Settings,
    clock: Clock,
    chunk: _Chunk,
    summary: ImportSummary,
    record: Import | None,
    report: ErrorSink,
    kept_errors: list[int],
    part: Part | None = None,
) -> int:
    """One transaction: the chunk down the road in one pass, one evaluation, the checkpoint.

    Rerun whole if PostgreSQL broke a deadlock with it (two imports of the same
    stores); the summary counts only what committed.
    """
    for attempt in range(1, 4):
        before = _snapshot(summary)
        started = time.perf_counter()
        try:
            now = clock.now()
            async with db.transaction() as session:
                outcome = await road.ingest(
                    session,
                    chunk.batch,
                    now=now,
                    default_timezone=settings.default_timezone,
                    evaluate=False,
                    lock_whole_stores=True,
                )
                refused = _tally(chunk, outcome.answer.results, summary)
                if summary.events_accepted > before["events_accepted"]:  # it wrote rows
                    await refresh_statistics_after_bulk(session, BULK_TABLES)
                reevaluated = await road.reevaluate(
                    session, outcome.contexts, outcome.touched_scopes, now=now
                )
                summary.rows_committed = chunk.last_row
                if record is not None:
                    limit = MAX_KEPT_ERRORS // (part.count if part else 1)
                    room = max(0, limit - kept_errors[0])
                    await repository.keep_errors(session, record.id, refused[:room])
                    if part is None:
                        await repository.checkpoint(session, record, summary, chunk.progress, now)
                    else:
                        await repository.checkpoint_part(
                            session,
                            record.id,
                            part.index,
                            _added_since(before, summary),
                            chunk.last_row,
                            chunk.progress,
                            now,
                        )
        except DBAPIError as exc:
            _restore(summary, before)
            if attempt == 3 or not is_retryable(exc):
                raise
            continue
        except BaseException:
            _restore(summary, before)
            raise
        metrics.ingest_committed("import", _answered_since(before, summary), started)
        kept_errors[0] += len(refused)
        for error in refused:
            report(error)
        return reevaluated.deliveries_enqueued
    return 0


def _answered_since(before: dict[str, Any], summary: ImportSummary) -> metrics.Counts:
    """What one committed transaction answered: the summary's counts since ``before``."""
    return metrics.Counts(
        accepted=summary.events_accepted - before["events_accepted"],
        duplicates=summary.events_duplicate - before["events_duplicate"],
        rejected=summary.events_rejected - before["events_rejected"],
    )


def _added_since(before: dict[str, Any], summary: ImportSummary) -> ImportSummary:
    """What one transaction added to the summary's counts (a part's checkpoint adds it)."""
    return ImportSummary(
        import_id=summary.import_id,
        rows_read=summary.rows_read - before["rows_read"],
        events_accepted=summary.events_accepted - before["events_accepted"],
        events_duplicate=summary.events_duplicate - before["events_duplicate"],
        events_rejected=summary.events_rejected - before["events_rejected"],
        rejected_by_code=summary.rejected_by_code - before["rejected_by_code"],
        skipped_by_cause=summary.skipped_by_cause - before["skipped_by_cause"],
        unmapped_labels=summary.unmapped_labels - before["unmapped_labels"],
        row_errors=summary.row_errors - before["row_errors"],
    )


def _snapshot(summary: ImportSummary) -> dict[str, Any]:
    return {
        name: (Counter(value) if isinstance(value, Counter) else value)
        for name, value in vars(summary).items()
    }


def _restore(summary: ImportSummary, snapshot: dict[str, Any] | None) -> None:
    if snapshot is not None:
        for name, value in snapshot.items():
            setattr(summary, name, value)


async def _check(db: Database, chunk: _Chunk, summary: ImportSummary, report: ErrorSink) -> None:
    """A dry run: what each event would be (new, duplicate, refused), storing nothing."""
    async with db.read() as session:
        batch = chunk.batch
        known = await events_repository.stored_hashes(
            session, [c.event.event_id for c in batch.candidates]
        )
        results: list[Any] = list(batch.results)
        meaning = dict(known)
        for c in batch.candidates:
            if c.event.event_id in known:
                results[c.index] = duplicate_or_conflict(
                    c.event.event_id, known[c.event.event_id] == c.content_hash
                )
            else:
                results[c.index] = EventResult(event_id=c.event.event_id, status="accepted")
                meaning[c.event.event_id] = c.content_hash
        for r in batch.repeats:
            results[r.index] = duplicate_or_conflict(
                r.event.event_id, meaning.get(r.event.event_id) == r.content_hash
            )
        for error in _tally(chunk, results, summary):
            report(error)
        summary.rows_committed = chunk.last_row


async def _finish(
    db: Database,
    clock: Clock,
    record: Import,
    summary: ImportSummary,
    status: str,
    failure: str | None,
) -> None:
    async with db.transaction() as session:
        await repository.finish(session, record.id, summary, status, failure, clock.now())


def status_of(record: Import, now: datetime) -> str:
    """A running import whose heartbeat stopped is interrupted: its process is gone."""
    if record.status == "running" and (
        record.heartbeat_at is None or record.heartbeat_at < now - STALE_AFTER
    ):
        return "interrupted"
    return record.status


class ImportRunner:
    """Runs uploaded imports in the background of the process that received them."""

    def __init__(
        self,
        db: Database,
        settings: Settings,
        clock: Clock,
        *,
        on_deliveries: Callable[[], None] | None = None,
    ) -> None:
        self._db = db
        self._settings = settings
        self._clock = clock
        self._on_deliveries = on_deliveries
        self._tasks: set[asyncio.Task[None]] = set()

    def launch(
        self, request: ImportRequest, reader: ImportReader, record: Import, skip_to_row: int
    ) -> None:
        task = asyncio.create_task(
            self._run(request, reader, record, skip_to_row), name=f"import-{record.id}"
        )
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run(
        self, request: ImportRequest, reader: ImportReader, record: Import, skip_to_row: int
    ) -> None:
        try:
            await run_import(
                self._db,
                self._settings,
                self._clock,
                request,
                reader,
                record,
                skip_to_row=skip_to_row,
                on_deliveries=self._on_deliveries,
                transaction_events=SERVER_TRANSACTION_EVENTS,
                pause_collector=False,  # the API process serves requests meanwhile
            )
        except asyncio.CancelledError:
            raise  # shutdown: the import is marked interrupted; its file stays for a rerun
        except Exception:
            log.exception("import %s failed", record.id)
        request.path.unlink(missing_ok=True)

    async def stop(self) -> None:
        """Cancel running imports (each records that it was interrupted)."""
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=10)

    async def wait(self) -> None:
        """Wait for every running import to end (tests, shutdown drains)."""
        if self._tasks:
            await asyncio.wait(list(self._tasks))
