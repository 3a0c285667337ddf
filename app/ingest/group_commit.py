"""Group commit: the ingest requests waiting in one process share one transaction.

It only batches and retries around the road (:func:`app.ingest.road.ingest`).

Every ingest is one transaction that folds its events and re-evaluates the
scopes they touch (DESIGN §2–§5). Run side by side, the transactions of one
process only wait for each other: a store cluster's batches lock the same
orders, bucket rows and scopes, so they commit one after another anyway, each
paying its own dozen round trips and its own evaluation of the same scopes.

So a process runs one ingest transaction at a time and gives it everything
that queued meanwhile: the events of the waiting requests, in arrival order,
up to ``max_events`` a transaction. Each request still gets its own answer, in
its own input order, after the commit that made its events durable (accepted =
committed). With no other request waiting, a request runs alone at once: no
delay is added to wait for company.

Merged, a batch means what it means alone run one after the other: an event
id sent by two waiting requests is accepted for the first and answered
``duplicate`` (or ``event_id_conflict``) for the second. Should a merged
transaction fail for a reason other than a deadlock (retried whole), each of
its requests is run again alone, so one request's failure is only its own.

Across processes nothing changes: their transactions serialise on the
advisory locks as before (``max_events = 0`` turns merging off, so every request
is its own transaction, run concurrently).
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.exc import DBAPIError

from app.config import Settings
from app.db.dialect import is_retryable
from app.db.engine import Database
from app.events.schemas import IngestAnswer
from app.events.validation import ValidatedBatch, validate_batch
from app.ingest import road
from app.ops import metrics
from app.ops.logs import bind_request_ids, current_request_id

DEADLOCK_RETRIES = 3


@dataclass(slots=True)
class _Waiting:
    batch: ValidatedBatch
    now: datetime
    answer: asyncio.Future[IngestAnswer]
    request_id: str | None  # its log lines name it, in the drainer's task too


def split_answer(answer: IngestAnswer, sizes: Sequence[int]) -> list[IngestAnswer]:
    """One merged answer cut back into the answers of the requests, in order."""
    answers: list[IngestAnswer] = []
    start = 0
    for size in sizes:
        answers.append(IngestAnswer.of(answer.results[start : start + size]))
        start += size
    assert start == len(answer.results)
    return answers


class IngestCommitter:
    """Runs a process's ingest transactions one at a time, merging the waiting requests."""

    def __init__(
        self,
        db: Database,
        settings: Settings,
        *,
        on_deliveries: Callable[[], None] | None = None,
    ) -> None:
        self._db = db
        self._max_future = timedelta(seconds=settings.max_future_skew_seconds)
        self._default_timezone = settings.default_timezone
        self._max_events = settings.ingest_group_max_events
        self._on_deliveries = on_deliveries
        self._waiting: deque[_Waiting] = deque()
        self._drainer: asyncio.Task[None] | None = None
        self.transactions = 0  # committed ingest transactions (for tests and metrics)

    async def ingest(self, events: Sequence[Any], now: datetime) -> IngestAnswer:
        """Store and fold ``events``; returns after the commit that made them durable."""
        # Validation needs no database: done here, it overlaps the transaction
        # running meanwhile instead of lengthening the next one.
        batch = validate_batch(events, now=now, max_future=self._max_future)
        if self._max_events <= 0:
            return await self._transaction(batch, now)
        answer: asyncio.Future[IngestAnswer] = asyncio.get_running_loop().create_future()
        self._waiting.append(_Waiting(batch, now, answer, current_request_id()))
        if self._drainer is None:
            self._drainer = asyncio.create_task(self._drain(), name="ingest-group-commit")
        return await answer

    async def _drain(self) -> None:
        group: list[_Waiting] = []
        try:
            while self._waiting:
                group = self._take_group()
                if group:
                    await self._commit_group(group)
        except BaseException as exc:  # cancelled at shutdown: no request waits forever
            for waiting in (*group, *self._waiting):
                _settle(waiting.answer, exc=exc)
            self._waiting.clear()
            raise
        finally:
            self._drainer = None

    def _take_group(self) -> list[_Waiting]:
        """The oldest waiting requests, as many as fit in ``max_events`` (at least one)."""
        group: list[_Waiting] = []
        total = 0
        while self._waiting:
            head = self._waiting[0]
            if head.answer.done():  # its request was cancelled: never run it
                self._waiting.popleft()
                continue
            if group and total + len(head.batch) > self._max_events:
                break
            group.append(self._waiting.popleft())
            total += len(head.batch)
        return group

    async def _commit_group(self, group: list[_Waiting]) -> None:
        bind_request_ids(w.request_id for w in group)
        if len(group) == 1:
            await self._commit_alone(group[0])
            return
        batch = ValidatedBatch.merge([waiting.batch for waiting in group])
        try:
            merged = await self._transaction(batch, max(w.now for w in group))
        except Exception:
            # Rolled back whole: run each request alone, so a failure stays its own.
            for waiting in group:
                await self._commit_alone(waiting)
            return
        for waiting, answer in zip(
            group, split_answer(merged, [len(w.batch) for w in group]), strict=True
        ):
            _settle(waiting.answer, answer=answer)

    async def _commit_alone(self, waiting: _Waiting) -> None:
        bind_request_ids([waiting.request_id])
        try:
            answer = await self._transaction(waiting.batch, waiting.now)
        except Exception as exc:
            _settle(waiting.answer, exc=exc)
        else:
            _settle(waiting.answer, answer=answer)

    async def _transaction(self, batch: ValidatedBatch, now: datetime) -> IngestAnswer:
        """One ingest transaction, run again whole if PostgreSQL broke a deadlock with it."""
        for attempt in range(1, DEADLOCK_RETRIES + 1):
            try:
                async with self._db.transaction() as session:
                    outcome = await road.ingest(
                        session, batch, now=now, default_timezone=self._default_timezone
                    )
                break
            except DBAPIError as exc:
                # All of it rolled back (a deadlock is possible only when a refund's
                # order changed under us), so running it again is safe.
                if attempt == DEADLOCK_RETRIES or not is_retryable(exc):
                    raise
        self.transactions += 1
        metrics.ingest_committed("http", outcome.answer, outcome.started)
        if outcome.deliveries_enqueued and self._on_deliveries is not None:
            self._on_deliveries()  # committed: deliver now, not at the next poll
        return outcome.answer


def _settle(
    future: asyncio.Future[IngestAnswer],
    *,
    answer: IngestAnswer | None = None,
    exc: BaseException | None = None,
) -> None:
    if future.done():  # the request went away; its events' fate is in the database
        return
    if isinstance(exc, asyncio.CancelledError):
        future.cancel()
    elif exc is not None:
        future.set_exception(exc)
    else:
        assert answer is not None
        future.set_result(answer)
