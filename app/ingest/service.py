"""Ingest one batch in one transaction: store, fold, update buckets, re-evaluate.

The road of an event (DESIGN §2–3): validate → insert raw (idempotent by
event_id) → fold into refund/order state → one delta per (store, scope, day)
→ re-evaluate the touched scopes' tiers. Set-based: one statement per table
per batch, never one per event.
"""

from __future__ import annotations

import hashlib
import operator
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from datetime import date, datetime, timedelta
from functools import lru_cache
from typing import Any

import orjson
from pydantic import ValidationError
from sqlalchemy import select, union
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.dialect import (
    dialect_of,
    lock_key,
    lock_keys,
    lock_phases,
    pairs_clause,
    pairs_params,
    upsert_rows,
    values_clause,
    values_params,
)
from app.figures.models import DailyFigures
from app.figures.rules import NO_CONTRIBUTION, Contribution, add_delta, contribution
from app.ingest.fold import OrderState, RefundState, fold_order_event, fold_refund_event
from app.ingest.models import Event, OrderRecord, RefundRecord
from app.ingest.schemas import (
    EVENT_ADAPTER,
    EventError,
    EventResult,
    IngestAnswer,
    describe_validation_error,
)
from app.stores.service import StoreContext, ensure_stores

_REFUND_FIELDS = [f.name for f in fields(RefundState)]
_ORDER_FIELDS = [f.name for f in fields(OrderState)]
# attrgetter, not dataclasses.astuple: astuple deep-copies every value.
_refund_values = operator.attrgetter(*_REFUND_FIELDS)
_order_values = operator.attrgetter(*_ORDER_FIELDS)
_CONTRIBUTION_COLUMNS = (
    "c_product_id",
    "c_paid_day",
    "c_applied_day",
    "c_quality_day",
    "c_pending",
)

_EVENT_COLUMNS = (
    "event_id",
    "store_id",
    "type",
    "occurred_at",
    "received_at",
    "content_hash",
    "payload",
)
# A bucket delta's counts, in the order of the delta lists (app.figures.rules).
_BUCKET_COUNTS = ("orders", "applied_quality_refunds", "quality_refunds", "pending_quality_refunds")

_contribution_values = operator.attrgetter(*(f.name for f in fields(Contribution)))

# Rows are read in the dataclasses' field order, so a row unpacks into one.
_REFUND_COLUMNS = [RefundRecord.__table__.c[name] for name in _REFUND_FIELDS]
_ORDER_COLUMNS = [
    OrderRecord.__table__.c[name] for name in (*_ORDER_FIELDS, *_CONTRIBUTION_COLUMNS)
]


def refund_state_columns() -> list[Any]:
    """The refunds table's columns in RefundState's field order."""
    return list(_REFUND_COLUMNS)


def order_state_columns() -> list[Any]:
    """The orders table's state columns in OrderState's field order."""
    return list(_ORDER_COLUMNS[: len(_ORDER_FIELDS)])


Scope = tuple[str, str]  # (store_id, product_id or "" for the store)


# The hot path's queries, built once per dialect: building a statement and its
# cache key costs more than running it.
@lru_cache(maxsize=8)
def _stored_hashes(dialect: str) -> Any:
    return select(Event.event_id, Event.content_hash).where(
        values_clause(dialect, Event.event_id, "ids")
    )


@lru_cache(maxsize=8)
def _orders_of_refunds(dialect: str) -> Any:
    table = RefundRecord.__table__
    return select(table.c.store_id, table.c.order_id).where(
        pairs_clause(dialect, table.c.store_id, table.c.refund_id, "refunds"),
        table.c.order_id.is_not(None),
    )


@lru_cache(maxsize=16)
def _refunds_query(dialect: str, by_refund: bool, by_order: bool) -> Any:
    table = RefundRecord.__table__
    parts = []
    if by_refund:
        parts.append(
            select(*_REFUND_COLUMNS).where(
                pairs_clause(dialect, table.c.store_id, table.c.refund_id, "refunds")
            )
        )
    if by_order:
        parts.append(
            select(*_REFUND_COLUMNS).where(
                pairs_clause(dialect, table.c.store_id, table.c.order_id, "orders")
            )
        )
    return parts[0] if len(parts) == 1 else union(*parts)


@lru_cache(maxsize=8)
def _orders_query(dialect: str) -> Any:
    table = OrderRecord.__table__
    return select(*_ORDER_COLUMNS).where(
        pairs_clause(dialect, table.c.store_id, table.c.order_id, "orders")
    )


@dataclass(slots=True)
class FoldOutcome:
    """What a fold changed: the scopes whose figures moved."""

    touched_scopes: set[Scope] = field(default_factory=set)
    contexts: dict[str, StoreContext] = field(default_factory=dict)


@dataclass(slots=True)
class _Accepted:
    index: int
    event: Any
    content_hash: bytes
    payload: str


def _reject(event_id: str | None, error: EventError) -> EventResult:
    return EventResult(event_id=event_id, status="rejected", error=error)


@dataclass(slots=True)
class ValidatedBatch:
    """A batch checked event by event, before any database work.

    ``results`` holds the answers known already (rejections), ``None`` elsewhere;
    ``candidates`` the first use of each event id, to store; ``repeats`` the later
    uses of an id, judged once the id's meaning is known.
    """

    results: list[EventResult | None]
    candidates: list[_Accepted]
    repeats: list[_Accepted]

    def __len__(self) -> int:
        return len(self.results)

    @classmethod
    def merge(cls, parts: Sequence[ValidatedBatch]) -> ValidatedBatch:
        """The batches one after the other, as one: an id first used in an earlier
        part is a repeat in a later one."""
        merged = cls([], [], [])
        seen: set[str] = set()
        for part in parts:
            offset = len(merged.results)
            merged.results.extend(part.results)
            for c in part.candidates:
                moved = _Accepted(c.index + offset, c.event, c.content_hash, c.payload)
                if c.event.event_id in seen:
                    merged.repeats.append(moved)
                else:
                    seen.add(c.event.event_id)
                    merged.candidates.append(moved)
            merged.repeats.extend(
                _Accepted(r.index + offset, r.event, r.content_hash, r.payload)
                for r in part.repeats
            )
        return merged


def validate_batch(
    raw_events: Sequence[Any], *, now: datetime, max_future: timedelta
) -> ValidatedBatch:
    """Validate each event on its own; set aside in-batch repeats of an event_id.

    A repeat is judged later, against what the id ends up meaning: the stored
    event if the id was known before this batch, else its first use here.
    """
    results: list[EventResult | None] = [None] * len(raw_events)
    candidates: list[_Accepted] = []
    repeats: list[_Accepted] = []
    seen: set[str] = set()
    latest_allowed = now + max_future
    for index, raw in enumerate(raw_events):
        raw_id = raw.get("event_id") if isinstance(raw, dict) else None
        event_id = raw_id if isinstance(raw_id, str) else None
        try:
            event = EVENT_ADAPTER.validate_python(raw)
        except ValidationError as exc:
            results[index] = _reject(event_id, describe_validation_error(exc))
            continue
        if event.occurred_at > latest_allowed:
            results[index] = _reject(
                event_id,
                EventError(
                    code="occurred_in_future",
                    field="occurred_at",
                    message="occurred_at is more than 5 minutes in the future",
                ),
            )
            continue
        payload = orjson.dumps(raw, option=orjson.OPT_SORT_KEYS)
        digest = hashlib.blake2b(payload, digest_size=16).digest()
        if event.event_id in seen:
            repeats.append(_Accepted(index, event, digest, ""))
            continue
        seen.add(event.event_id)
        candidates.append(_Accepted(index, event, digest, payload.decode()))
    return ValidatedBatch(results, candidates, repeats)


def _duplicate_or_conflict(event_id: str, same_content: bool) -> EventResult:
    if same_content:
        return EventResult(event_id=event_id, status="duplicate")
    return _reject(
        event_id,
        EventError(
            code="event_id_conflict",
            field="event_id",
            message="this event_id was already used for an event with other content",
        ),
    )


async def ingest_batch(
    session: AsyncSession,
    batch: ValidatedBatch,
    *,
    now: datetime,
    default_timezone: str,
) -> tuple[IngestAnswer, FoldOutcome]:
    """Store and fold one validated batch. The caller owns the transaction."""
    results = list(batch.results)  # the batch may be run again after a rollback
    candidates, repeats = batch.candidates, batch.repeats
    outcome = FoldOutcome()
    if candidates:
        events = [c.event for c in candidates]
        store_ids = sorted({e.store_id for e in events})
        refund_keys, order_keys = await _keys_to_lock(session, events)
        # All locks of the batch in one round trip, in the fixed phase order
        # (stores shared → refunds → orders). A rebuild takes a store exclusively.
        await lock_phases(
            session,
            [
                ((lock_key("store", s) for s in store_ids), True),
                ((lock_key("refund", *k) for k in refund_keys), False),
                ((lock_key("order", *k) for k in order_keys), False),
            ],
        )
        # Read after the locks: a time-zone or policy rebuild that committed while
        # this batch waited is seen, so events fold with the zone and policy now in force.
        outcome.contexts = await ensure_stores(
            session, store_ids, now=now, default_timezone=default_timezone
        )
        inserted = await _insert_events(session, candidates, now)
        fresh = [c for c in candidates if c.event.event_id in inserted]
        meaning = await _settle_known(
            session, [c for c in candidates if c.event.event_id not in inserted], results
        )
        for c in fresh:
            results[c.index] = EventResult(event_id=c.event.event_id, status="accepted")
            meaning[c.event.event_id] = c.content_hash
        for r in repeats:
            results[r.index] = _duplicate_or_conflict(
                r.event.event_id, meaning.get(r.event.event_id) == r.content_hash
            )
        if fresh:
            outcome.touched_scopes = await fold_events(
                session, [c.event for c in fresh], outcome.contexts, locked_orders=order_keys
            )
    final = [r for r in results if r is not None]
    assert len(final) == len(batch)
    return IngestAnswer.of(final), outcome


async def _insert_events(
    session: AsyncSession, candidates: Sequence[_Accepted], now: datetime
) -> set[str]:
    rows = await upsert_rows(
        session,
        Event.__table__,
        ["event_id"],
        [],
        _EVENT_COLUMNS,
        [
            (
                c.event.event_id,
                c.event.store_id,
                c.event.type,
                c.event.occurred_at,
                now,
                c.content_hash,
                c.payload,
            )
            # Key order: two batches holding the same new ids never wait on each other
            # crosswise in the unique index.
            for c in sorted(candidates, key=lambda c: c.event.event_id)
        ],
        mode="nothing",
        returning="event_id",
    )
    return set(rows.scalars())


async def _settle_known(
    session: AsyncSession, known: Sequence[_Accepted], results: list[EventResult | None]
) -> dict[str, bytes]:
    """Events whose id is already stored: a resend, or a conflicting reuse.

    Returns the stored content hash of each of these ids.
    """
    if not known:
        return {}
    rows = await session.execute(
        _stored_hashes(dialect_of(session)),
        values_params("ids", [c.event.event_id for c in known]),
    )
    stored = {row.event_id: bytes(row.content_hash) for row in rows}
    for c in known:
        results[c.index] = _duplicate_or_conflict(
            c.event.event_id, stored.get(c.event.event_id) == c.content_hash
        )
    return stored


async def _keys_to_lock(
    session: AsyncSession, events: Sequence[Any]
) -> tuple[list[tuple[str, str]], set[tuple[str, str]]]:
    """The refunds and orders a batch will touch, known before any lock is taken.

    A lifecycle event names only its refund; its order comes from the refund's
    stored request, read here without a lock. Should that order change before
    the fold (a concurrent, earlier-dated refund.requested), the fold locks the
    new one then (see :func:`fold_events`).
    """
    refund_keys: set[tuple[str, str]] = set()
    order_keys: set[tuple[str, str]] = set()
    requested: set[tuple[str, str]] = set()
    for event in events:
        if event.type.startswith("refund."):
            key = (event.store_id, event.refund_id)
            refund_keys.add(key)
            if event.type == "refund.requested":
                order_keys.add((event.store_id, event.order_id))
                requested.add(key)
        else:
            order_keys.add((event.store_id, event.order_id))
    unknown = sorted(refund_keys - requested)
    if unknown:
        dialect = dialect_of(session)
        rows = await session.execute(
            _orders_of_refunds(dialect), pairs_params(dialect, "refunds", unknown)
        )
        order_keys.update((r.store_id, r.order_id) for r in rows)
    return sorted(refund_keys), order_keys


async def fold_events(
    session: AsyncSession,
    events: Sequence[Any],
    contexts: dict[str, StoreContext],
    *,
    locked_orders: set[tuple[str, str]],
) -> set[Scope]:
    """Fold newly stored events into refund/order state and the daily buckets.

    The caller holds the locks of the events' refunds and of ``locked_orders``.
    """
    refund_events: dict[tuple[str, str], list[Any]] = defaultdict(list)
    order_events: dict[tuple[str, str], list[Any]] = defaultdict(list)
    for event in events:
        if event.type.startswith("refund."):
            refund_events[(event.store_id, event.refund_id)].append(event)
        else:
            order_events[(event.store_id, event.order_id)].append(event)

    # Refunds: this batch's, and every sibling on the orders already locked.
    refund_keys = sorted(refund_events)
    stored = await _load_refunds(session, refund_keys, sorted(locked_orders))
    refunds = {k: stored[k] for k in refund_keys if k in stored}
    affected_orders: set[tuple[str, str]] = set(order_events)
    for key, evs in refund_events.items():
        state = refunds.get(key)
        if state is None:
            state = refunds[key] = RefundState(store_id=key[0], refund_id=key[1])
        before = state.order_id
        for event in evs:
            fold_refund_event(state, event)
        for order_id in (before, state.order_id):
            if order_id is not None:
                affected_orders.add((key[0], order_id))

    # Orders whose lock could not be known up front: rare (see _keys_to_lock).
    late = sorted(affected_orders - locked_orders)
    if late:
        await lock_keys(session, (lock_key("order", *k) for k in late))
        stored.update(await _load_refunds(session, [], late))
    order_keys = sorted(affected_orders)
    orders, old_contributions = await _load_orders(session, order_keys)
    stored.update(refunds)  # this batch's fresher states win over the stored ones
    refunds_by_order: dict[tuple[str, str], list[RefundState]] = defaultdict(list)
    for state in stored.values():
        if state.order_id is not None:
            refunds_by_order[(state.store_id, state.order_id)].append(state)
    for key, evs in order_events.items():
        order = orders.get(key)
        if order is None:
            order = orders[key] = OrderState(store_id=key[0], order_id=key[1])
        for event in evs:
            fold_order_event(order, event)

    deltas: dict[tuple[str, str, date], list[int]] = {}
    new_contributions: dict[tuple[str, str], Contribution] = {}
    for key in order_keys:
        ctx = contexts[key[0]]
        new = contribution(
            orders.get(key),
            refunds_by_order.get(key, ()),
            tz=ctx.tz,
            quality_reasons=ctx.quality_reasons,
            reason_basis=ctx.reason_basis,
        )
        old = old_contributions.get(key, NO_CONTRIBUTION)
        add_delta(deltas, key[0], old, new)
        new_contributions[key] = new

    await _save_refunds(session, [refunds[k] for k in refund_keys])
    await _save_orders(session, order_keys, orders, new_contributions)
    await apply_bucket_deltas(session, deltas)
    return {(store_id, scope) for (store_id, scope, _day), row in deltas.items() if any(row)}


async def _load_refunds(
    session: AsyncSession,
    keys: Sequence[tuple[str, str]],
    order_keys: Sequence[tuple[str, str]],
) -> dict[tuple[str, str], RefundState]:
    """These refunds, and every refund of these orders, in one statement."""
    if not keys and not order_keys:
        return {}
    dialect = dialect_of(session)
    params = {
        **pairs_params(dialect, "refunds", keys),
        **pairs_params(dialect, "orders", order_keys),
    }
    rows = await session.execute(_refunds_query(dialect, bool(keys), bool(order_keys)), params)
    return {(r[0], r[1]): RefundState(*r) for r in rows}


async def _load_orders(
    session: AsyncSession, keys: Sequence[tuple[str, str]]
) -> tuple[dict[tuple[str, str], OrderState], dict[tuple[str, str], Contribution]]:
    if not keys:
        return {}, {}
    dialect = dialect_of(session)
    rows = await session.execute(_orders_query(dialect), pairs_params(dialect, "orders", keys))
    orders: dict[tuple[str, str], OrderState] = {}
    contributions: dict[tuple[str, str], Contribution] = {}
    n = len(_ORDER_FIELDS)
    for r in rows:
        key = (r.store_id, r.order_id)
        orders[key] = OrderState(*r[:n])
        contributions[key] = Contribution(*r[n:])
    return orders, contributions


async def _save_refunds(session: AsyncSession, states: Sequence[RefundState]) -> None:
    if not states:
        return
    await upsert_rows(
        session,
        RefundRecord.__table__,
        ["store_id", "refund_id"],
        _REFUND_FIELDS[2:],
        _REFUND_FIELDS,
        [_refund_values(s) for s in states],
    )


async def _save_orders(
    session: AsyncSession,
    keys: Sequence[tuple[str, str]],
    orders: dict[tuple[str, str], OrderState],
    contributions: dict[tuple[str, str], Contribution],
) -> None:
    """Upsert each affected order's state and its new contribution."""
    if not keys:
        return
    rows = []
    for key in keys:
        order = orders.get(key) or OrderState(store_id=key[0], order_id=key[1])
        rows.append(_order_values(order) + _contribution_values(contributions[key]))
    await upsert_rows(
        session,
        OrderRecord.__table__,
        ["store_id", "order_id"],
        [*_ORDER_FIELDS[2:], *_CONTRIBUTION_COLUMNS],
        [*_ORDER_FIELDS, *_CONTRIBUTION_COLUMNS],
        rows,
    )


async def apply_bucket_deltas(
    session: AsyncSession, deltas: dict[tuple[str, str, date], list[int]]
) -> None:
    """One upsert for all (store, scope, day) deltas, in key order (no deadlocks)."""
    rows = [
        (store_id, scope, day, *d) for (store_id, scope, day), d in sorted(deltas.items()) if any(d)
    ]
    if not rows:
        return
    await upsert_rows(
        session,
        DailyFigures.__table__,
        ["store_id", "product_id", "day"],
        _BUCKET_COUNTS,
        ["store_id", "product_id", "day", *_BUCKET_COUNTS],
        rows,
        mode="add",
    )
