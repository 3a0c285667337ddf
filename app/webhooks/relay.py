"""The relay: claim due deliveries, send them outside any transaction, record each attempt.

Lease style (procrastinate's claim): one short transaction marks due rows
``delivering`` with a lease (``FOR UPDATE SKIP LOCKED`` on PostgreSQL, so
replicas never claim the same row); the HTTP request runs with no transaction
open; a second short transaction records the attempt and the outcome. A row
whose process died mid-send is claimed again once its lease has expired.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from fractions import Fraction
from typing import Any

import httpx
from sqlalchemy import and_, or_, select, update

from app.clock import Clock
from app.config import Settings
from app.db.engine import Database
from app.webhooks.backoff import (
    MAX_ATTEMPTS,
    classify_response,
    endpoint_failing_too_long,
    next_retry_delay,
    parse_retry_after,
)
from app.webhooks.formats import render_robot, standard_body
from app.webhooks.models import Delivery, DeliveryAttempt, WebhookSubscription
from app.webhooks.robot_limits import robot_send_plan
from app.webhooks.signing import dingtalk_signed_url, standard_headers
from app.webhooks.ssrf import UrlRefused, parse_allowed_networks, pinned_client, resolve_and_vet

log = logging.getLogger("refundwatch.relay")

EXCERPT_CHARS = 500
LEASE_EXPIRED = "lease expired: the sending process stopped before recording a result"


@dataclass(slots=True)
class SendResult:
    status_code: int | None
    error: str | None
    duration_ms: int
    excerpt: str | None
    retry_after: str | None


@dataclass(frozen=True, slots=True)
class Message:
    """One HTTP request: the deliveries it carries (several for a robot digest)."""

    deliveries: tuple[Delivery, ...]


def secrets_for(sub: WebhookSubscription, now: datetime) -> list[str]:
    """The current secret, plus the previous one during its 24 h overlap."""
    secrets = [sub.secret] if sub.secret else []
    if (
        sub.previous_secret
        and sub.previous_secret_expires_at
        and sub.previous_secret_expires_at > now
    ):
        secrets.append(sub.previous_secret)
    return secrets


def build_request(
    sub: WebhookSubscription, deliveries: Sequence[Delivery], now: datetime
) -> tuple[str, bytes, dict[str, str]]:
    """URL, body and headers for one message (pure apart from the clock value)."""
    if sub.format == "standard":
        (delivery,) = deliveries
        body = standard_body(delivery.event_type, delivery.created_at, delivery.payload)
        headers = standard_headers(
            secrets_for(sub, now), delivery.msg_id, int(now.timestamp()), body
        )
        return sub.url, body, headers
    # A test ping merged into a digest with real alerts must not replace them: the
    # alerts are what the message carries (the robot receiving them proves the ping).
    alerts = [
        {**d.payload, "type": d.event_type, "occurred_at": d.created_at}
        for d in deliveries
        if d.event_type != "webhook.test"
    ]
    if not alerts:
        from app.webhooks.formats import test_message

        body = test_message(sub.format, now=now, subscription_id=str(sub.id), secret=sub.secret)
    else:
        body = render_robot(sub.format, alerts, secret=sub.secret, timestamp_s=int(now.timestamp()))
    url = sub.url
    if sub.format == "dingtalk" and sub.secret:
        url = dingtalk_signed_url(url, sub.secret, int(now.timestamp() * 1000))
    return url, body, {"content-type": "application/json"}


async def send(
    sub: WebhookSubscription,
    deliveries: Sequence[Delivery],
    *,
    now: datetime,
    settings: Settings,
) -> SendResult:
    """One HTTP POST to a vetted, pinned address; never raises for network trouble."""
    started = time.perf_counter()
    try:
        url, body, headers = build_request(sub, deliveries, now)
        target = await resolve_and_vet(
            url, parse_allowed_networks(settings.webhook_allowed_networks)
        )
        async with pinned_client(target, timeout=settings.webhook_timeout_seconds) as client:
            response = await client.post(target.url, content=body, headers=headers)
        return SendResult(
            status_code=response.status_code,
            error=None,
            duration_ms=int((time.perf_counter() - started) * 1000),
            excerpt=response.text[:EXCERPT_CHARS],
            retry_after=response.headers.get("retry-after"),
        )
    except UrlRefused as exc:
        error = f"url refused ({exc.reason}): {exc.message}"
    except httpx.TimeoutException as exc:
        error = f"timeout: {type(exc).__name__}"
    except httpx.HTTPError as exc:
        error = f"network error: {type(exc).__name__}: {exc}"[:EXCERPT_CHARS]
    return SendResult(None, error, int((time.perf_counter() - started) * 1000), None, None)


class Relay:
    def __init__(self, db: Database, settings: Settings, clock: Clock) -> None:
        self.db = db
        self.settings = settings
        self.clock = clock
        self._wake = asyncio.Event()
        self._stopping = False

    def wake(self) -> None:
        """Deliver now: an ingest just wrote outbox rows (latency under a second)."""
        self._wake.set()

    async def stop(self) -> None:
        self._stopping = True
        self._wake.set()

    async def run_forever(self) -> None:
        while not self._stopping:
            try:
                busy = await self.run_once()
            except Exception:
                log.exception("relay round failed; retrying")
                busy = 0
            if busy:
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(
                    self._wake.wait(), timeout=self.settings.relay_interval_seconds
                )
            self._wake.clear()

    async def run_once(self) -> int:
        """Claim, send and record one batch; returns how many deliveries it handled."""
        now = self.clock.now()
        claimed = await self._claim(now)
        if not claimed:
            return 0
        ids = sorted({d.webhook_id for d in claimed})
        async with self.db.transaction() as session:
            subs = {
                s.id: s
                for s in await session.scalars(
                    select(WebhookSubscription).where(WebhookSubscription.id.in_(ids))
                )
            }
            robot_urls = sorted({s.url for s in subs.values() if s.format != "standard"})
            recent = await self._recent_sends(session, robot_urls, now)
        # One lane per receiver: a standard webhook is its own lane; a group robot is
        # one lane per robot URL, so subscriptions sharing a robot share its limit.
        lanes: dict[tuple[str, str], list[Delivery]] = defaultdict(list)
        dead: list[Delivery] = []
        for delivery in claimed:
            sub = subs.get(delivery.webhook_id)
            if sub is None or not sub.enabled:
                dead.append(delivery)
            elif sub.format == "standard":
                lanes[("webhook", str(sub.id))].append(delivery)
            else:
                lanes[(sub.format, sub.url)].append(delivery)
        if dead:
            await self._cancel(dead, "subscription disabled or deleted", now)
        await asyncio.gather(
            *(
                self._serve_lane(
                    subs[deliveries[0].webhook_id],
                    deliveries,
                    recent.get(key[1], []) if key[0] != "webhook" else [],
                )
                for key, deliveries in lanes.items()
            )
        )
        return len(claimed)

    async def _claim(self, now: datetime) -> list[Delivery]:
        """Lease due deliveries to this process (short transaction, SKIP LOCKED).

        A row still ``delivering`` after its lease expired was claimed by a process
        that stopped before recording a result: that lost attempt is logged and
        counted, so a delivery that keeps killing its sender ends up ``failed``.
        """
        lease = now + timedelta(seconds=self.settings.relay_lease_seconds)
        due = (
            select(Delivery.id, Delivery.webhook_id, Delivery.status, Delivery.attempts)
            .where(
                or_(
                    and_(Delivery.status == "pending", Delivery.next_attempt_at <= now),
                    and_(Delivery.status == "delivering", Delivery.lease_expires_at < now),
                )
            )
            .order_by(Delivery.next_attempt_at, Delivery.id)
            .limit(self.settings.relay_batch_size)
            .with_for_update(skip_locked=True)
        )
        async with self.db.transaction() as session:
            rows = (await session.execute(due)).all()
            if not rows:
                return []
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
            claimed = list(
                await session.scalars(
                    select(Delivery).where(Delivery.id.in_(ids)).order_by(Delivery.id)
                )
            )
        return claimed

    async def _extend_lease(self, deliveries: Sequence[Delivery]) -> list[Delivery]:
        """Renew the lease just before a send; returns the deliveries still ours.

        One lease covers a whole claimed batch, but a webhook's messages go out one
        after another: without renewal, a slow endpoint would let another replica
        re-claim (and re-send) the tail of the batch.
        """
        lease = self.clock.now() + timedelta(seconds=self.settings.relay_lease_seconds)
        async with self.db.transaction() as session:
            stored: dict[int, datetime | None] = {
                row.id: row.lease_expires_at
                for row in await session.execute(
                    select(Delivery.id, Delivery.lease_expires_at)
                    .where(
                        Delivery.id.in_([d.id for d in deliveries]),
                        Delivery.status == "delivering",
                    )
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

    async def _recent_sends(
        self, session: Any, urls: list[str], now: datetime
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
                WebhookSubscription.url.in_(urls),
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

    async def _serve_lane(
        self, sub: WebhookSubscription, deliveries: list[Delivery], recent: list[datetime]
    ) -> None:
        """Send one receiver's due deliveries within its rate limit (digest if over)."""
        now = self.clock.now()
        messages: list[Message] = []
        plan = robot_send_plan(sub.format, recent, now, len(deliveries))
        if not plan.send_now:
            await self._postpone(deliveries, plan.not_before or now + timedelta(seconds=1))
            return
        rest = deliveries
        if plan.merge:
            messages.append(Message(tuple(rest[: plan.merge])))
            rest = rest[plan.merge :]
        else:
            messages.extend(Message((d,)) for d in rest[: plan.separate])
            rest = rest[plan.separate :]
        if rest:
            await self._postpone(rest, now + timedelta(seconds=1))
        for message in messages:
            mine = await self._extend_lease(message.deliveries)
            if not mine:
                continue  # another relay re-claimed them after our lease ran out
            result = await send(sub, mine, now=self.clock.now(), settings=self.settings)
            await self.record(sub, mine, result)

    async def _postpone(self, deliveries: Sequence[Delivery], when: datetime) -> None:
        async with self.db.transaction() as session:
            await session.execute(
                update(Delivery)
                .where(Delivery.id.in_([d.id for d in deliveries]), Delivery.status == "delivering")
                .values(status="pending", next_attempt_at=when, lease_expires_at=None)
            )

    async def _cancel(self, deliveries: Sequence[Delivery], reason: str, now: datetime) -> None:
        async with self.db.transaction() as session:
            await session.execute(
                update(Delivery)
                .where(Delivery.id.in_([d.id for d in deliveries]))
                .values(status="cancelled", last_error=reason, lease_expires_at=None)
            )

    async def record(
        self, sub: WebhookSubscription, deliveries: Sequence[Delivery], result: SendResult
    ) -> str:
        """Log the attempt for each delivery and move each to its next state."""
        now = self.clock.now()
        outcome = classify_response(result.status_code, result.error)
        async with self.db.transaction() as session:
            # The subscription (and so its deliveries) may have been deleted while the
            # request was in flight: log nothing for rows that are gone. The lock keeps
            # a concurrent delete out until this transaction ends.
            alive = set(
                await session.scalars(
                    select(Delivery.id)
                    .where(
                        Delivery.id.in_([d.id for d in deliveries]),
                        Delivery.status == "delivering",
                    )
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
                    delay = next_retry_delay(
                        attempts, retry_after=parse_retry_after(result.retry_after, now)
                    )
                    if delay is None:
                        values.update(status="failed")
                    else:
                        values.update(status="pending", next_attempt_at=now + delay)
                else:  # gone or failed: no retry helps
                    values.update(status="failed")
                await session.execute(
                    update(Delivery).where(Delivery.id == delivery.id).values(**values)
                )
            for webhook_id in sorted({d.webhook_id for d in deliveries}):
                await self._update_subscription(session, webhook_id, outcome, now)
        return outcome

    async def _update_subscription(
        self, session: Any, webhook_id: int, outcome: str, now: datetime
    ) -> None:
        sub = await session.get(WebhookSubscription, webhook_id, with_for_update=True)
        if sub is None:
            return
        if outcome == "delivered":
            sub.failing_since = None
            return
        if outcome == "gone":
            sub.enabled = False
            sub.disabled_reason = "the endpoint answered 410 Gone"
        if sub.failing_since is None:
            sub.failing_since = now
        elif endpoint_failing_too_long(sub.failing_since, now):
            sub.enabled = False
            sub.disabled_reason = "failing for 5 days in a row"
        sub.updated_at = now
