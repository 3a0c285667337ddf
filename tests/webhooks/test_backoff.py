"""Retry policy: outcome classification, schedule, jitter, Retry-After."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.webhooks import backoff
from app.webhooks.backoff import (
    MAX_ATTEMPTS,
    RETRY_AFTER_CAP,
    RETRY_SCHEDULE,
    classify_response,
    next_retry_delay,
    parse_retry_after,
)

NOW = datetime(2026, 11, 26, 6, 0, 0, tzinfo=UTC)

# --------------------------------------------------------------------------- schedule


def test_schedule_matches_design() -> None:
    assert (
        timedelta(seconds=5),
        timedelta(minutes=5),
        timedelta(minutes=30),
        timedelta(hours=2),
        timedelta(hours=5),
        timedelta(hours=10),
        timedelta(hours=10),
    ) == RETRY_SCHEDULE
    assert MAX_ATTEMPTS == 8


@pytest.mark.parametrize("attempts_made", range(1, MAX_ATTEMPTS))
def test_delay_is_scheduled_value_within_jitter(attempts_made: int) -> None:
    base = RETRY_SCHEDULE[attempts_made - 1]
    rng = random.Random(attempts_made)
    for _ in range(200):
        delay = next_retry_delay(attempts_made, rng=rng)
        assert delay is not None
        assert base * 0.9 <= delay <= base * 1.1


def test_jitter_bounds_are_reached_and_spread() -> None:
    class Extreme(random.Random):
        def __init__(self, value: float) -> None:
            super().__init__()
            self.value = value

        def uniform(self, a: float, b: float) -> float:
            return a if self.value == 0 else b

    assert next_retry_delay(1, rng=Extreme(0)) == timedelta(seconds=4.5)
    assert next_retry_delay(1, rng=Extreme(1)) == timedelta(seconds=5.5)
    assert next_retry_delay(7, rng=Extreme(0)) == timedelta(hours=9)
    assert next_retry_delay(7, rng=Extreme(1)) == timedelta(hours=11)

    rng = random.Random(42)
    delays = {next_retry_delay(2, rng=rng) for _ in range(100)}
    assert len(delays) > 90  # jitter really spreads a thundering herd


def test_seeded_rng_is_deterministic() -> None:
    a = [next_retry_delay(n, rng=random.Random(7)) for n in range(1, MAX_ATTEMPTS)]
    b = [next_retry_delay(n, rng=random.Random(7)) for n in range(1, MAX_ATTEMPTS)]
    assert a == b


def test_default_rng_works() -> None:
    delay = next_retry_delay(1)
    assert delay is not None
    assert timedelta(seconds=4.5) <= delay <= timedelta(seconds=5.5)


def test_no_retry_after_the_last_attempt() -> None:
    assert next_retry_delay(MAX_ATTEMPTS - 1, rng=random.Random(1)) is not None
    assert next_retry_delay(MAX_ATTEMPTS) is None
    assert next_retry_delay(MAX_ATTEMPTS + 5) is None
    assert next_retry_delay(MAX_ATTEMPTS, retry_after=timedelta(seconds=1)) is None


def test_attempts_made_must_be_positive() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        next_retry_delay(0)


def test_total_schedule_spans_about_27_hours() -> None:
    assert sum(RETRY_SCHEDULE, timedelta()) == timedelta(hours=27, minutes=35, seconds=5)


# --------------------------------------------------------------------------- Retry-After


def test_longer_retry_after_wins() -> None:
    rng = random.Random(3)
    assert next_retry_delay(1, retry_after=timedelta(minutes=2), rng=rng) == timedelta(minutes=2)


def test_shorter_retry_after_does_not_shorten_the_schedule() -> None:
    delay = next_retry_delay(3, retry_after=timedelta(seconds=1), rng=random.Random(3))
    assert delay is not None
    assert delay >= timedelta(minutes=27)


def test_retry_after_is_capped() -> None:
    delay = next_retry_delay(1, retry_after=timedelta(days=30), rng=random.Random(3))
    assert delay == RETRY_AFTER_CAP == timedelta(hours=24)


@given(
    attempts=st.integers(1, MAX_ATTEMPTS - 1),
    retry_after=st.none() | st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=400)),
    seed=st.integers(0, 2**32),
)
def test_delay_properties(attempts: int, retry_after: timedelta | None, seed: int) -> None:
    delay = next_retry_delay(attempts, retry_after=retry_after, rng=random.Random(seed))
    assert delay is not None
    base = RETRY_SCHEDULE[attempts - 1]
    assert delay >= base * 0.9
    assert delay <= max(base * 1.1, RETRY_AFTER_CAP)
    if retry_after is not None:
        assert delay >= min(retry_after, RETRY_AFTER_CAP)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, None),
        ("", None),
        ("   ", None),
        ("0", timedelta(0)),
        ("120", timedelta(seconds=120)),
        (" 30 ", timedelta(seconds=30)),
        ("1.5", None),
        ("-5", None),
        ("soon", None),
        ("٣", None),  # a digit to str.isdigit, not to HTTP
        ("Thu, 26 Nov 2026 06:10:00 GMT", timedelta(minutes=10)),
        ("Thursday, 26-Nov-26 06:00:30 GMT", timedelta(seconds=30)),  # RFC 850 form
        ("Thu Nov 26 06:01:00 2026", timedelta(minutes=1)),  # asctime form
        ("Thu, 26 Nov 2026 05:00:00 GMT", timedelta(0)),  # in the past
        ("Thu, 26 Nov 2026 06:10:00 -0000", timedelta(minutes=10)),
        ("Thu, 26 Nov 2026 14:10:00 +0800", timedelta(minutes=10)),
    ],
)
def test_parse_retry_after(value: str | None, expected: timedelta | None) -> None:
    assert parse_retry_after(value, NOW) == expected


def test_parse_retry_after_with_non_utc_now() -> None:
    shanghai_now = NOW.astimezone(timezone(timedelta(hours=8)))
    assert parse_retry_after("Thu, 26 Nov 2026 06:10:00 GMT", shanghai_now) == timedelta(minutes=10)


def test_parse_retry_after_clamps_absurd_values() -> None:
    assert parse_retry_after("9" * 5000, NOW) == timedelta(days=366)
    assert parse_retry_after("99999999999", NOW) == timedelta(days=366)
    assert parse_retry_after("Fri, 31 Dec 9999 23:59:59 GMT", NOW) == timedelta(days=366)


def test_parse_retry_after_needs_aware_now() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        parse_retry_after("10", datetime(2026, 11, 26))


def test_parsed_retry_after_feeds_next_delay() -> None:
    retry_after = parse_retry_after("600", NOW)
    assert next_retry_delay(1, retry_after=retry_after, rng=random.Random(1)) == timedelta(
        minutes=10
    )


# --------------------------------------------------------------------------- classify


@pytest.mark.parametrize("status", [200, 201, 202, 204, 299])
def test_2xx_delivered(status: int) -> None:
    assert classify_response(status, None) == "delivered"


def test_410_gone() -> None:
    assert classify_response(410, None) == "gone"


@pytest.mark.parametrize("status", [408, 425, 429, 500, 502, 503, 504, 599])
def test_retryable_statuses(status: int) -> None:
    assert classify_response(status, None) == "retry"


@pytest.mark.parametrize("status", [400, 401, 403, 404, 405, 409, 413, 415, 422, 451, 499])
def test_other_4xx_fail_at_once(status: int) -> None:
    assert classify_response(status, None) == "failed"


@pytest.mark.parametrize("status", [100, 301, 302, 304, 307, 308, 600, 999])
def test_redirects_and_odd_codes_fail(status: int) -> None:
    assert classify_response(status, None) == "failed"


@pytest.mark.parametrize(
    "error", ["ConnectError: connection refused", "ReadTimeout", "url_refused: private_address"]
)
def test_network_errors_retry(error: str) -> None:
    assert classify_response(None, error) == "retry"


def test_status_wins_over_error_text() -> None:
    # e.g. a response arrived but reading the body failed afterwards
    assert classify_response(200, "body read failed") == "delivered"
    assert classify_response(404, "boom") == "failed"


def test_no_status_and_no_error_is_a_bug() -> None:
    with pytest.raises(ValueError, match="must carry an error"):
        classify_response(None, None)
    with pytest.raises(ValueError, match="must carry an error"):
        classify_response(None, "")


# --------------------------------------------------------------------------- endpoint health


def test_endpoint_failing_too_long() -> None:
    assert not backoff.endpoint_failing_too_long(None, NOW)
    assert not backoff.endpoint_failing_too_long(NOW - timedelta(days=4, hours=23), NOW)
    assert backoff.endpoint_failing_too_long(NOW - timedelta(days=5), NOW)
    assert backoff.endpoint_failing_too_long(NOW - timedelta(days=9), NOW)
