"""The transactional outbox: one delivery row per matching subscription per alert,
and the states a delivery moves through.

Writing (:func:`enqueue_deliveries`) happens in the same transaction as the
alert (and so as the state change and the events behind it): a crash loses
neither, and the relay finds the row. The relay then moves each row
``pending → delivering`` (a lease, :func:`claim_due`) ``→ delivered | pending
(retry) | failed | cancelled`` (:func:`record_attempt`), each step in a short
transaction of its own, with the HTTP request outside any transaction.
"""

from __future__ import annotations

import math
import uuid
from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime, timedelta
from fractions import Fraction
from typing import TYPE_CHECKING, Any

from sqlalchemy import and_, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.alerts.models import Alert
from app.webhooks.backoff import (
    MAX_ATTEMPTS,
    Outcome,
    endpoint_failing_too_long,
    next_retry_delay,
    parse_retry_after,
)
from app.webhooks.models import Delivery, DeliveryAttempt, WebhookSubscription

if TYPE_CHECKING:  # the sender needs httpx, which the road's writers (an import) never load
    from app.webhooks.sender import SendResult

LEASE_EXPIRED = "lease expired: the sending process stopped before recording a result"


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
    """Write the deliveries of these alerts (silenced ones get none); returns how many."""
    sendable = [a for a in alerts if not a.silenced]
    if not sendable:
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
        for alert in sendable
        for sub in subscriptions
        if matches(sub, alert)
    ]
    if rows:
        await session.execute(insert(Delivery), rows)
    return len(rows)


async def enqueue_notice(
    session: AsyncSession,
    event_type: str,
    store_id: str,
    data: dict[str, Any],
    *,
    now: datetime,
) -> int:
    """Write a notice (``connection.failing``) to every enabled subscription covering the store.

    Tier and alert-type filters are about alerts; a notice passes them.
    """
    subscriptions = await session.scalars(
        select(WebhookSubscription).where(WebhookSubscription.enabled.is_(True))
    )
    rows = [
        {
            "webhook_id": sub.id,
            "alert_id": None,
            "event_type": event_type,
            "msg_id": new_msg_id(),
            "payload": data,
            "status": "pending",
            "attempts": 0,
            "next_attempt_at": now,
            "created_at": now,
        }
        for sub in subscriptions
        if sub.store_ids is None or store_id in sub.store_ids
    ]
    if rows:
        await session.execute(insert(Delivery), rows)
    return len(rows)


async def claim_due(
    session: AsyncSession, now: datetime, lease: datetime, batch_size: int
) -> list[Delivery]:
    """Lease due deliveries to this process (``FOR UPDATE SKIP LOCKED``).

    A row still ``delivering`` after its lease expired was claimed by a process
    that stopped before recording a result: that lost attempt is logged and
    counted, so a delivery that keeps killing its sender ends up ``failed``.
    """
    due = (
        select(Delivery.id, Delivery.webhook_id, Delivery.status, Delivery.attempts)
        .where(
            or_(
                and_(Delivery.status == "pending", Delivery.next_attempt_at <= now),
                and_(Delivery.status == "delivering", Delivery.lease_expires_at < now),
            )
        )
        .order_by(Delivery.next_attempt_at, Delivery.id)
        .limit(batch_size)
        .with_for_update(skip_locked=True)
    )
    rows = (await session.execute(due)).all()
    ids = []
    for delivery_id, webhook_id, status, attempts in rows:
        if status == "delivering":
            attempts += 1
            session.add(
                DeliveryAttempt(
                    delivery_id=delivery_id,
                    webhook_id=webhook_id,
                    attempted_at=now,
                    status_code=None,
                    duration_ms=0,
                    error=LEASE_EXPIRED,
                    response_excerpt=None,
                    digest_size=1,
                )
            )
            exhausted = attempts >= MAX_ATTEMPTS
            await session.execute(
                update(Delivery)
                .where(Delivery.id == delivery_id)
                .values(
                    attempts=attempts,
                    last_error=LEASE_EXPIRED,
                    status="failed" if exhausted else "delivering",
                    lease_expires_at=None if exhausted else lease,
                )
            )
            if exhausted:
                continue
        ids.append(delivery_id)
    if not ids:
        return []
    await session.execute(
        update(Delivery)
        .where(Delivery.id.in_(ids))
        .values(status="delivering", lease_expires_at=lease)
    )
    return list(
        await session.scalars(select(Delivery).where(Delivery.id.in_(ids)).order_by(Delivery.id))
    )


async def renew_lease(
    session: AsyncSession, deliveries: Sequence[Delivery], lease: datetime
) -> list[Delivery]:
    """Renew the lease of the deliveries still ours (their lease unchanged); returns them."""
    stored: dict[int, datetime | None] = {
        row.id: row.lease_expires_at
        for row in await session.execute(
            select(Delivery.id, Delivery.lease_expires_at)
            .where(Delivery.id.in_([d.id for d in deliveries]), Delivery.status == "delivering")
            .with_for_update()
        )
    }
    mine = [d for d in deliveries if d.id in stored and stored[d.id] == d.lease_expires_at]
    if mine:
        await session.execute(
            update(Delivery)
            .where(Delivery.id.in_([d.id for d in mine]))
            .values(lease_expires_at=lease)
        )
    for d in mine:
        d.lease_expires_at = lease
    return mine


async def postpone(session: AsyncSession, deliveries: Sequence[Delivery], when: datetime) -> None:
    await session.execute(
        update(Delivery)
        .where(Delivery.id.in_([d.id for d in deliveries]), Delivery.status == "delivering")
        .values(status="pending", next_attempt_at=when, lease_expires_at=None)
    )


async def cancel(session: AsyncSession, deliveries: Sequence[Delivery], reason: str) -> None:
    await session.execute(
        update(Delivery)
        .where(Delivery.id.in_([d.id for d in deliveries]))
        .values(status="cancelled", last_error=reason, lease_expires_at=None)
    )


async def recent_robot_sends(
    session: AsyncSession, urls: Sequence[str], now: datetime
) -> dict[str, list[datetime]]:
    """Messages each robot URL received lately, over every subscription to it."""
    if not urls:
        return {}
    rows = await session.execute(
        select(
            WebhookSubscription.url,
            DeliveryAttempt.attempted_at,
            DeliveryAttempt.digest_size,
        )
        .join(WebhookSubscription, WebhookSubscription.id == DeliveryAttempt.webhook_id)
        .where(
            WebhookSubscription.url.in_(list(urls)),
            DeliveryAttempt.attempted_at > now - timedelta(minutes=2),
        )
    )
    # A digest is one message although it logs an attempt per delivery (each row
    # of a digest of n weighs 1/n). Count messages, not distinct timestamps:
    # separate messages recorded at the same instant are still separate sends.
    weights: dict[str, dict[datetime, Fraction]] = defaultdict(lambda: defaultdict(Fraction))
    for url, at, digest_size in rows:
        weights[url][at] += Fraction(1, max(digest_size, 1))
    return {
        url: sorted(at for at, w in by_time.items() for _ in range(math.ceil(w)))
        for url, by_time in weights.items()
    }


async def record_attempt(
    session: AsyncSession,
    deliveries: Sequence[Delivery],
    result: SendResult,
    outcome: Outcome,
    now: datetime,
) -> None:
    """Log the attempt for each delivery and move each to its next state."""
    # The subscription (and so its deliveries) may have been deleted while the
    # request was in flight: log nothing for rows that are gone. The lock keeps
    # a concurrent delete out until this transaction ends.
    alive = set(
        await session.scalars(
            select(Delivery.id)
            .where(Delivery.id.in_([d.id for d in deliveries]), Delivery.status == "delivering")
            .with_for_update()
        )
    )
    for delivery in deliveries:
        if delivery.id not in alive:
            continue
        attempts = delivery.attempts + 1
        session.add(
            DeliveryAttempt(
                delivery_id=delivery.id,
                webhook_id=delivery.webhook_id,
                attempted_at=now,
                status_code=result.status_code,
                duration_ms=result.duration_ms,
                error=result.error,
                response_excerpt=result.excerpt,
                digest_size=len(deliveries),
            )
        )
        values: dict[str, Any] = {
            "attempts": attempts,
            "last_status_code": result.status_code,
            "last_error": result.error,
            "lease_expires_at": None,
        }
        if outcome == "delivered":
            values.update(status="delivered", delivered_at=now)
        elif outcome == "retry":
            delay = next_retry_delay(attempts, retry_after=_pause(result, now))
            if delay is None:
                values.update(status="failed")
            else:
                values.update(status="pending", next_attempt_at=now + delay)
        else:  # gone, refused or failed: no retry helps
            values.update(status="failed")
        await session.execute(update(Delivery).where(Delivery.id == delivery.id).values(**values))
    for webhook_id in sorted({d.webhook_id for d in deliveries}):
        await _update_subscription(session, webhook_id, outcome, now, result)


def _pause(result: SendResult, now: datetime) -> timedelta | None:
    """How long the receiver asked us to wait: its Retry-After, or a robot's stated pause."""
    header = parse_retry_after(result.retry_after, now)
    robot = result.robot.pause if result.robot is not None else None
    if header is None or robot is None:
        return header or robot
    return max(header, robot)


async def _update_subscription(
    session: AsyncSession, webhook_id: int, outcome: str, now: datetime, result: SendResult
) -> None:
    sub = await session.get(WebhookSubscription, webhook_id, with_for_update=True)
    if sub is None:
        return
    if outcome == "delivered":
        sub.failing_since = None
        if sub.refusal_code is not None:  # the robot takes messages again: fixed
            sub.refusal_code = sub.refusal_message = None
            sub.refused_at = None
            sub.updated_at = now
        return
    if outcome == "gone":
        sub.enabled = False
        sub.disabled_reason = "the endpoint answered 410 Gone"
    if outcome == "refused" and result.robot is not None:
        # Kept on the subscription (not only in the log): every message will be
        # refused until someone fixes the robot's settings or this webhook.
        sub.refusal_code = (result.robot.code or "")[:32]
        sub.refusal_message = (result.robot.message or "")[:300]
        sub.refused_at = now
    if sub.failing_since is None:
        sub.failing_since = now
    elif endpoint_failing_too_long(sub.failing_since, now):
        sub.enabled = False
        sub.disabled_reason = "failing for 5 days in a row"
    sub.updated_at = now
