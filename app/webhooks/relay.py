"""The relay: claim due deliveries, send them outside any transaction, record each attempt.

Lease style (procrastinate's claim): one short transaction marks due rows
``delivering`` with a lease (``FOR UPDATE SKIP LOCKED`` on PostgreSQL, so
replicas never claim the same row); the HTTP request runs with no transaction
open; a second short transaction records the attempt and the outcome. A row
whose process died mid-send is claimed again once its lease has expired. The
states and their transitions are in :mod:`app.webhooks.outbox`; this module is
the loop that drives them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select

from app.clock import Clock
from app.config import Settings
from app.db.engine import Database
from app.ops import metrics
from app.webhooks import outbox
from app.webhooks.backoff import classify_response
from app.webhooks.models import Delivery, WebhookSubscription
from app.webhooks.robot_limits import robot_send_plan
from app.webhooks.sender import SendResult, send

log = logging.getLogger("refundwatch.relay")


def mergeable_into_digest(delivery: Delivery) -> bool:
    """Alerts (and test pings) merge into a robot digest; notices never do."""
    return delivery.event_type.startswith(("alert.", "webhook.test"))


@dataclass(frozen=True, slots=True)
class Message:
    """One HTTP request: the deliveries it carries (several for a robot digest)."""

    deliveries: tuple[Delivery, ...]


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

    def _lease(self, now: datetime) -> datetime:
        return now + timedelta(seconds=self.settings.relay_lease_seconds)

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

    async def claim(self, now: datetime) -> list[Delivery]:
        """Lease due deliveries to this process (one short transaction)."""
        async with self.db.transaction() as session:
            return await outbox.claim_due(
                session, now, self._lease(now), self.settings.relay_batch_size
            )

    async def run_once(self) -> int:
        """Claim, send and record one batch; returns how many deliveries it handled."""
        now = self.clock.now()
        claimed = await self.claim(now)
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
            recent = await outbox.recent_robot_sends(session, robot_urls, now)
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
            async with self.db.transaction() as session:
                await outbox.cancel(session, dead, "subscription disabled or deleted")
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
            # Over the limit: the alerts go as one digest; a notice (a connection that
            # failed, a daily report) is its own message, so it waits for a free slot
            # when alerts take this one.
            mergeable = [d for d in rest if mergeable_into_digest(d)]
            taken = mergeable or rest[:1]
            messages.append(Message(tuple(taken)))
            rest = [d for d in rest if d not in taken]
        else:
            messages.extend(Message((d,)) for d in rest[: plan.separate])
            rest = rest[plan.separate :]
        if rest:
            await self._postpone(rest, now + timedelta(seconds=1))
        for message in messages:
            # One lease covers a whole claimed batch, but a webhook's messages go out
            # one after another: without renewal, a slow endpoint would let another
            # replica re-claim (and re-send) the tail of the batch.
            async with self.db.transaction() as session:
                mine = await outbox.renew_lease(
                    session, message.deliveries, self._lease(self.clock.now())
                )
            if not mine:
                continue  # another relay re-claimed them after our lease ran out
            result = await send(sub, mine, now=self.clock.now(), settings=self.settings)
            await self.record(sub, mine, result)

    async def _postpone(self, deliveries: Sequence[Delivery], when: datetime) -> None:
        async with self.db.transaction() as session:
            await outbox.postpone(session, deliveries, when)

    async def record(
        self, sub: WebhookSubscription, deliveries: Sequence[Delivery], result: SendResult
    ) -> str:
        """Log the attempt for each delivery and move each to its next state."""
        outcome = classify_response(result.status_code, result.error, result.robot)
        async with self.db.transaction() as session:
            await outbox.record_attempt(session, deliveries, result, outcome, self.clock.now())
        metrics.attempt_recorded(sub, deliveries, outcome, result)
        return outcome
