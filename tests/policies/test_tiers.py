"""The tier evaluator (DESIGN §4): exact lines, headroom both ways, warn settings."""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.policies.tiers import (
    DEFAULT_TIER_RULES,
    STATE_SEVERITY,
    TierRule,
    TierState,
    TierVerdict,
    WarnSettings,
    evaluate_tier,
    evaluate_tiers,
    quality_refund_rate,
    what_if,
)

DEMOTION = TierRule(tier="demotion", scope="store", rate_threshold=Decimal("0.01"), min_count=5)
LISTING_BAN = TierRule(
    tier="listing_ban", scope="store", rate_threshold=Decimal("0.02"), min_count=10
)
DELISTING = TierRule(tier="delisting", scope="product", rate_threshold=Decimal("0.03"), min_count=5)
DEFAULT_WARN = WarnSettings()
NO_HEADROOM = WarnSettings(warn_headroom=0)


def rule(threshold: str, min_count: int) -> TierRule:
    return TierRule(
        tier="demotion", scope="store", rate_threshold=Decimal(threshold), min_count=min_count
    )


def breaches(orders: int, count: int, tier_rule: TierRule) -> bool:
    """The line, written independently of the module: count ≥ min and count/orders ≥ x."""
    threshold = Fraction(tier_rule.rate_threshold)
    return count >= tier_rule.min_count and (orders == 0 or Fraction(count, orders) >= threshold)


# --- the line itself -------------------------------------------------------------


def test_one_refund_in_a_hundred_orders_is_exactly_one_percent() -> None:
    verdict = evaluate_tier(100, 1, rule("0.01", 1), DEFAULT_WARN)
    assert verdict.state == "breached"
    assert verdict.refunds_until_breach == 0
    assert quality_refund_rate(1, 100) == "0.010000"


def test_one_refund_in_a_hundred_and_one_orders_is_under_one_percent() -> None:
    verdict = evaluate_tier(101, 1, rule("0.01", 1), DEFAULT_WARN)
    assert verdict.state == "approaching"
    assert verdict.refunds_until_breach == 1


def test_one_refund_in_a_hundred_does_not_breach_while_the_count_is_short() -> None:
    verdict = evaluate_tier(100, 1, DEMOTION, NO_HEADROOM)
    assert verdict.state == "ok"
    assert verdict.refunds_until_breach == 4


def test_four_in_four_hundred_is_one_refund_short_of_demotion() -> None:
    verdict = evaluate_tier(400, 4, DEMOTION, DEFAULT_WARN)
    assert verdict.state == "approaching"
    assert verdict.refunds_until_breach == 1
    assert verdict.orders_to_recover is None


def test_five_in_four_hundred_breaches_demotion_and_needs_101_clean_orders() -> None:
    verdict = evaluate_tier(400, 5, DEMOTION, DEFAULT_WARN)
    assert verdict == TierVerdict(
        tier="demotion",
        scope="store",
        state="breached",
        rate_threshold=Decimal("0.01"),
        min_count=5,
        refunds_until_breach=0,
        orders_to_recover=101,
    )


def test_five_in_five_hundred_sits_exactly_on_the_line_and_breaches() -> None:
    verdict = evaluate_tier(500, 5, DEMOTION, DEFAULT_WARN)
    assert verdict.state == "breached"
    assert verdict.orders_to_recover == 1
    assert quality_refund_rate(5, 500) == "0.010000"


def test_five_in_five_hundred_and_one_is_just_under_the_line() -> None:
    verdict = evaluate_tier(501, 5, DEMOTION, NO_HEADROOM)
    assert verdict.state == "approaching"  # 5 ≥ 0.8 × 5 and 5/501 ≥ 0.8%
    assert verdict.refunds_until_breach == 1  # 6/501 ≥ 1%
    assert verdict.orders_to_recover is None


def test_recovering_from_five_in_four_hundred_takes_exactly_101_orders() -> None:
    assert evaluate_tier(400 + 101, 5, DEMOTION, NO_HEADROOM).state != "breached"
    assert evaluate_tier(400 + 100, 5, DEMOTION, NO_HEADROOM).state == "breached"
    assert Fraction(5, 501) < Fraction("0.01") <= Fraction(5, 500)


def test_refunds_until_breach_is_exact_when_the_rate_is_the_binding_part() -> None:
    # 10 refunds in 2000 orders: the count is met, the rate needs 20.
    verdict = evaluate_tier(2000, 10, DEMOTION, DEFAULT_WARN)
    assert verdict.refunds_until_breach == 10
    assert evaluate_tier(2000, 20, DEMOTION, DEFAULT_WARN).state == "breached"
    assert evaluate_tier(2000, 19, DEMOTION, DEFAULT_WARN).state != "breached"


def test_refunds_until_breach_rounds_a_fractional_line_up() -> None:
    # 1% of 450 is 4.5 refunds: the fifth one reaches it, and five is also min_count.
    assert evaluate_tier(450, 0, DEMOTION, DEFAULT_WARN).refunds_until_breach == 5
    # 1% of 1050 is 10.5: eleven refunds are needed.
    assert evaluate_tier(1050, 0, DEMOTION, DEFAULT_WARN).refunds_until_breach == 11


def test_listing_ban_needs_two_percent_and_ten_refunds() -> None:
    assert evaluate_tier(500, 10, LISTING_BAN, DEFAULT_WARN).state == "breached"
    assert evaluate_tier(501, 10, LISTING_BAN, DEFAULT_WARN).state == "approaching"
    assert evaluate_tier(400, 9, LISTING_BAN, DEFAULT_WARN).refunds_until_breach == 1
    assert evaluate_tier(500, 10, LISTING_BAN, DEFAULT_WARN).orders_to_recover == 1


def test_a_threshold_written_with_trailing_zeros_is_the_same_line() -> None:
    padded = rule("0.0100", 5)
    assert evaluate_tier(500, 5, padded, DEFAULT_WARN).state == "breached"
    assert evaluate_tier(501, 5, padded, NO_HEADROOM).state == "approaching"


def test_a_hundred_percent_line_is_only_breached_by_a_refund_on_every_order() -> None:
    full = rule("1", 1)
    assert evaluate_tier(3, 3, full, DEFAULT_WARN).state == "breached"
    assert evaluate_tier(3, 2, full, NO_HEADROOM).refunds_until_breach == 1
    assert evaluate_tier(3, 3, full, DEFAULT_WARN).orders_to_recover == 1


def test_more_refunds_than_orders_breach_and_need_many_orders() -> None:
    # Refunds on orders paid before the window still count.
    verdict = evaluate_tier(3, 7, DEMOTION, DEFAULT_WARN)
    assert verdict.state == "breached"
    assert verdict.orders_to_recover == 700 - 3 + 1
    assert quality_refund_rate(7, 3) == "2.333333"


# --- no orders ---------------------------------------------------------------------


def test_no_orders_and_no_refunds_is_ok_with_no_headroom_figure() -> None:
    verdict = evaluate_tier(0, 0, DEMOTION, DEFAULT_WARN)
    assert verdict.state == "ok"
    assert verdict.refunds_until_breach is None
    assert verdict.orders_to_recover is None
    assert quality_refund_rate(0, 0) is None


def test_no_orders_makes_the_rate_condition_true_so_the_count_decides() -> None:
    verdict = evaluate_tier(0, 5, DEMOTION, DEFAULT_WARN)
    assert verdict.state == "breached"
    assert verdict.refunds_until_breach is None
    assert verdict.orders_to_recover == 501  # 5/501 < 1% ≤ 5/500


def test_no_orders_with_four_refunds_is_approaching_by_warn_ratio() -> None:
    assert evaluate_tier(0, 4, DEMOTION, NO_HEADROOM).state == "approaching"
    assert evaluate_tier(0, 3, DEMOTION, DEFAULT_WARN).state == "ok"


# --- min_orders --------------------------------------------------------------------


def test_below_min_orders_the_scope_is_unrated_even_past_the_line() -> None:
    warn = WarnSettings(min_orders=100)
    verdict = evaluate_tier(99, 10, DEMOTION, warn)
    assert verdict.state == "unrated"
    assert verdict.refunds_until_breach == 0  # still reported
    assert verdict.orders_to_recover is None


def test_at_min_orders_the_scope_is_rated() -> None:
    warn = WarnSettings(min_orders=100)
    assert evaluate_tier(100, 10, DEMOTION, warn).state == "breached"
    assert evaluate_tier(100, 0, DEMOTION, warn).state == "ok"


def test_unrated_reports_the_headroom_it_would_have() -> None:
    verdict = evaluate_tier(50, 1, DEMOTION, WarnSettings(min_orders=100))
    assert verdict.state == "unrated"
    assert verdict.refunds_until_breach == 4


def test_no_orders_is_unrated_when_min_orders_is_set() -> None:
    assert evaluate_tier(0, 9, DEMOTION, WarnSettings(min_orders=1)).state == "unrated"


# --- warn_ratio ---------------------------------------------------------------------


def test_eighty_percent_of_min_count_and_of_the_rate_is_approaching() -> None:
    # 4 = 0.8 × 5 and 4/500 = 0.8% = 0.8 × 1%; headroom 0 so only the ratio can warn.
    assert evaluate_tier(500, 4, DEMOTION, NO_HEADROOM).state == "approaching"


def test_just_under_eighty_percent_of_the_rate_is_ok() -> None:
    # 4/501 < 0.8%.
    verdict = evaluate_tier(501, 4, DEMOTION, NO_HEADROOM)
    assert verdict.state == "ok"
    assert verdict.refunds_until_breach == 2


def test_just_under_eighty_percent_of_min_count_is_ok() -> None:
    # 3 < 0.8 × 5 = 4, although 3/300 is 1%.
    verdict = evaluate_tier(300, 3, DEMOTION, NO_HEADROOM)
    assert verdict.state == "ok"
    assert verdict.refunds_until_breach == 2


def test_warn_ratio_needs_both_the_count_and_the_rate() -> None:
    # 8 ≥ 4 but 8/1001 < 0.8%.
    assert evaluate_tier(1001, 8, DEMOTION, NO_HEADROOM).state == "ok"
    assert evaluate_tier(1000, 8, DEMOTION, NO_HEADROOM).state == "approaching"


def test_a_custom_warn_ratio_moves_the_early_line() -> None:
    half = WarnSettings(warn_ratio=Decimal("0.5"), warn_headroom=0)
    assert evaluate_tier(1000, 5, DEMOTION, half).state == "approaching"  # 0.5% ≥ 0.5 × 1%
    assert evaluate_tier(1001, 5, DEMOTION, half).state == "ok"


# --- warn_headroom ------------------------------------------------------------------


def test_one_refund_from_the_count_line_is_approaching_with_headroom_one() -> None:
    # min_count 2: 1 refund is below 0.8 × 2, so only the headroom can warn.
    two = rule("0.01", 2)
    assert evaluate_tier(10, 1, two, DEFAULT_WARN).state == "approaching"
    assert evaluate_tier(10, 1, two, NO_HEADROOM).state == "ok"
    assert evaluate_tier(10, 1, two, NO_HEADROOM).refunds_until_breach == 1


def test_one_refund_from_the_rate_line_is_approaching_with_headroom_one() -> None:
    # 20/2100 < 1% ≤ 21/2100; warn_ratio 0.99 keeps the ratio clause out of it.
    strict = WarnSettings(warn_ratio=Decimal("0.99"), warn_headroom=1)
    verdict = evaluate_tier(2100, 20, DEMOTION, strict)
    assert verdict.refunds_until_breach == 1
    assert verdict.state == "approaching"
    no_headroom = WarnSettings(warn_ratio=Decimal("0.99"), warn_headroom=0)
    assert evaluate_tier(2100, 20, DEMOTION, no_headroom).state == "ok"


def test_two_refunds_from_the_line_is_ok_with_headroom_one() -> None:
    two = rule("0.5", 3)
    verdict = evaluate_tier(10, 1, two, DEFAULT_WARN)  # 1 < 0.8 × 3: no ratio warning
    assert verdict.refunds_until_breach == 4
    assert verdict.state == "ok"
    assert evaluate_tier(10, 1, two, WarnSettings(warn_headroom=4)).state == "approaching"


# --- several tiers, what-if, severity --------------------------------------------------


def test_evaluate_tiers_keeps_only_the_scope_in_policy_order() -> None:
    store = evaluate_tiers(400, 5, DEFAULT_TIER_RULES, DEFAULT_WARN, "store")
    assert [(v.tier, v.state) for v in store] == [
        ("demotion", "breached"),
        ("listing_ban", "ok"),
    ]
    product = evaluate_tiers(100, 4, DEFAULT_TIER_RULES, DEFAULT_WARN, "product")
    assert [(v.tier, v.scope, v.state) for v in product] == [
        ("delisting", "product", "approaching")
    ]
    reversed_rules = tuple(reversed(DEFAULT_TIER_RULES))
    assert [v.tier for v in evaluate_tiers(1, 0, reversed_rules, DEFAULT_WARN, "store")] == [
        "listing_ban",
        "demotion",
    ]


def test_evaluate_tiers_with_no_rule_of_the_scope_is_empty() -> None:
    assert evaluate_tiers(10, 1, (DEMOTION,), DEFAULT_WARN, "product") == []


def test_default_tier_rules_are_the_documented_lines() -> None:
    assert [(r.tier, r.scope, r.rate_threshold, r.min_count) for r in DEFAULT_TIER_RULES] == [
        ("demotion", "store", Decimal("0.01"), 5),
        ("listing_ban", "store", Decimal("0.02"), 10),
        ("delisting", "product", Decimal("0.03"), 5),
    ]


def test_what_if_one_more_refund_tips_four_in_four_hundred_over() -> None:
    [demotion, _] = what_if(400, 4, 0, 1, DEFAULT_TIER_RULES, DEFAULT_WARN, "store")
    assert demotion.state == "breached"
    assert demotion.orders_to_recover == 101


def test_what_if_enough_clean_orders_bring_five_in_four_hundred_back() -> None:
    [demotion, _] = what_if(400, 5, 101, 0, DEFAULT_TIER_RULES, NO_HEADROOM, "store")
    assert demotion.state == "approaching"
    [still, _] = what_if(400, 5, 100, 0, DEFAULT_TIER_RULES, NO_HEADROOM, "store")
    assert still.state == "breached"


def test_what_if_with_nothing_extra_is_the_current_verdict() -> None:
    now = evaluate_tiers(777, 9, DEFAULT_TIER_RULES, DEFAULT_WARN, "store")
    assert what_if(777, 9, 0, 0, DEFAULT_TIER_RULES, DEFAULT_WARN, "store") == now


@pytest.mark.parametrize(("extra_orders", "extra_refunds"), [(-1, 0), (0, -1)])
def test_what_if_refuses_negative_extras(extra_orders: int, extra_refunds: int) -> None:
    with pytest.raises(ValueError):
        what_if(10, 1, extra_orders, extra_refunds, DEFAULT_TIER_RULES, DEFAULT_WARN, "store")


def test_state_severity_sorts_worst_first() -> None:
    states: list[TierState] = ["ok", "unrated", "breached", "approaching"]
    ordered = sorted(states, key=STATE_SEVERITY.__getitem__, reverse=True)
    assert ordered == ["breached", "approaching", "ok", "unrated"]
    assert set(STATE_SEVERITY) == {"ok", "approaching", "breached", "unrated"}


# --- validation -----------------------------------------------------------------------


@pytest.mark.parametrize("threshold", ["0", "-0.01", "1.0001", "NaN", "Infinity"])
def test_a_rate_threshold_outside_zero_to_one_is_refused(threshold: str) -> None:
    with pytest.raises(ValueError):
        rule(threshold, 5)


def test_a_float_rate_threshold_is_refused() -> None:
    bad: Any = 0.01
    with pytest.raises(TypeError):
        TierRule(tier="demotion", scope="store", rate_threshold=bad, min_count=5)


def test_a_zero_min_count_is_refused() -> None:
    with pytest.raises(ValueError):
        rule("0.01", 0)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"warn_ratio": Decimal("0")},
        {"warn_ratio": Decimal("1")},
        {"warn_headroom": -1},
        {"min_orders": -1},
    ],
)
def test_warn_settings_out_of_range_are_refused(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        WarnSettings(**kwargs)


def test_default_warn_settings_are_the_documented_ones() -> None:
    assert WarnSettings() == WarnSettings(warn_ratio=Decimal("0.8"), warn_headroom=1, min_orders=0)


@pytest.mark.parametrize(("orders", "count"), [(-1, 0), (0, -1)])
def test_negative_figures_are_refused(orders: int, count: int) -> None:
    with pytest.raises(ValueError):
        evaluate_tier(orders, count, DEMOTION, DEFAULT_WARN)
    with pytest.raises(ValueError):
        quality_refund_rate(count, orders)


def test_a_bool_is_not_a_count() -> None:
    with pytest.raises(TypeError):
        evaluate_tier(True, 0, DEMOTION, DEFAULT_WARN)


# --- the rate string ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("count", "orders", "rate"),
    [
        (5, 400, "0.012500"),
        (1, 65, "0.015385"),  # 0.0153846…
        (1, 8, "0.125000"),
        (2, 3, "0.666667"),
        (0, 7, "0.000000"),
        (7, 7, "1.000000"),
        (5, 80_000_000, "0.000000"),  # 0.0000000625, under half a unit
        (1, 2_000_000, "0.000000"),  # 0.0000005: a tie, to even 0
        (3, 2_000_000, "0.000002"),  # 0.0000015: a tie, to even 2
        (5, 2_000_000, "0.000002"),  # 0.0000025: a tie, to even 2
        (1, 1_999_999, "0.000001"),  # 0.00000050000025: just over the tie
        (1, 2_000_001, "0.000000"),  # just under the tie
    ],
)
def test_quality_refund_rate_rounds_half_even_from_the_exact_value(
    count: int, orders: int, rate: str
) -> None:
    assert quality_refund_rate(count, orders) == rate


@settings(max_examples=500, deadline=None, database=None)
@given(orders=st.integers(1, 10**9), count=st.integers(0, 10**6))
def test_quality_refund_rate_is_the_nearest_six_place_decimal(orders: int, count: int) -> None:
    rate = quality_refund_rate(count, orders)
    assert rate is not None
    whole, _, places = rate.partition(".")
    assert whole.isdigit() and len(places) == 6 and places.isdigit()
    error = Fraction(Decimal(rate)) - Fraction(count, orders)
    half_unit = Fraction(1, 2 * 10**6)
    assert abs(error) <= half_unit
    if abs(error) == half_unit:
        assert int(places[-1]) % 2 == 0


# --- properties -----------------------------------------------------------------------

thresholds = st.integers(1, 10_000).map(lambda n: Decimal(n).scaleb(-4))
rules = st.builds(
    TierRule,
    tier=st.just("demotion"),
    scope=st.just("store"),
    rate_threshold=thresholds,
    min_count=st.integers(1, 50),
)
warns = st.builds(
    WarnSettings,
    warn_ratio=st.integers(1, 99).map(lambda n: Decimal(n).scaleb(-2)),
    warn_headroom=st.integers(0, 5),
)


@settings(max_examples=1000, deadline=None, database=None)
@given(orders=st.integers(0, 100_000), count=st.integers(0, 3_000), tier_rule=rules, warn=warns)
def test_headroom_figures_are_the_fewest_that_cross_the_line(
    orders: int, count: int, tier_rule: TierRule, warn: WarnSettings
) -> None:
    verdict = evaluate_tier(orders, count, tier_rule, warn)
    breached = breaches(orders, count, tier_rule)
    assert (verdict.state == "breached") == breached

    until = verdict.refunds_until_breach
    if orders == 0:
        assert until is None
    else:
        assert until is not None
        assert breaches(orders, count + until, tier_rule)
        assert until == 0 or not breaches(orders, count + until - 1, tier_rule)
        assert (until == 0) == breached

    recover = verdict.orders_to_recover
    if breached:
        assert recover is not None and recover >= 1
        assert not breaches(orders + recover, count, tier_rule)
        assert breaches(orders + recover - 1, count, tier_rule)
    else:
        assert recover is None


@settings(max_examples=500, deadline=None, database=None)
@given(orders=st.integers(0, 100_000), count=st.integers(0, 3_000), tier_rule=rules, warn=warns)
def test_one_more_refund_never_improves_the_state(
    orders: int, count: int, tier_rule: TierRule, warn: WarnSettings
) -> None:
    before = evaluate_tier(orders, count, tier_rule, warn).state
    after = evaluate_tier(orders, count + 1, tier_rule, warn).state
    assert STATE_SEVERITY[after] >= STATE_SEVERITY[before]


@settings(max_examples=500, deadline=None, database=None)
@given(orders=st.integers(1, 100_000), count=st.integers(0, 3_000), tier_rule=rules, warn=warns)
def test_one_more_clean_order_never_worsens_the_state(
    orders: int, count: int, tier_rule: TierRule, warn: WarnSettings
) -> None:
    before = evaluate_tier(orders, count, tier_rule, warn).state
    after = evaluate_tier(orders + 1, count, tier_rule, warn).state
    assert STATE_SEVERITY[after] <= STATE_SEVERITY[before]


@settings(max_examples=300, deadline=None, database=None)
@given(
    orders=st.integers(0, 10_000),
    count=st.integers(0, 500),
    min_orders=st.integers(0, 10_000),
    tier_rule=rules,
)
def test_unrated_exactly_below_min_orders_and_headroom_still_reported(
    orders: int, count: int, min_orders: int, tier_rule: TierRule
) -> None:
    rated = evaluate_tier(orders, count, tier_rule, WarnSettings())
    verdict = evaluate_tier(orders, count, tier_rule, WarnSettings(min_orders=min_orders))
    if orders < min_orders:
        assert verdict.state == "unrated"
        assert verdict.orders_to_recover is None
        assert verdict.refunds_until_breach == rated.refunds_until_breach
    else:
        assert verdict == rated
