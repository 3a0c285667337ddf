"""Building one webhook request: URL, body and headers for a message (pure).

A message carries one delivery (a ``standard`` webhook) or several merged into
one digest (a group robot over its rate limit). Signing uses the current
secret, plus the previous one during its 24 h overlap after a rotation.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from app.webhooks.formats import render_notice, render_robot, standard_body, test_message
from app.webhooks.models import Delivery, WebhookSubscription
from app.webhooks.signing import dingtalk_signed_url, standard_headers


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
    if not deliveries[0].event_type.startswith(("alert.", "webhook.test")):
        (notice,) = deliveries  # notices are never merged into a digest
        body = render_notice(
            sub.format,
            notice.event_type,
            notice.payload,
            secret=sub.secret,
            timestamp_s=int(now.timestamp()),
        )
        return _robot_url(sub, now), body, {"content-type": "application/json"}
    # A test ping merged into a digest with real alerts must not replace them: the
    # alerts are what the message carries (the robot receiving them proves the ping).
    alerts = [
        {**d.payload, "type": d.event_type, "occurred_at": d.created_at}
        for d in deliveries
        if d.event_type != "webhook.test"
    ]
    if not alerts:
        body = test_message(sub.format, now=now, subscription_id=str(sub.id), secret=sub.secret)
    else:
        body = render_robot(sub.format, alerts, secret=sub.secret, timestamp_s=int(now.timestamp()))
    return _robot_url(sub, now), body, {"content-type": "application/json"}


def _robot_url(sub: WebhookSubscription, now: datetime) -> str:
    """The robot's URL, signed in the query string for a DingTalk robot with a secret."""
    if sub.format == "dingtalk" and sub.secret:
        return dingtalk_signed_url(sub.url, sub.secret, int(now.timestamp() * 1000))
    return sub.url
