"""The console's pure parts: the overview's windows and order, the sparkline, how figures read,
and the session helpers (tokens, redirects, origins, the sign-in throttle)."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from fractions import Fraction

import pytest

from app.console.formatting import (
    decimal_percent,
    local_time,
    masked_url,
    percent,
    signed_points,
    threshold_percent,
)
from app.console.overview import (
    SPARKLINE_DAYS,
    overview_rows,
    sparkline,
    store_row,
    worst_of,
)
from app.console.sessions import (
    LoginThrottle,
    csrf_token_for,
    new_token,
    safe_next,
    same_origin,
    session_cookie,
    token_hash,
    tokens_match,
)
from app.figures.rules import WindowFigures, sliding_windows, trend
from app.policies.rules import policy_rules
from app.policies.tiers import DEFAULT_TIER_RULES
from app.stores.rules import StoreContext, zone

NOW = datetime(2026, 11, 26, 4, 0, tzinfo=UTC)


def context(
    store_id: str, *, window_days: int = 30, timezone: str = "Asia/Shanghai"
) -> StoreContext:
    return StoreContext(
        store_id=store_id,
        name=None,
        timezone=timezone,
        policy=policy_rules(
            policy_id=1,
            window_days=window_days,
            quality_reasons=["quality_issue", "not_as_described"],
            reason_basis="first",
            warn_ratio="0.8",
            warn_headroom=1,
            min_orders=0,
            reminder_interval_seconds=86400,
            tiers=[
                {
                    "tier": r.tier,
                    "scope": r.scope,
                    "rate_threshold": str(r.rate_threshold),
                    "min_count": r.min_count,
                }
                for r in DEFAULT_TIER_RULES
            ],
        ),
        created_at=NOW,
        updated_at=NOW,
    )


def random_series(
    rng: random.Random, end: date, days: int
) -> dict[date, tuple[int, int, int, int]]:
    series = {}
    for offset in range(days):
        if rng.random() < 0.3:
            continue  # days without a row
        orders = rng.randrange(0, 40)
        quality = rng.randrange(0, 3)
        series[end - timedelta(days=offset)] = (
            orders,
            quality + rng.randrange(0, 2),
            quality,
            rng.randrange(0, quality + 1),
        )
    return series


@pytest.mark.parametrize("seed", range(20))
def test_the_overview_windows_are_the_figures_sliding_windows(seed: int) -> None:
    rng = random.Random(seed)
    window = rng.choice((7, 30, 45))
    ctx = context(
        "s1",
        window_days=window,
        timezone=rng.choice(("Asia/Shanghai", "UTC", "America/Los_Angeles")),
    )
    as_of = ctx.today(NOW)
    series = random_series(rng, as_of + timedelta(days=2), 120)
    row = store_row(ctx, series, NOW)

    first = as_of - timedelta(days=SPARKLINE_DAYS - 1)
    # sliding_windows expects the series read from the first window's first day (as its
    # callers read it): a row from the day before would be subtracted without being added.
    figures = {
        day: WindowFigures(*counts)
        for day, counts in series.items()
        if day >= first - timedelta(days=window - 1)
    }
    expected = sliding_windows(figures, first, as_of, window)
    assert row.window_orders == [f.orders for _, f in expected]
    assert row.window_quality_refunds == [f.quality_refunds for _, f in expected]
    assert row.figures == expected[-1][1]
    assert row.trend == trend(expected[-1][1], expected[-8][1])
    assert row.tiers == ctx.policy.verdicts(
        row.figures.orders, row.figures.quality_refunds, "store"
    )


def test_worst_first_is_breached_then_approaching_then_the_rest_each_by_rate() -> None:
    as_of = context("x").today(NOW)
    stores = {  # store: (orders, quality refunds) in the window
        "ok-high-rate": (100, 1),  # 1 % with one refund: ok
        "breached-low": (400, 5),
        "approaching": (500, 4),
        "breached-high": (100, 6),
        "no-orders": (0, 1),
        "ok-low": (1000, 2),
    }
    series = {store: {as_of: (o, q, q, 0)} for store, (o, q) in stores.items()}
    rows = overview_rows([context(s) for s in sorted(stores)], series, {}, NOW)
    assert [(r.store_id, r.state) for r in rows] == [
        ("breached-high", "breached"),
        ("breached-low", "breached"),
        ("approaching", "approaching"),
        ("ok-high-rate", "ok"),
        ("ok-low", "ok"),
        ("no-orders", "ok"),
    ]


def test_the_worst_state_is_breached_then_approaching_then_ok_then_unrated() -> None:
    assert worst_of(["ok", "approaching", "unrated"]) == "approaching"
    assert worst_of(["unrated", "breached"]) == "breached"
    assert worst_of(["unrated", "ok"]) == "ok"
    assert worst_of([]) == "ok"


def test_the_sparkline_leaves_gaps_for_days_without_orders_and_keeps_the_line_inside() -> None:
    orders = [0, 0, 100, 100, 0, 100]
    quality = [0, 0, 1, 2, 0, 3]
    spark = sparkline(orders, quality, Decimal("0.01"), width=100, height=20)
    assert spark.path.count("M") == 2 and spark.path.count("L") == 1
    assert spark.line_y is not None and 0 < spark.line_y < 20
    assert (spark.first, spark.last) == (Fraction(1, 100), Fraction(3, 100))
    assert sparkline([0, 0], [0, 0], None).path == ""


# --------------------------------------------------------------------------- formatting


@pytest.mark.parametrize(
    ("rate", "text"),
    [
        (Fraction(5, 400), "1.25%"),
        (Fraction(1, 65), "1.54%"),
        (Fraction(1, 800), "0.12%"),  # 0.125 % rounds half to even
        (Fraction(3, 800), "0.38%"),  # 0.375 % rounds half to even
        (Fraction(0), "0.00%"),
        (None, "—"),
    ],
)
def test_a_rate_reads_as_a_percentage_rounded_half_even(rate: Fraction | None, text: str) -> None:
    assert percent(rate) == text


def test_lines_drifts_and_the_platforms_rates_read_as_percentages() -> None:
    assert threshold_percent(Decimal("0.01")) == "1%"
    assert threshold_percent(Decimal("0.025")) == "2.5%"
    assert decimal_percent("0.0219") == "2.19%"
    assert signed_points("0.002500") == "+0.25 pt"
    assert signed_points("-0.001234") == "−0.12 pt"
    assert signed_points("0.000000") == "±0.00 pt"


def test_times_read_in_the_store_zone() -> None:
    at = datetime(2026, 11, 25, 16, 30, tzinfo=UTC)
    assert local_time(at, zone("Asia/Shanghai")) == "2026-11-26 00:30"
    assert local_time(at, zone("America/Los_Angeles")) == "2026-11-25 08:30"


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        (
            "https://oapi.dingtalk.com/robot/send?access_token=abc",
            "https://oapi.dingtalk.com/robot/send?…",
        ),
        ("https://user:pw@hooks.example.com:8443/rw", "https://hooks.example.com:8443/rw"),
        ("https://hooks.example.com/rw", "https://hooks.example.com/rw"),
    ],
)
def test_webhook_urls_are_shown_without_their_secrets(url: str, shown: str) -> None:
    assert masked_url(url) == shown


# --------------------------------------------------------------------------- sessions


def test_session_tokens_are_random_and_only_their_hash_is_kept() -> None:
    first, second = new_token(), new_token()
    assert first != second and len(first) >= 43
    assert token_hash(first) != token_hash(second) and len(token_hash(first)) == 32


def test_each_session_has_its_own_csrf_token() -> None:
    first, second = new_token(), new_token()
    assert csrf_token_for(first) == csrf_token_for(first)
    assert csrf_token_for(first) != csrf_token_for(second)
    assert tokens_match(csrf_token_for(first), csrf_token_for(first))
    assert not tokens_match(csrf_token_for(first), csrf_token_for(second))
    assert not tokens_match(csrf_token_for(first), None) and not tokens_match("", "")


def test_the_cookie_is_secure_only_over_https() -> None:
    assert session_cookie(12, https=True).secure
    assert not session_cookie(12, https=False).secure
    flags = session_cookie(12, https=False)
    assert (flags.httponly, flags.samesite, flags.path, flags.max_age) == (
        True,
        "strict",
        "/console",
        43200,
    )


@pytest.mark.parametrize(
    ("target", "prefix", "result"),
    [
        ("/console/stores/s1?x=1", "/console", "/console/stores/s1?x=1"),
        ("/console", "/console", "/console"),
        ("/console?state=ok", "/console", "/console?state=ok"),
        ("/consolex", "/console", "/console"),
        ("//evil.example/console", "/console", "/console"),
        ("https://evil.example/console", "/console", "/console"),
        ("/console//evil.example", "/console", "/console"),
        ("/console\\evil", "/console", "/console"),
        (None, "/console", "/console"),
        ("/rw/console/alerts", "/rw/console", "/rw/console/alerts"),
    ],
)
def test_redirects_after_sign_in_stay_in_the_console(
    target: str | None, prefix: str, result: str
) -> None:
    assert safe_next(target, prefix) == result


@pytest.mark.parametrize(
    ("origin", "host", "same"),
    [
        (None, "rw.local", True),  # no Origin: not a cross-site form (browsers send one then)
        ("https://rw.local", "rw.local", True),
        ("http://RW.local:8000", "rw.local:8000", True),
        ("https://evil.example", "rw.local", False),
        ("null", "rw.local", False),
        ("https://rw.local", None, False),
    ],
)
def test_forms_are_accepted_from_this_origin_only(
    origin: str | None, host: str | None, same: bool
) -> None:
    assert same_origin(origin, host) is same


def test_the_throttle_pauses_a_client_after_its_failures_and_forgets_them() -> None:
    throttle = LoginThrottle(limit=3, window=timedelta(minutes=10))
    for minute in range(3):
        assert throttle.retry_after("a", NOW + timedelta(minutes=minute)) is None
        throttle.failed("a", NOW + timedelta(minutes=minute))
    assert throttle.retry_after("a", NOW + timedelta(minutes=3)) == timedelta(minutes=7)
    assert throttle.retry_after("b", NOW) is None  # another client is not held back
    assert throttle.retry_after("a", NOW + timedelta(minutes=10)) is None  # the first aged out
    throttle.failed("a", NOW + timedelta(minutes=10))
    assert throttle.retry_after("a", NOW + timedelta(minutes=10)) is not None
    throttle.succeeded("a")
    assert throttle.retry_after("a", NOW + timedelta(minutes=10)) is None
