"""Rebuilding one store's buckets from its order/refund state.

Needed when what decides a day or a quality refund changes: the store's time
zone, or its policy's quality reasons or reason basis. It holds the store's
lock exclusively, so no ingest of that store interleaves.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from app.db.dialect import lock_key, lock_keys
from app.db.engine import Database
from app.events import repository as events
from app.events.fold import NO_CONTRIBUTION
from app.figures.repository import apply_bucket_deltas, clear_store_buckets
from app.figures.rules import BucketDeltas, contribution
from app.stores.repository import load_context, mark_figures_version, stores_built_before
from app.stores.rules import StoreContext


async def rebuild_store_figures(session: AsyncSession, ctx: StoreContext) -> int:
    """Recompute every order's contribution and the store's buckets; returns orders seen."""
    await lock_keys(session, [lock_key("store", ctx.store_id)])
    orders, refunds_by_order = await events.store_states(session, ctx.store_id)
    deltas = BucketDeltas()
    contributions = {}
    for order_id in sorted(orders.keys() | refunds_by_order.keys()):
        new = contribution(
            orders.get(order_id), refunds_by_order.get(order_id, []), tz=ctx.tz, policy=ctx.policy
        )
        deltas.add(ctx.store_id, NO_CONTRIBUTION, new)
        contributions[order_id] = new
    await clear_store_buckets(session, ctx.store_id)
    await events.save_contributions(session, ctx.store_id, contributions)
    await apply_bucket_deltas(session, deltas)
    return len(contributions)


FIGURES_VERSION = 2
"""The bucket rules' version: 2 added the SKU and breakdown buckets."""


async def rebuild_outdated_stores(db: Database) -> int:
    """Rebuild every store built with older bucket rules (after a migration); returns how many.

    One transaction per store, each holding that store's lock: ingest of the
    other stores goes on meanwhile.
    """
    async with db.read() as session:
        store_ids = await stores_built_before(session, FIGURES_VERSION)
    for store_id in store_ids:
        async with db.transaction() as session:
            ctx = await load_context(session, store_id)
            if ctx is not None:
                await rebuild_store_figures(session, ctx)
            await mark_figures_version(session, store_id, FIGURES_VERSION)
    return len(store_ids)
