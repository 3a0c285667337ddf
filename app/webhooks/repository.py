"""Subscription and delivery rows for the management API."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.webhooks.models import Delivery, DeliveryAttempt, WebhookSubscription


async def get_subscription(session: AsyncSession, webhook_id: int) -> WebhookSubscription | None:
    return await session.get(WebhookSubscription, webhook_id)


def subscriptions_query() -> Any:
    """Every subscription, for keyset paging on ``WebhookSubscription.id``."""
    return select(WebhookSubscription)


def deliveries_query(webhook_id: int, status: str | None) -> Any:
    """A subscription's deliveries, for keyset paging on ``Delivery.id`` (newest first)."""
    query = select(Delivery).where(Delivery.webhook_id == webhook_id)
    if status is not None:
        query = query.where(Delivery.status == status)
    return query


async def attempts_of(
    session: AsyncSession, deliveries: Sequence[Delivery]
) -> dict[int, list[DeliveryAttempt]]:
    """Every attempt of these deliveries, oldest first."""
    attempts: dict[int, list[DeliveryAttempt]] = defaultdict(list)
    if deliveries:
        for a in await session.scalars(
            select(DeliveryAttempt)
            .where(DeliveryAttempt.delivery_id.in_([d.id for d in deliveries]))
            .order_by(DeliveryAttempt.id)
        ):
            attempts[a.delivery_id].append(a)
    return attempts


async def delete_subscription(session: AsyncSession, sub: WebhookSubscription) -> None:
    """The subscription, its deliveries and their attempt log."""
    ids = select(Delivery.id).where(Delivery.webhook_id == sub.id)
    await session.execute(delete(DeliveryAttempt).where(DeliveryAttempt.delivery_id.in_(ids)))
    await session.execute(delete(Delivery).where(Delivery.webhook_id == sub.id))
    await session.delete(sub)


async def requeue_failed(
    session: AsyncSession, webhook_id: int, since: datetime, now: datetime
) -> int:
    result = await session.execute(
        update(Delivery)
        .where(
            Delivery.webhook_id == webhook_id,
            Delivery.status.in_(("failed", "cancelled")),
            Delivery.created_at >= since,
        )
        .values(status="pending", next_attempt_at=now, attempts=0)
    )
    return int(result.rowcount)  # type: ignore[attr-defined]
