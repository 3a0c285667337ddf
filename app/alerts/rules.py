"""Which state change is which alert, and when a reminder falls due (pure)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Protocol

AT_RISK = ("approaching", "breached")


def transition_alert(previous: str, current: str) -> str | None:
    """The alert type a state change raises, or None when it raises none.

    ``unrated`` (too few orders to judge) after a risk state resolves it;
    moves between ``ok`` and ``unrated`` are quiet.
    """
    if previous == current:
        return None
    if current == "breached":
        return "alert.breached"
    if current == "approaching":
        return "alert.approaching"
    if previous in AT_RISK:
        return "alert.resolved"
    return None


def reminder_due(
    state: str, last_alert_at: datetime | None, now: datetime, interval: timedelta
) -> bool:
    """A scope still at risk is reminded every ``interval`` after its last alert."""
    return state in AT_RISK and last_alert_at is not None and now - last_alert_at >= interval


class SilenceLike(Protocol):
    store_id: str | None
    product_id: str | None
    tier: str | None


def silenced(
    silences: Iterable[SilenceLike], store_id: str, product_id: str | None, tier: str
) -> bool:
    """An active silence matches the alert (each of its fields unset or equal)."""
    return any(
        (s.store_id is None or s.store_id == store_id)
        and (s.product_id is None or s.product_id == product_id)
        and (s.tier is None or s.tier == tier)
        for s in silences
    )
