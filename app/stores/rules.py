"""A store with the rules it is judged by, and its days (pure)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from functools import lru_cache
from zoneinfo import ZoneInfo

from app.policies.rules import PolicyRules


@lru_cache(maxsize=512)
def zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


@dataclass(frozen=True, slots=True)
class StoreContext:
    """A store with its policy: what folding, reading and evaluating need to know."""

    store_id: str
    name: str | None
    timezone: str
    policy: PolicyRules
    created_at: datetime
    updated_at: datetime

    @property
    def tz(self) -> ZoneInfo:
        return zone(self.timezone)

    @property
    def policy_id(self) -> int:
        return self.policy.policy_id

    @property
    def window_days(self) -> int:
        return self.policy.window_days

    def today(self, now: datetime) -> date:
        """The store's local day at ``now`` (the default ``as_of``)."""
        return now.astimezone(self.tz).date()

    def window(self, as_of: date) -> tuple[date, date]:
        return self.policy.window(as_of)

    def figures_differ(self, other: StoreContext) -> bool:
        """Whether ``other`` decides days or quality refunds differently (a rebuild)."""
        return (self.timezone, self.policy.figure_rules) != (
            other.timezone,
            other.policy.figure_rules,
        )
