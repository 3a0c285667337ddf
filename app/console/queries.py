"""The console's set reads: one statement per table for a page, whatever the number of stores.

Per-store reads live in the packages that own the tables (``app.figures``, ``app.stores``,
``app.alerts``, ``app.webhooks``, …) and the pages call them; what is here reads the same
tables for *every* store or subscription at once, which no API route needs.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import date
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.alerts.models import AlertState
from app.alerts.rules import AT_RISK
from app.figures.models import STORE_SCOPE, DailyFigures
from app.stores.models import Store
from app.stores.repository import contexts_page_query, read_contexts
from app.stores.rules import StoreContext
from app.webhooks.models import Delivery


async def all_store_contexts(session: AsyncSession) -> list[StoreContext]:
    """Every store with its policy's rules: one statement (stores joined to policies)."""
    return await read_contexts(session, contexts_page_query().order_by(Store.store_id))


async def store_ids(session: AsyncSession) -> list[str]:
    """Every store's id, in order (what the forms offer)."""
    return list(await session.scalars(select(Store.store_id).order_by(Store.store_id)))


DailyCounts = tuple[int, int, int, int]
"""A day's four counts, in :class:`~app.figures.rules.WindowFigures` field order."""


async def store_daily_series(
    session: AsyncSession, store_ids: Sequence[str], start: date, end: date
) -> dict[str, dict[date, DailyCounts]]:
    """The store-scope daily rows of these stores from ``start`` to ``end``, by store and day.

    One statement. The stores are named (not "every row with product_id ''") so that each
    store's rows are an index range of the primary key (store_id, product_id, day) rather
    than a scan past every product's rows. Plain tuples, not ``WindowFigures``: for 200 stores
    this is some 12,000 rows, and building an object per row would cost more than the read.
    """
    if not store_ids:
        return {}
    table = DailyFigures.__table__.c
    # Core, not the ORM: these are plain columns, and the ORM's row loading would cost more
    # than the rest of the overview together.
    connection = await session.connection()
    rows = await connection.execute(
        select(
            table.store_id,
            table.day,
            table.orders,
            table.applied_quality_refunds,
            table.quality_refunds,
            table.pending_quality_refunds,
        ).where(
            table.store_id.in_(list(store_ids)),
            table.product_id == STORE_SCOPE,
            table.day >= start,
            table.day <= end,
        )
    )
    series: dict[str, dict[date, DailyCounts]] = defaultdict(dict)
    for store_id, day, orders, applied, quality, pending in rows.all():  # one fetch, not row by row
        series[store_id][day] = (orders or 0, applied or 0, quality or 0, pending or 0)
    return series


async def products_at_risk(session: AsyncSession) -> dict[str, int]:
    """How many products of each store are approaching or breached (their stored state).

    The stored states are what the alerts follow: they are re-evaluated on every event that
    moves a product and when the window slides, so they are as fresh as the alerts.
    """
    rows = await session.execute(
        select(AlertState.store_id, func.count(func.distinct(AlertState.product_id)))
        .where(AlertState.product_id != STORE_SCOPE, AlertState.state.in_(AT_RISK))
        .group_by(AlertState.store_id)
    )
    return {store_id: int(count) for store_id, count in rows}


async def delivery_counts(session: AsyncSession) -> dict[int, dict[str, int]]:
    """Each subscription's deliveries by status: one statement for all subscriptions."""
    rows = await session.execute(
        select(Delivery.webhook_id, Delivery.status, func.count()).group_by(
            Delivery.webhook_id, Delivery.status
        )
    )
    counts: dict[int, dict[str, int]] = defaultdict(dict)
    for webhook_id, status, count in rows:
        counts[webhook_id][status] = int(count)
    return counts


async def recent_deliveries(
    session: AsyncSession, *, webhook_id: int | None, status: str | None, limit: int
) -> list[Delivery]:
    """The newest deliveries (of one subscription, of one status, when given)."""
    query: Any = select(Delivery)
    if webhook_id is not None:
        query = query.where(Delivery.webhook_id == webhook_id)
    if status is not None:
        query = query.where(Delivery.status == status)
    return list(await session.scalars(query.order_by(Delivery.id.desc()).limit(limit)))
