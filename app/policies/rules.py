"""A policy as the rules a store is judged by: built once from its row, then pure.

``PolicyRules`` is what folding, reading and evaluating need of a policy: the
window, which refunds count as quality refunds, the warning settings and the
penalty lines as :class:`~app.policies.tiers.TierRule` objects.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from functools import lru_cache
from typing import Any

from app.policies.tiers import TierRule, TierScope, TierVerdict, WarnSettings, evaluate_tiers


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

    def window(self, as_of: date) -> tuple[date, date]:
        """The first and last day of the window ending on ``as_of``."""
        return as_of - timedelta(days=self.window_days - 1), as_of

    def verdicts(self, orders: int, count: int, scope: TierScope) -> list[TierVerdict]:
        """Every tier of ``scope`` judged on these window figures (pure)."""
        return evaluate_tiers(orders, count, self.tiers, self.warn, scope)

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
) -> PolicyRules:
    """The rules of a stored policy (tier lines and warnings built once per distinct value)."""
    return PolicyRules(
        policy_id=policy_id,
        window_days=window_days,
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
    )


@lru_cache(maxsize=256)
def _rules(spec: tuple[tuple[str, str, str, int], ...]) -> tuple[TierRule, ...]:
    return tuple(
        TierRule(
            tier=tier,  # type: ignore[arg-type]
            scope=scope,  # type: ignore[arg-type]
            rate_threshold=Decimal(threshold),
            min_count=min_count,
        )
        for tier, scope, threshold, min_count in spec
    )


@lru_cache(maxsize=256)
def _warn(ratio: Decimal, headroom: int, min_orders: int) -> WarnSettings:
    return WarnSettings(warn_ratio=ratio, warn_headroom=headroom, min_orders=min_orders)
