"""Which state change is which alert, and when a reminder falls due (pure)."""

from __future__ import annotations

from datetime import datetime, timedelta

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
