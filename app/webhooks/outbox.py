"""The transactional outbox: one delivery row per matching subscription per alert.

Written in the same transaction as the alert (and so as the state change and
the events behind it): a crash loses neither, and the relay finds the row.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.alerts.models import Alert
from app.webhooks.models import Delivery, WebhookSubscription


def matches(subscription: WebhookSubscription, alert: Alert) -> bool:
    """The subscription's filters (None = everything) admit this alert."""
    return (
        (subscription.store_ids is None or alert.store_id in subscription.store_ids)
        and (subscription.tiers is None or alert.tier in subscription.tiers)
        and (subscription.alert_types is None or alert.type in subscription.alert_types)
    )


def new_msg_id() -> str:
    return "msg_" + uuid.uuid4().hex


def alert_payload(alert: Alert) -> dict[str, Any]:
    return {"alert_id": alert.alert_id, **alert.payload}


async def enqueue_deliveries(
    session: AsyncSession, alerts: Sequence[Alert], *, now: datetime
) -> int:
    """Write the deliveries of these alerts in the caller's transaction."""
    if not alerts:
        return 0
    subscriptions = list(
        await session.scalars(
            select(WebhookSubscription).where(WebhookSubscription.enabled.is_(True))
        )
    )
    rows = [
        {
            "webhook_id": sub.id,
            "alert_id": alert.alert_id,
            "event_type": alert.type,
            "msg_id": new_msg_id(),
            "payload": alert_payload(alert),
            "status": "pending",
            "attempts": 0,
            "next_attempt_at": now,
            "created_at": now,
        }
        for alert in alerts
        for sub in subscriptions
        if matches(sub, alert)
    ]
    if rows:
        await session.execute(insert(Delivery), rows)
        session.info["deliveries_enqueued"] = session.info.get("deliveries_enqueued", 0) + len(rows)
    return len(rows)
