"""What ingest stores: raw events (idempotent by id) and each refund's and order's state.

Set-based: one statement per table per batch, never one per event. The hot
path's queries are built once per dialect (building a statement and its cache
key costs more than running it).
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Container, Iterable, Sequence
from dataclasses import fields
from datetime import datetime
from functools import lru_cache
from typing import Any, TypeVar

from sqlalchemy import select, union
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.dialect import (
    COPY_FROM_ROWS,
    copy_new_rows,
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
from app.events.fold import Contribution, OrderState, RefundState
from app.events.models import Event, OrderRecord, RefundRecord
from app.events.validation import Candidate

_T = TypeVar("_T")

Key = tuple[str, str]  # (store_id, refund_id or order_id)

_REFUND_FIELDS = [f.name for f in fields(RefundState)]
_ORDER_FIELDS = [f.name for f in fields(OrderState)]
# attrgetter, not dataclasses.astuple: astuple deep-copies every value.
_refund_values = operator.attrgetter(*_REFUND_FIELDS)
_order_values = operator.attrgetter(*_ORDER_FIELDS)
CONTRIBUTION_COLUMNS = (
    "c_product_id",
    "c_paid_day",
    "c_applied_day",
    "c_quality_day",
    "c_pending",
    "c_sku_id",
    "c_courier",
    "c_ship_band",
    "c_reason",
    "c_kind",
)
_contribution_values = operator.attrgetter(*(f.name for f in fields(Contribution)))

_EVENT_COLUMNS = (
    "event_id",
    "store_id",
    "type",
    "occurred_at",
    "received_at",
    "content_hash",
    "payload",
)

# Rows are read in the dataclasses' field order, so a row unpacks into one.
_REFUND_COLUMNS = [RefundRecord.__table__.c[name] for name in _REFUND_FIELDS]
_ORDER_COLUMNS = [OrderRecord.__table__.c[name] for name in (*_ORDER_FIELDS, *CONTRIBUTION_COLUMNS)]


def refund_state_columns() -> list[Any]:
    """The refunds table's columns in RefundState's field order."""
    return list(_REFUND_COLUMNS)


def order_state_columns() -> list[Any]:
    """The orders table's state columns in OrderState's field order."""
    return list(_ORDER_COLUMNS[: len(_ORDER_FIELDS)])


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


async def insert_events(
    session: AsyncSession, candidates: Sequence[Candidate], now: datetime
) -> set[str]:
    """Insert the raw events whose id is new; returns the ids inserted."""
    if not candidates:
        return set()
    rows = await upsert_rows(
        session,
        Event.__table__,
        ["event_id"],
        [],
        _EVENT_COLUMNS,
        # Key order: two batches holding the same new ids never wait on each other
        # crosswise in the unique index.
        _event_rows(sorted(candidates, key=lambda c: c.event.event_id), now),
        mode="nothing",
        returning="event_id",
    )
    return set(rows.scalars())


async def insert_new_events(
    session: AsyncSession, candidates: Sequence[Candidate], now: datetime
) -> tuple[set[str], dict[str, bytes]]:
    """The bulk road's step 1: the ids inserted, and the stored hash of each id known before.

    For a caller holding its stores' locks exclusively (a file import). On
    PostgreSQL a bulk reads which ids are known first, then COPYs the others
    straight into ``events`` (no staging table, no ``ON CONFLICT``); should an id
    arrive meanwhile (another store's event with the same id), the COPY is
    undone and the batch takes :func:`insert_events`. Same outcome either way.
    """
    if dialect_of(session) != "postgresql" or len(candidates) < COPY_FROM_ROWS:
        return await insert_and_read_known(session, candidates, now)
    known = await stored_hashes(session, [c.event.event_id for c in candidates])
    fresh = [c for c in candidates if c.event.event_id not in known]
    if not fresh:
        return set(), known
    if await copy_new_rows(session, Event.__table__, _EVENT_COLUMNS, _event_rows(fresh, now)):
        return {c.event.event_id for c in fresh}, known
    return await insert_and_read_known(session, candidates, now)


async def insert_and_read_known(
    session: AsyncSession, candidates: Sequence[Candidate], now: datetime
) -> tuple[set[str], dict[str, bytes]]:
    """Step 1 of the ordinary road: insert the new ids (``ON CONFLICT DO NOTHING``),
    then read the stored hash of each id that was known."""
    inserted = await insert_events(session, candidates, now)
    known = [c.event.event_id for c in candidates if c.event.event_id not in inserted]
    return inserted, await stored_hashes(session, known)


def _event_rows(candidates: Iterable[Candidate], now: datetime) -> list[tuple[Any, ...]]:
    return [
        (
            c.event.event_id,
            c.event.store_id,
            c.event.type,
            c.event.occurred_at,
            now,
            c.content_hash,
            c.payload,
        )
        for c in candidates
    ]


async def stored_hashes(session: AsyncSession, event_ids: Sequence[str]) -> dict[str, bytes]:
    """The stored content hash of each of these ids that is known."""
    if not event_ids:
        return {}
    rows = await session.execute(
        _stored_hashes(dialect_of(session)), values_params("ids", list(event_ids))
    )
    return {row.event_id: bytes(row.content_hash) for row in rows}


async def keys_to_lock(session: AsyncSession, events: Sequence[Any]) -> tuple[list[Key], set[Key]]:
    """The refunds and orders a batch will touch, known before any lock is taken.

    A lifecycle event names only its refund; its order comes from the refund's
    stored request, read here without a lock. Should that order change before
    the fold (a concurrent, earlier-dated refund.requested), the fold locks the
    new one then (see :func:`app.events.service.fold_events`).
    """
    refund_keys: set[Key] = set()
    order_keys: set[Key] = set()
    requested: set[Key] = set()
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


async def lock_batch(
    session: AsyncSession,
    store_ids: Iterable[str],
    refund_keys: Iterable[Key],
    order_keys: Iterable[Key],
) -> None:
    """All locks of a batch in one round trip, in the fixed phase order
    (stores shared → refunds → orders). A rebuild takes a store exclusively."""
    await lock_phases(
        session,
        [
            ((lock_key("store", s) for s in store_ids), True),
            ((lock_key("refund", *k) for k in refund_keys), False),
            ((lock_key("order", *k) for k in order_keys), False),
        ],
    )


async def lock_orders(session: AsyncSession, order_keys: Iterable[Key]) -> None:
    await lock_keys(session, (lock_key("order", *k) for k in order_keys))


async def load_refunds(
    session: AsyncSession, keys: Sequence[Key], order_keys: Sequence[Key]
) -> dict[Key, RefundState]:
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


async def load_orders(
    session: AsyncSession, keys: Sequence[Key]
) -> tuple[dict[Key, OrderState], dict[Key, Contribution]]:
    """These orders' states and what each contributes to the buckets now."""
    if not keys:
        return {}, {}
    dialect = dialect_of(session)
    rows = await session.execute(_orders_query(dialect), pairs_params(dialect, "orders", keys))
    orders: dict[Key, OrderState] = {}
    contributions: dict[Key, Contribution] = {}
    n = len(_ORDER_FIELDS)
    for r in rows:
        key = (r.store_id, r.order_id)
        orders[key] = OrderState(*r[:n])
        contributions[key] = Contribution(*r[n:])
    return orders, contributions


async def save_refunds(
    session: AsyncSession, states: Sequence[RefundState], *, stored: Container[Key] | None = None
) -> None:
    """Upsert these refund states; see :func:`save_orders` for ``stored``."""
    if not states:
        return
    todo: Sequence[RefundState] = states
    if stored is not None:
        new = [s for s in states if (s.store_id, s.refund_id) not in stored]
        if await _copy_new(session, RefundRecord.__table__, _REFUND_FIELDS, new, _refund_values):
            todo = [s for s in states if (s.store_id, s.refund_id) in stored]
    if not todo:
        return
    await upsert_rows(
        session,
        RefundRecord.__table__,
        ["store_id", "refund_id"],
        _REFUND_FIELDS[2:],
        _REFUND_FIELDS,
        [_refund_values(s) for s in todo],
    )


async def save_orders(
    session: AsyncSession,
    keys: Sequence[Key],
    orders: dict[Key, OrderState],
    contributions: dict[Key, Contribution],
    *,
    stored: Container[Key] | None = None,
) -> None:
    """Upsert each order's state and its new contribution.

    ``stored``: for a caller holding its stores' locks exclusively (a file import),
    the keys of the orders that were read from the database. The others cannot
    exist (nobody else writes these stores meanwhile), so a bulk of them is copied
    straight into the table instead of through a staging table and an upsert
    (:func:`app.db.dialect.copy_new_rows`; should one exist after all, the copy is
    undone and every row takes the upsert).
    """
    if not keys:
        return

    def values(key: Key) -> tuple[Any, ...]:
        order = orders.get(key) or OrderState(store_id=key[0], order_id=key[1])
        return _order_values(order) + _contribution_values(contributions[key])

    names = [*_ORDER_FIELDS, *CONTRIBUTION_COLUMNS]
    todo: Sequence[Key] = keys
    if stored is not None:
        new = [k for k in keys if k not in stored]
        if await _copy_new(session, OrderRecord.__table__, names, new, values):
            todo = [k for k in keys if k in stored]
    if not todo:
        return
    await upsert_rows(
        session,
        OrderRecord.__table__,
        ["store_id", "order_id"],
        [*_ORDER_FIELDS[2:], *CONTRIBUTION_COLUMNS],
        names,
        [values(k) for k in todo],
    )


async def _copy_new(
    session: AsyncSession,
    table: Any,
    names: Sequence[str],
    items: Sequence[_T],
    values: Callable[[_T], tuple[Any, ...]],
) -> bool:
    """COPY a bulk of rows known to be new (PostgreSQL); False when not done (too few,
    SQLite, or a key existed after all), and the caller upserts them."""
    if len(items) < COPY_FROM_ROWS or dialect_of(session) != "postgresql":
        return False
    return await copy_new_rows(session, table, names, [values(i) for i in items])


async def store_states(
    session: AsyncSession, store_id: str
) -> tuple[dict[str, OrderState], dict[str, list[RefundState]]]:
    """Every order and refund state of one store (a rebuild reads them all)."""
    refunds_by_order: dict[str, list[RefundState]] = {}
    for row in await session.execute(
        select(*_REFUND_COLUMNS).where(RefundRecord.store_id == store_id)
    ):
        state = RefundState(*row)
        if state.order_id is not None:
            refunds_by_order.setdefault(state.order_id, []).append(state)
    orders = {
        row.order_id: OrderState(*row)
        for row in await session.execute(
            select(*order_state_columns()).where(OrderRecord.store_id == store_id)
        )
    }
    return orders, refunds_by_order


async def save_contributions(
    session: AsyncSession, store_id: str, contributions: dict[str, Contribution]
) -> None:
    """Store each order's contribution (a rebuild); orders known only by refunds are added."""
    if not contributions:
        return
    await upsert_rows(
        session,
        OrderRecord.__table__,
        ["store_id", "order_id"],
        CONTRIBUTION_COLUMNS,
        ["store_id", "order_id", *CONTRIBUTION_COLUMNS],
        [
            (store_id, order_id, *_contribution_values(c))
            for order_id, c in sorted(contributions.items())
        ],
    )
