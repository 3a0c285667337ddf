"""Retry policy of webhook deliveries (DESIGN §6): what an attempt's result means,
and when to try again.

Delivery is at-least-once: a delivery is retried on failures that may pass
(network errors, timeouts, 5xx, 429) on the schedule "about 5 s, 5 min, 30 min,
2 h, 5 h, 10 h, 10 h", then marked ``failed``. The schedule spans a little over
27 hours, so a receiver down for a deploy, a night or a long outage still gets
the alert, while a short blip costs only five seconds.

Each delay gets ±10 % jitter: after an outage, the deliveries that failed
together must not all come back in the same second and knock the receiver over
again. A ``Retry-After`` header longer than the scheduled delay is honoured (the
receiver knows its own state better than our schedule does), capped at 24 hours
so a bogus header cannot park a delivery for a year.

All functions are pure: time and randomness come in as arguments.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Literal

from app.webhooks.robot_answers import RobotAnswer

__all__ = [
    "ENDPOINT_DISABLE_AFTER",
    "JITTER",
    "MAX_ATTEMPTS",
    "RETRY_AFTER_CAP",
    "RETRY_SCHEDULE",
    "Outcome",
    "classify_response",
    "endpoint_failing_too_long",
    "next_retry_delay",
    "parse_retry_after",
]

RETRY_SCHEDULE: tuple[timedelta, ...] = (
    timedelta(seconds=5),
    timedelta(minutes=5),
    timedelta(minutes=30),
    timedelta(hours=2),
    timedelta(hours=5),
    timedelta(hours=10),
    timedelta(hours=10),
)
"""Delay before retry *n* (1-based) is ``RETRY_SCHEDULE[n - 1]``, before jitter."""

MAX_ATTEMPTS = 1 + len(RETRY_SCHEDULE)
"""The first attempt plus one per scheduled retry; after that the delivery is failed."""

JITTER = 0.10
"""Each delay is multiplied by a uniform factor in ``[1 - JITTER, 1 + JITTER]``."""

RETRY_AFTER_CAP = timedelta(hours=24)
"""The longest wait a ``Retry-After`` header can impose on one retry."""

ENDPOINT_DISABLE_AFTER = timedelta(days=5)
"""A subscription whose endpoint has failed without a success this long is disabled."""

# Far beyond any sane header, far below timedelta's limit: parsing never overflows.
_RETRY_AFTER_PARSE_LIMIT = timedelta(days=366)

Outcome = Literal["delivered", "retry", "gone", "refused", "failed"]

# 408 Request Timeout is a timeout reported by the server; 425 Too Early asks the
# client to repeat the request (RFC 8470); 429 Too Many Requests is named by
# DESIGN §6. Any 5xx is the receiver's own trouble and may pass.
_RETRYABLE_4XX = frozenset({408, 425, 429})
_ROBOT_OUTCOMES: dict[str, Outcome] = {
    "throttled": "retry",
    "busy": "retry",
    "unreadable": "retry",
    "misconfigured": "refused",
    "refused": "failed",
}


def classify_response(
    status_code: int | None, error: str | None, robot: RobotAnswer | None = None
) -> Outcome:
    """Say what an attempt's result means for its delivery.

    * ``delivered``: any 2xx -- for a group robot, only when ``robot`` (its verdict
      on the answer's body) accepted the message.
    * For a robot's 2xx that is not a delivery: ``retry`` when it throttled, was
      busy or gave no code; ``refused`` when only its configuration can make it
      take a message (bad signature, missing keyword, address not allowed, unknown
      token): failed at once, and the caller flags the subscription; ``failed``
      when it refused this message.
    * ``gone``: 410 -- the receiver says the endpoint is gone for good; the caller
      disables the subscription (DESIGN §6) instead of retrying for a day.
    * ``retry``: no response at all (``status_code`` is None: connection error,
      timeout, TLS failure, refused URL at send time), 408, 425, 429, and 5xx.
    * ``failed``: every other status, at once. A 4xx means the receiver refuses
      this request (bad signature, unknown route, payload it rejects): sending the
      same bytes again will not change its mind, and 27 hours of retries would
      only hide the misconfiguration from the seller. A 3xx is failed too:
      redirects are not followed (SSRF), so the subscription URL must be the
      final one. 1xx and out-of-range codes cannot be a final answer.

    Raises:
        ValueError: when there is neither a status code nor an error, which would
            mean the caller lost the result of the attempt.
    """
    if status_code is None:
        if not error:
            raise ValueError("an attempt without a status code must carry an error")
        return "retry"
    if 200 <= status_code <= 299:
        if robot is None or robot.verdict == "accepted":
            return "delivered"
        return _ROBOT_OUTCOMES[robot.verdict]
    if status_code == 410:
        return "gone"
    if status_code in _RETRYABLE_4XX or 500 <= status_code <= 599:
        return "retry"
    return "failed"


def next_retry_delay(
    attempts_made: int,
    *,
    retry_after: timedelta | None = None,
    rng: random.Random | None = None,
) -> timedelta | None:
    """Return how long to wait before the next attempt, or None when none is left.

    Args:
        attempts_made: attempts already made for this delivery, the one that just
            failed included (so 1 after the first attempt).
        retry_after: the receiver's ``Retry-After`` (see :func:`parse_retry_after`);
            used when longer than the jittered scheduled delay, capped at
            :data:`RETRY_AFTER_CAP`.
        rng: source of jitter; inject a seeded ``random.Random`` for
            deterministic tests.

    Raises:
        ValueError: ``attempts_made`` below 1 (nothing failed yet).
    """
    if attempts_made < 1:
        raise ValueError(f"attempts_made must be at least 1, got {attempts_made}")
    if attempts_made >= MAX_ATTEMPTS:
        return None
    scheduled = RETRY_SCHEDULE[attempts_made - 1]
    factor = (rng if rng is not None else random).uniform(1 - JITTER, 1 + JITTER)
    delay = scheduled * factor
    if retry_after is not None and retry_after > delay:
        delay = max(delay, min(retry_after, RETRY_AFTER_CAP))
    return delay


def parse_retry_after(value: str | None, now: datetime) -> timedelta | None:
    """Parse a ``Retry-After`` header: delta-seconds or an HTTP-date (RFC 9110 §10.2.3).

    Returns None when the header is absent or unreadable (then the schedule
    applies), ``timedelta(0)`` for a date already past. Values are clamped to a
    year so a hostile header cannot overflow; :func:`next_retry_delay` applies
    the real cap.

    Raises:
        ValueError: ``now`` is naive (an HTTP-date is absolute; comparing it with
            a naive time would silently be off by the server's UTC offset).
    """
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be timezone-aware")
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    if text.isascii() and text.isdigit():
        limit = int(_RETRY_AFTER_PARSE_LIMIT.total_seconds())
        # Check the length first: int() refuses strings of over 4300 digits.
        seconds = limit if len(text) > len(str(limit)) else min(int(text), limit)
        return timedelta(seconds=seconds)
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when.tzinfo is None:
        # "-0000" means "UTC, origin unknown"; HTTP-dates are GMT anyway.
        when = when.replace(tzinfo=UTC)
    delta = when - now
    if delta <= timedelta(0):
        return timedelta(0)
    return min(delta, _RETRY_AFTER_PARSE_LIMIT)


def endpoint_failing_too_long(failing_since: datetime | None, now: datetime) -> bool:
    """Say whether an endpoint has failed long enough to be disabled (DESIGN §6).

    ``failing_since`` is the time of the first failed attempt after the last
    success (None when the last attempt succeeded). Five days outlasts the whole
    retry schedule of one delivery several times over, so an endpoint is only
    disabled when it is plainly abandoned, not after one bad weekend.
    """
    if failing_since is None:
        return False
    return now - failing_since >= ENDPOINT_DISABLE_AFTER
