"""A policy as the rules a store is judged by: built once from its row, then pure.

``PolicyRules`` is what folding, reading and evaluating need of a policy: the
window, which refunds count as quality refunds, the warning settings and the
penalty lines as :class:`~app.policies.tiers.TierRule` objects.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from functools import lru_cache
from typing import Any, Protocol

from app.policies.tiers import (
    TIER_LABELS_EN,
    TierRule,
    TierScope,
    TierVerdict,
    WarnSettings,
    evaluate_tiers,
)

log = logging.getLogger("refundwatch.policies")


class Counted(Protocol):
    """A window's figures as the tiers see them."""

    @property
    def orders(self) -> int: ...
    @property
    def quality_refunds(self) -> int: ...
    @property
    def applied_quality_refunds(self) -> int: ...


@dataclass(frozen=True, slots=True)
class PolicyRules:
    policy_id: int
    window_days: int
    quality_reasons: frozenset[str]
    reason_basis: str
    warn: WarnSettings
    tiers: tuple[TierRule, ...]
    reminder_interval_seconds: int
    # Platform after-sale labels → reason codes (imports and connectors use them).
    reason_aliases: Mapping[str, str] = field(default_factory=dict)
    # Which count the tiers judge: counted (quality_refunds) or applied
    # (applied_quality_refunds: a quality application counts even if withdrawn).
    count_basis: str = "counted"

    def window(self, as_of: date) -> tuple[date, date]:
        """The first and last day of the window ending on ``as_of``."""
        return as_of - timedelta(days=self.window_days - 1), as_of

    def verdicts(self, orders: int, count: int, scope: TierScope) -> list[TierVerdict]:
        """Every tier of ``scope`` judged on these window figures (pure)."""
        return evaluate_tiers(orders, count, self.tiers, self.warn, scope)

    def count(self, figures: Counted) -> int:
        """The count the tiers judge, per the policy's ``count_basis``."""
        if self.count_basis == "applied":
            return figures.applied_quality_refunds
        return figures.quality_refunds

    def judge(self, figures: Counted, scope: TierScope) -> list[TierVerdict]:
        """Every tier of ``scope`` judged on a window's figures, by the policy's basis."""
        return self.verdicts(figures.orders, self.count(figures), scope)

    @property
    def figure_rules(self) -> tuple[frozenset[str], str]:
        """What decides which refunds count: a change of it recomputes the figures."""
        return self.quality_reasons, self.reason_basis


def policy_rules(
    *,
    policy_id: int,
    window_days: int,
    quality_reasons: Any,
    reason_basis: str,
    warn_ratio: Any,
    warn_headroom: int,
    min_orders: int,
    reminder_interval_seconds: int,
    tiers: Any,
    reason_aliases: Any = None,
    count_basis: str = "counted",
) -> PolicyRules:
    """The rules of a stored policy (tier lines and warnings built once per distinct value)."""
    return PolicyRules(
        policy_id=policy_id,
        # Beyond these bounds (the API's) a window's first day could not be computed.
        window_days=min(max(window_days, 1), 366),
        quality_reasons=frozenset(quality_reasons),
        reason_basis=reason_basis,
        warn=_warn(Decimal(warn_ratio), warn_headroom, min_orders),
        tiers=_rules(
            tuple(
                (t["tier"], t["scope"], str(t["rate_threshold"]), int(t["min_count"]))
                for t in tiers
            )
        ),
        reminder_interval_seconds=reminder_interval_seconds,
        reason_aliases=dict(reason_aliases or {}),
        count_basis=count_basis,
    )


# The API refuses every value below at write time (app.policies.schemas). A row
# written before that check, or by hand, must still never stop ingest: a value
# out of range is brought to the nearest one the judge accepts, a line that
# cannot be read is left out, and a warning names the values. Both functions
# are cached per distinct value, so each warning is logged once.
_SMALLEST = Decimal("0.000001")
_LARGEST_RATIO = Decimal("0.999999")


@lru_cache(maxsize=256)
def _rules(spec: tuple[tuple[str, str, str, int], ...]) -> tuple[TierRule, ...]:
    rules = []
    for tier, scope, threshold, min_count in spec:
        try:
            line = Decimal(threshold)
        except ArithmeticError:
            line = Decimal("NaN")
        if tier not in TIER_LABELS_EN or scope not in ("store", "product") or not line.is_finite():
            log.warning(
                "policy tier line %r cannot be read; it is left out", (tier, scope, threshold)
            )
            continue
        kept = min(max(line, _SMALLEST), Decimal(1))
        count = max(min_count, 1)
        if (kept, count) != (line, min_count):
            log.warning(
                "policy tier %s/%s: rate_threshold %s and min_count %s are out of range; "
                "judged as %s and %s",
                tier,
                scope,
                threshold,
                min_count,
                kept,
                count,
            )
        rules.append(
            TierRule(
                tier=tier,
                scope=scope,  # type: ignore[arg-type]
                rate_threshold=kept,
                min_count=count,
            )
        )
    return tuple(rules)


@lru_cache(maxsize=256)
def _warn(ratio: Decimal, headroom: int, min_orders: int) -> WarnSettings:
    kept = min(max(ratio, _SMALLEST), _LARGEST_RATIO) if ratio.is_finite() else Decimal("0.8")
    settings = (kept, max(headroom, 0), max(min_orders, 0))
    if settings != (ratio, headroom, min_orders):
        log.warning(
            "policy warn_ratio %s, warn_headroom %s, min_orders %s are out of range; "
            "judged as %s, %s, %s",
            ratio,
            headroom,
            min_orders,
            *settings,
        )
    return WarnSettings(warn_ratio=settings[0], warn_headroom=settings[1], min_orders=settings[2])
