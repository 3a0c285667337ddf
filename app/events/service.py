"""Folding newly stored events into each refund's and order's state.

The fold itself is pure (:mod:`app.events.fold`); this is the use case around
it: read the states the events touch, fold, and take the one late lock a
refund's moved order may need. Nothing here knows about figures: the road turns
the folded orders into bucket deltas.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.events import repository
from app.events.fold import (
    Contribution,
    OrderState,
    RefundState,
    fold_order_event,
    fold_refund_event,
)
from app.events.repository import Key


@dataclass(slots=True)
class Folded:
    """The states a batch changed, and what each affected order contributed before."""

    refunds: dict[Key, RefundState] = field(default_factory=dict)
    orders: dict[Key, OrderState] = field(default_factory=dict)
    order_keys: list[Key] = field(default_factory=list)
    refunds_by_order: dict[Key, list[RefundState]] = field(default_factory=dict)
    contributed: dict[Key, Contribution] = field(default_factory=dict)
    # the refunds read from the database (the others are new to it)
    stored_refunds: set[Key] = field(default_factory=set)


async def fold_events(
    session: AsyncSession,
    events: Sequence[Any],
    *,
    locked_orders: set[Key],
    lock_late: bool = True,
) -> Folded:
    """Fold newly stored events into refund and order state (not saved yet).

    The caller holds the locks of the events' refunds and of ``locked_orders``
    (or, with ``lock_late=False``, of the whole stores).
    """
    refund_events: dict[Key, list[Any]] = defaultdict(list)
    order_events: dict[Key, list[Any]] = defaultdict(list)
    for event in events:
        if event.type.startswith("refund."):
            refund_events[(event.store_id, event.refund_id)].append(event)
        else:
            order_events[(event.store_id, event.order_id)].append(event)

    # Refunds: this batch's, and every sibling on the orders already locked.
    refund_keys = sorted(refund_events)
    stored = await repository.load_refunds(session, refund_keys, sorted(locked_orders))
    refunds = {k: stored[k] for k in refund_keys if k in stored}
    affected_orders: set[Key] = set(order_events)
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

    # Orders whose lock could not be known up front: rare (see keys_to_lock).
    late = sorted(affected_orders - locked_orders)
    if late:
        if lock_late:
            await repository.lock_orders(session, late)
        stored.update(await repository.load_refunds(session, [], late))
    order_keys = sorted(affected_orders)
    orders, contributed = await repository.load_orders(session, order_keys)
    stored_refunds = set(stored)
    stored.update(refunds)  # this batch's fresher states win over the stored ones
    refunds_by_order: dict[Key, list[RefundState]] = defaultdict(list)
    for state in stored.values():
        if state.order_id is not None:
            refunds_by_order[(state.store_id, state.order_id)].append(state)
    for key, evs in order_events.items():
        order = orders.get(key)
        if order is None:
            order = orders[key] = OrderState(store_id=key[0], order_id=key[1])
        for event in evs:
            fold_order_event(order, event)
    return Folded(
        refunds={k: refunds[k] for k in refund_keys},
        orders=orders,
        order_keys=order_keys,
        refunds_by_order=dict(refunds_by_order),
        contributed=contributed,
        stored_refunds=stored_refunds,
    )


async def save_folded(
    session: AsyncSession,
    folded: Folded,
    contributions: dict[Key, Contribution],
    *,
    copy_new: bool = False,
) -> None:
    """Store the folded states, each affected order with its new contribution.

    ``copy_new``: the caller holds its stores' locks exclusively, so the states
    not read from the database are new to it and a bulk of them is copied in.
    """
    await repository.save_refunds(
        session,
        list(folded.refunds.values()),
        stored=folded.stored_refunds if copy_new else None,
    )
    await repository.save_orders(
        session,
        folded.order_keys,
        folded.orders,
        contributions,
        stored=folded.contributed if copy_new else None,
    )
