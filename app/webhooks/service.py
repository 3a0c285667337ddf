"""Webhook use cases: subscribe, edit, rotate a secret, retry, recover, test-ping."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.clock import Clock
from app.config import Settings
from app.db.engine import Database
from app.errors import Conflict, NotFound, field_error
from app.webhooks import repository
from app.webhooks.models import Delivery, WebhookSubscription
from app.webhooks.outbox import new_msg_id
from app.webhooks.relay import Relay
from app.webhooks.schemas import DeliveryOut, WebhookIn
from app.webhooks.sender import send
from app.webhooks.signing import generate_standard_secret, validate_standard_secret
from app.webhooks.ssrf import UrlRefused, parse_allowed_networks, resolve_and_vet

SECRET_OVERLAP = timedelta(hours=24)


async def vet_url(url: str, settings: Settings) -> None:
    """The SSRF guard at create/update time (it runs again at every send)."""
    try:
        await resolve_and_vet(url, parse_allowed_networks(settings.webhook_allowed_networks))
    except UrlRefused as exc:
        raise field_error("body.url", "url_refused", f"{exc.reason}: {exc.message}") from None


def secret_for(format: str, given: str | None) -> str | None:
    """The secret a new subscription keeps: generated or checked for ``standard``."""
    if format == "standard":
        if given is None:
            return generate_standard_secret()
        try:
            return validate_standard_secret(given)
        except ValueError as exc:
            raise field_error("body.secret", "invalid_secret", str(exc)) from None
    if format == "wecom" and given:
        raise field_error(
            "body.secret", "invalid_secret", "wecom group robots take no signing secret"
        )
    return given


async def require_subscription(session: AsyncSession, webhook_id: int) -> WebhookSubscription:
    sub = await repository.get_subscription(session, webhook_id)
    if sub is None:
        raise NotFound(f"no webhook {webhook_id}", code="webhook_not_found")
    return sub


async def create_subscription(
    session: AsyncSession, body: WebhookIn, secret: str | None, now: datetime
) -> WebhookSubscription:
    sub = WebhookSubscription(
        url=str(body.url),
        format=body.format,
        description=body.description,
        secret=secret,
        store_ids=body.store_ids,
        tiers=body.tiers,
        alert_types=body.alert_types,
        enabled=body.enabled,
        daily_report_at=body.daily_report_at,
        report_timezone=body.timezone,
        created_at=now,
        updated_at=now,
    )
    session.add(sub)
    await session.flush()
    return sub


async def patch_subscription(
    session: AsyncSession, webhook_id: int, fields: dict[str, Any], now: datetime
) -> WebhookSubscription:
    sub = await require_subscription(session, webhook_id)
    if "secret" in fields:
        if sub.format == "standard":
            raise field_error(
                "body.secret",
                "use_rotate_secret",
                "rotate a standard secret with POST …/rotate-secret",
            )
        fields["secret"] = secret_for(sub.format, fields["secret"])
    if "timezone" in fields:
        zone = fields.pop("timezone")
        if zone is not None:
            sub.report_timezone = zone
    for name, value in fields.items():
        if name in ("url", "enabled") and value is None:
            continue
        setattr(sub, name, value)
    if fields.get("enabled"):
        sub.disabled_reason = None
        sub.failing_since = None
    if fields.get("enabled") or fields.get("url") or "secret" in fields:
        # The robot's refusal was about the settings just changed; the next send says anew.
        sub.refusal_code = sub.refusal_message = None
        sub.refused_at = None
    sub.updated_at = now
    await session.flush()
    return sub


async def rotate_secret(
    session: AsyncSession, webhook_id: int, now: datetime
) -> WebhookSubscription:
    sub = await require_subscription(session, webhook_id)
    if sub.format != "standard":
        raise field_error(
            "path.webhook_id", "not_standard", "only standard webhooks have a rotatable secret"
        )
    sub.previous_secret = sub.secret
    sub.previous_secret_expires_at = now + SECRET_OVERLAP
    sub.secret = generate_standard_secret()
    sub.updated_at = now
    await session.flush()
    return sub


async def deliveries_out(session: AsyncSession, deliveries: list[Delivery]) -> list[DeliveryOut]:
    attempts = await repository.attempts_of(session, deliveries)
    return [DeliveryOut.of(d, attempts.get(d.id, [])) for d in deliveries]


async def retry_delivery(session: AsyncSession, delivery_id: int, now: datetime) -> Delivery:
    delivery = await session.get(Delivery, delivery_id, with_for_update=True)
    if delivery is None:
        raise NotFound(f"no delivery {delivery_id}", code="delivery_not_found")
    if delivery.status == "delivering":
        raise Conflict("this delivery is being sent right now", code="delivery_in_flight")
    delivery.status = "pending"
    delivery.next_attempt_at = now
    await session.flush()
    return delivery


async def recover(session: AsyncSession, webhook_id: int, since: datetime, now: datetime) -> int:
    if since.tzinfo is None:
        raise field_error("body.since", "naive_since", "since needs a UTC offset")
    await require_subscription(session, webhook_id)
    return await repository.requeue_failed(session, webhook_id, since, now)


async def test_ping(
    db: Database, webhook_id: int, settings: Settings, clock: Clock
) -> tuple[Delivery, str]:
    """Send a ``webhook.test`` now, outside any transaction, and log it like any attempt.

    Three short transactions: write the delivery (already leased to us), record
    the attempt after the send, read it back.
    """
    now = clock.now()
    async with db.transaction() as session:
        sub = await require_subscription(session, webhook_id)
        delivery = Delivery(
            webhook_id=sub.id,
            alert_id=None,
            event_type="webhook.test",
            msg_id=new_msg_id(),
            payload={
                "message": "refundwatch test message / 测试消息",
                "subscription_id": str(sub.id),
            },
            status="delivering",
            attempts=0,
            next_attempt_at=now,
            lease_expires_at=now + timedelta(minutes=1),
            created_at=now,
        )
        session.add(delivery)
        await session.flush()
    result = await send(sub, [delivery], now=now, settings=settings)
    outcome = await Relay(db, settings, clock).record(sub, [delivery], result)
    return delivery, outcome


test_ping.__test__ = False  # type: ignore[attr-defined]
