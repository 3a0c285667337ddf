"""Sending one webhook request: a vetted, pinned address, no redirects, never raising.

Every outcome comes back as a :class:`SendResult` (status, error, duration, an
excerpt of the answer) for the attempt log; network trouble is a result too. A
group robot's 2xx is read for its verdict (:mod:`app.webhooks.robot_answers`):
a refusal is an error in the robot's own words, not a delivery.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import httpx

from app.config import Settings
from app.webhooks.models import Delivery, WebhookSubscription
from app.webhooks.requests import build_request
from app.webhooks.robot_answers import ROBOT_FORMATS, RobotAnswer, read_robot_answer
from app.webhooks.ssrf import UrlRefused, parse_allowed_networks, pinned_client, resolve_and_vet

EXCERPT_CHARS = 500


@dataclass(slots=True)
class SendResult:
    status_code: int | None
    error: str | None
    duration_ms: int
    excerpt: str | None
    retry_after: str | None
    # A group robot's verdict on a 2xx answer (None for standard webhooks and non-2xx).
    robot: RobotAnswer | None = None


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
        robot = None
        if sub.format in ROBOT_FORMATS and response.is_success:
            robot = read_robot_answer(sub.format, response.content)
        return SendResult(
            status_code=response.status_code,
            error=None if robot is None or robot.delivered else robot.describe(sub.format),
            duration_ms=int((time.perf_counter() - started) * 1000),
            excerpt=response.text[:EXCERPT_CHARS],
            retry_after=response.headers.get("retry-after"),
            robot=robot,
        )
    except UrlRefused as exc:
        error = f"url refused ({exc.reason}): {exc.message}"
    except httpx.TimeoutException as exc:
        error = f"timeout: {type(exc).__name__}"
    except httpx.HTTPError as exc:
        error = f"network error: {type(exc).__name__}: {exc}"[:EXCERPT_CHARS]
    return SendResult(None, error, int((time.perf_counter() - started) * 1000), None, None)
