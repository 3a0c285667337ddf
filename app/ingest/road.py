"""The road of an event: one function composes it, and every door calls it.

    HTTP (POST /v1/events)  ─┐
    file imports            ─┼─► ingest(session, batch) ─► the steps below, in the caller's transaction
    marketplace connector   ─┘

1. store raw         — insert the new event ids (idempotent by id); known ids
                       are duplicates or conflicts          (app.events.repository)
2. fold              — into each refund's and order's state  (app.events.service)
3. bucket deltas     — each order's change of contribution, one upsert per
                       (store, scope, day)                   (app.figures.rules / repository)
4. evaluate tiers    — every touched scope, against its policy's lines
5. record alerts     — state changes and the alerts they raise   (app.alerts.service)
6. enqueue           — the alerts' deliveries, in the same transaction (app.webhooks.outbox)

After the caller commits, the relay (``app.webhooks.relay``) delivers them.
Store and policy edits and the clock (the window sliding at midnight, reminders)
take the second half of the same road: :func:`reevaluate` (steps 4–6), after a
rebuild of the figures when the edit changed what they mean (:func:`refresh_store`).

Nothing here commits: ``app.ingest.group_commit`` (HTTP), the import job and the
connector each own their transaction and call :func:`ingest` inside it.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from app.alerts.models import Alert
from app.alerts.service import evaluate_scopes, scopes_to_review
from app.db.dialect import lock_key, lock_keys
from app.events import repository as events
from app.events.schemas import EventResult, IngestAnswer
from app.events.service import fold_events, save_folded
from app.events.validation import ValidatedBatch, duplicate_or_conflict
from app.figures import repository as figures
from app.figures.rebuild import rebuild_store_figures
from app.figures.rules import Scope, bucket_deltas, contributions
from app.ops.metrics import count_alerts_on_commit
from app.stores.repository import ensure_stores
from app.stores.rules import StoreContext
from app.webhooks.outbox import enqueue_deliveries


@dataclass(slots=True)
class Reevaluated:
    """What steps 4–6 did: the tiers judged, the alerts written, the deliveries queued."""

    evaluated: int = 0
    alerts: list[Alert] = field(default_factory=list)
    deliveries_enqueued: int = 0


@dataclass(slots=True)
class IngestOutcome:
    """What the road did with one batch, said explicitly."""

    answer: IngestAnswer
    touched_scopes: set[Scope] = field(default_factory=set)
    contexts: dict[str, StoreContext] = field(default_factory=dict)
    reevaluated: Reevaluated = field(default_factory=Reevaluated)
    # perf_counter() when the road began: the door times its transaction from here.
    started: float = field(default_factory=time.perf_counter)

    @property
    def deliveries_enqueued(self) -> int:
        return self.reevaluated.deliveries_enqueued


async def ingest(
    session: AsyncSession,
    batch: ValidatedBatch,
    *,
    now: datetime,
    default_timezone: str,
    evaluate: bool = True,
    lock_whole_stores: bool = False,
) -> IngestOutcome:
    """Take a validated batch down the whole road, in the caller's transaction.

    With ``evaluate=False`` the road stops after the buckets (steps 1–3) and
    returns the touched scopes, so a caller folding many chunks in one
    transaction (a file import) evaluates each scope once at the end.
    ``lock_whole_stores`` takes each store's lock exclusively instead of one lock
    per refund and order: what a bulk of thousands of events needs (the lock
    table holds a few thousand locks in all), and ingest of those stores waits.
    Holding them, the bulk also takes shorter roads to the same rows: new events
    are copied straight in (:func:`app.events.repository.insert_new_events`) and
    bucket rows are written unsorted (nobody else writes them meanwhile).
    """
    results: list[EventResult | None] = list(batch.results)  # a batch may run again
    outcome = IngestOutcome(answer=IngestAnswer.of([]))
    if batch.candidates:
        candidates = batch.candidates
        incoming = [c.event for c in candidates]
        refund_keys, order_keys = await events.keys_to_lock(session, incoming)
        store_ids = sorted({e.store_id for e in incoming})
        if lock_whole_stores:
            await lock_stores_for_edit(session, store_ids)
        else:
            await events.lock_batch(session, store_ids, refund_keys, order_keys)

        # 1. store raw: new ids are accepted; known ids are resends or conflicts.
        insert = events.insert_new_events if lock_whole_stores else events.insert_and_read_known
        inserted, meaning = await insert(session, candidates, now)
        fresh = [c for c in candidates if c.event.event_id in inserted]
        known = [c for c in candidates if c.event.event_id not in inserted]
        for c in known:
            results[c.index] = duplicate_or_conflict(
                c.event.event_id, meaning.get(c.event.event_id) == c.content_hash
            )
        for c in fresh:
            results[c.index] = EventResult(event_id=c.event.event_id, status="accepted")
            meaning[c.event.event_id] = c.content_hash
        for r in batch.repeats:
            results[r.index] = duplicate_or_conflict(
                r.event.event_id, meaning.get(r.event.event_id) == r.content_hash
            )

        if fresh:
            # Stores are created by their first accepted event (read after the
            # locks, so an edit committed meanwhile is seen: events fold with the
            # zone and policy now in force).
            outcome.contexts = await ensure_stores(
                session,
                sorted({c.event.store_id for c in fresh}),
                now=now,
                default_timezone=default_timezone,
            )
            # 2. fold into refund and order state.
            folded = await fold_events(
                session,
                [c.event for c in fresh],
                locked_orders=order_keys,
                lock_late=not lock_whole_stores,
            )
            # 3. each order's new contribution, and the bucket deltas.
            contexts = outcome.contexts
            new = contributions(
                folded.order_keys,
                folded.orders,
                folded.refunds_by_order,
                {s: ctx.tz for s, ctx in contexts.items()},
                {s: ctx.policy for s, ctx in contexts.items()},
            )
            deltas = bucket_deltas(folded.contributed, new)
            await save_folded(session, folded, new, copy_new=lock_whole_stores)
            outcome.touched_scopes = deltas.touched_scopes()
            await figures.apply_bucket_deltas(session, deltas, ordered=not lock_whole_stores)

    final = [r for r in results if r is not None]
    assert len(final) == len(batch)
    outcome.answer = IngestAnswer.of(final)
    if evaluate and outcome.touched_scopes:
        # 4–6. evaluate the touched scopes, record transitions, enqueue deliveries.
        outcome.reevaluated = await reevaluate(
            session, outcome.contexts, outcome.touched_scopes, now=now
        )
    return outcome


async def reevaluate(
    session: AsyncSession,
    contexts: dict[str, StoreContext],
    scopes: Iterable[Scope],
    *,
    now: datetime,
) -> Reevaluated:
    """Steps 4–6: judge the scopes, write state changes and alerts, enqueue deliveries."""
    evaluation = await evaluate_scopes(session, contexts, scopes, now=now)
    count_alerts_on_commit(session, evaluation.alerts)
    enqueued = await enqueue_deliveries(session, evaluation.alerts, now=now)
    return Reevaluated(evaluation.evaluated, evaluation.alerts, enqueued)


async def reevaluate_store(session: AsyncSession, ctx: StoreContext, now: datetime) -> Reevaluated:
    """Every scope of a store that time alone may change (the window slid, an edit)."""
    scopes = await scopes_to_review(session, ctx, now)
    return await reevaluate(session, {ctx.store_id: ctx}, scopes, now=now)


async def refresh_store(
    session: AsyncSession, before: StoreContext, after: StoreContext, now: datetime
) -> Reevaluated:
    """After a store or policy edit: rebuild figures if their rules changed, re-evaluate.

    The caller holds the store's lock exclusively (see :func:`lock_stores_for_edit`).
    """
    if before.figures_differ(after):
        await rebuild_store_figures(session, after)
    return await reevaluate_store(session, after, now)


async def lock_stores_for_edit(session: AsyncSession, store_ids: Iterable[str]) -> None:
    """Exclusive store locks, taken before any row lock: no ingest of these stores
    interleaves with the edit, and every later evaluation reads the edited lines."""
    await lock_keys(session, (lock_key("store", s) for s in store_ids))


async def lock_stores_for_reading(session: AsyncSession, store_ids: Iterable[str]) -> None:
    """Shared store locks (what ingest takes): an edit waits, readers don't."""
    await lock_keys(session, (lock_key("store", s) for s in store_ids), shared=True)
