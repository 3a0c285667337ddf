"""The tier evaluator: where a scope stands against each penalty line of its policy.

This module is pure (no I/O, no clock, no database) so that the API, the alert
evaluator and the what-if endpoint all reach the same verdict from the same
figures, and so that the rules can be tested densely on their own.

Exactness. A tier decision must never hinge on a rounding error: 1 quality
refund in 100 orders *is* exactly 1%, and 1 in 65 has no finite decimal. So
every decision uses integers, ``Decimal`` thresholds converted losslessly to
``fractions.Fraction``, and exact products. No float is ever involved, and the
rounded rate string is only for display.

"rate ≥ x" is always evaluated as ``count ≥ x × orders`` (DESIGN §4), never as a
division. One consequence: with ``orders == 0`` a rate condition is *true*
(``count ≥ 0``), so a scope with quality refunds but no orders in the window
(orders paid before the window, refunds inside it) is judged on ``min_count``
alone. This errs on the side of warning the seller: the platform counts those
refunds too.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction
from functools import lru_cache
from math import ceil, floor
from typing import Final, Literal

__all__ = [
    "DEFAULT_TIER_RULES",
    "STATE_SEVERITY",
    "TIER_LABELS_EN",
    "TIER_LABELS_ZH",
    "TierName",
    "TierRule",
    "TierScope",
    "TierState",
    "TierVerdict",
    "WarnSettings",
    "evaluate_tier",
    "evaluate_tiers",
    "quality_refund_rate",
    "what_if",
]

TierName = Literal["demotion", "listing_ban", "delisting"]
TierScope = Literal["store", "product"]
TierState = Literal["ok", "approaching", "breached", "unrated"]

TIER_LABELS_ZH: Final[dict[TierName, str]] = {
    "demotion": "降权",
    "listing_ban": "禁止上新",
    "delisting": "下架",
}

TIER_LABELS_EN: Final[dict[TierName, str]] = {
    "demotion": "demotion",
    "listing_ban": "new-listing ban",
    "delisting": "delisting",
}

#: Sort key for "worst first" listings (``/v1/risk``, products): higher is worse.
#: ``unrated`` sorts below ``ok`` because too few orders is not a risk signal.
STATE_SEVERITY: Final[dict[TierState, int]] = {
    "breached": 3,
    "approaching": 2,
    "ok": 1,
    "unrated": 0,
}

#: The rate is shown with this many decimal places ("0.012500").
RATE_PLACES: Final = 6


def _require_decimal(name: str, value: object) -> Decimal:
    # A float threshold would already carry a binary rounding error
    # (0.1 != 1/10), which is exactly what this module exists to avoid.
    if not isinstance(value, Decimal):
        raise TypeError(f"{name} must be a Decimal, not {type(value).__name__}")
    if not value.is_finite():
        raise ValueError(f"{name} must be finite, got {value}")
    return value


def _require_count(name: str, value: int) -> None:
    # bool is an int subclass; True orders is a caller bug, not a count.
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, not {type(value).__name__}")
    if value < 0:
        raise ValueError(f"{name} must be >= 0, got {value}")


@dataclass(frozen=True, slots=True)
class TierRule:
    """One penalty line: breached when ``count ≥ min_count`` and ``rate ≥ rate_threshold``."""

    tier: TierName
    scope: TierScope
    rate_threshold: Decimal
    min_count: int

    def __post_init__(self) -> None:
        threshold = _require_decimal("rate_threshold", self.rate_threshold)
        if not 0 < threshold <= 1:
            raise ValueError(f"rate_threshold must be in (0, 1], got {threshold}")
        _require_count("min_count", self.min_count)
        if self.min_count < 1:
            # min_count 0 would breach a scope with no refunds at all.
            raise ValueError(f"min_count must be >= 1, got {self.min_count}")


@dataclass(frozen=True, slots=True)
class WarnSettings:
    """When a scope that is not breached yet counts as ``approaching``, and when it is rated."""

    warn_ratio: Decimal = Decimal("0.8")
    warn_headroom: int = 1
    min_orders: int = 0

    def __post_init__(self) -> None:
        ratio = _require_decimal("warn_ratio", self.warn_ratio)
        if not 0 < ratio < 1:
            raise ValueError(f"warn_ratio must be in (0, 1), got {ratio}")
        _require_count("warn_headroom", self.warn_headroom)
        _require_count("min_orders", self.min_orders)


@dataclass(frozen=True, slots=True)
class TierVerdict:
    """Where one scope stands against one tier, with the headroom either way."""

    tier: TierName
    scope: TierScope
    state: TierState
    rate_threshold: Decimal
    min_count: int
    refunds_until_breach: int | None
    orders_to_recover: int | None


#: The default policy's lines (DESIGN §4). Pinduoduo publishes none: these are
#: examples a seller is expected to tune.
DEFAULT_TIER_RULES: Final[tuple[TierRule, ...]] = (
    TierRule(tier="demotion", scope="store", rate_threshold=Decimal("0.01"), min_count=5),
    TierRule(tier="listing_ban", scope="store", rate_threshold=Decimal("0.02"), min_count=10),
    TierRule(tier="delisting", scope="product", rate_threshold=Decimal("0.03"), min_count=5),
)


@lru_cache(maxsize=256)
def _as_fraction(value: Decimal) -> Fraction:
    # Policies hold a handful of distinct lines; converting each once keeps the
    # evaluation of hundreds of scopes per batch cheap.
    return Fraction(value)


def _is_breached(orders: int, count: int, min_count: int, threshold: Fraction) -> bool:
    return count >= min_count and count >= threshold * orders


def _refunds_until_breach(
    orders: int, count: int, min_count: int, threshold: Fraction
) -> int | None:
    # Adding k refunds keeps orders fixed, so both conditions are monotone in k
    # and the fewest k is the larger of the two shortfalls.
    if orders == 0:
        # DESIGN §4: null when orders is 0 — there is no rate to move, and a
        # number here would read as "safe for k more", which nothing guarantees.
        return None
    return max(0, min_count - count, ceil(threshold * orders) - count)


def _orders_to_recover(orders: int, count: int, threshold: Fraction) -> int:
    # Fewest m >= 1 with count < threshold × (orders + m), i.e.
    # orders + m > count / threshold, i.e. orders + m >= floor(count / threshold) + 1.
    # Breached implies count / threshold >= orders, so the result is >= 1.
    # Extra orders never lower the count, so a count-only breach (count >= min_count)
    # cannot be cured by orders; the rate is the part they fix.
    return floor(count / threshold) - orders + 1


def evaluate_tier(
    orders: int, quality_refunds: int, rule: TierRule, warn: WarnSettings
) -> TierVerdict:
    """Judge one scope's window figures against one tier (DESIGN §4).

    ``quality_refunds`` may exceed ``orders``: a refund counts on its request day,
    whose order may have been paid before the window.
    """
    _require_count("orders", orders)
    _require_count("quality_refunds", quality_refunds)
    count = quality_refunds
    threshold = _as_fraction(rule.rate_threshold)
    ratio = _as_fraction(warn.warn_ratio)

    until_breach = _refunds_until_breach(orders, count, rule.min_count, threshold)
    breached = _is_breached(orders, count, rule.min_count, threshold)

    state: TierState
    orders_to_recover: int | None = None
    if orders < warn.min_orders:
        # Too few orders for the rate to mean anything: no alerting on it, but the
        # headroom is still reported so a dashboard can show it.
        state = "unrated"
    elif breached:
        state = "breached"
        orders_to_recover = _orders_to_recover(orders, count, threshold)
    elif (until_breach is not None and until_breach <= warn.warn_headroom) or (
        count >= ratio * rule.min_count and count >= ratio * threshold * orders
    ):
        state = "approaching"
    else:
        state = "ok"

    return TierVerdict(
        tier=rule.tier,
        scope=rule.scope,
        state=state,
        rate_threshold=rule.rate_threshold,
        min_count=rule.min_count,
        refunds_until_breach=until_breach,
        orders_to_recover=orders_to_recover,
    )


def evaluate_tiers(
    orders: int,
    quality_refunds: int,
    rules: Sequence[TierRule],
    warn: WarnSettings,
    scope: TierScope,
) -> list[TierVerdict]:
    """Judge one scope against every rule of that scope, in the policy's order."""
    return [
        evaluate_tier(orders, quality_refunds, rule, warn) for rule in rules if rule.scope == scope
    ]


def what_if(
    orders: int,
    quality_refunds: int,
    extra_orders: int,
    extra_quality_refunds: int,
    rules: Sequence[TierRule],
    warn: WarnSettings,
    scope: TierScope,
) -> list[TierVerdict]:
    """The verdicts if ``extra_orders`` clean orders and ``extra_quality_refunds`` came in.

    Only additions are modelled: the window's past cannot be undone by a what-if,
    and a negative extra would let a client ask about figures that cannot exist.
    """
    _require_count("extra_orders", extra_orders)
    _require_count("extra_quality_refunds", extra_quality_refunds)
    return evaluate_tiers(
        orders + extra_orders, quality_refunds + extra_quality_refunds, rules, warn, scope
    )


def quality_refund_rate(quality_refunds: int, orders: int) -> str | None:
    """``quality_refunds / orders`` as a decimal string, half-even to 6 places; None if no orders.

    The division is exact (a ``Fraction``) and rounded once, so a value such as
    1/65 or a tie such as 3/2000000 (0.0000015 → "0.000002") rounds from its true
    value, not from a float approximation. For display only: decisions compare
    counts (see the module docstring).
    """
    _require_count("quality_refunds", quality_refunds)
    _require_count("orders", orders)
    if orders == 0:
        return None
    # round() on a Fraction rounds half to even, on the exact value.
    scaled = round(Fraction(quality_refunds * 10**RATE_PLACES, orders))
    # Built from a string so no Decimal context can round it again.
    return format(Decimal(f"{scaled}E-{RATE_PLACES}"), "f")
