"""Rate limits of group robots, and the plan that respects them (DESIGN §6).

DingTalk and WeCom accept 20 messages a minute per robot; Feishu custom bots 5 a
second (and 100 a minute). Going over is not free: DingTalk answers "send too
fast" and throttles the robot for ten minutes, WeCom and Feishu drop the message
with an error. So the sender checks here *before* each send, using the times of
the messages it already sent to that robot:

* capacity for all pending alerts → send each as its own message;
* some capacity, but less than pending → merge *all* pending alerts into one
  digest message. One slot is used, nothing is dropped, and the remaining slots
  stay free for alerts that arrive in the next seconds;
* no capacity → wait until ``not_before``, when the oldest send leaves the window.

Windows slide: a send counts against a window of length ``w`` while it is less
than ``w`` old. That is stricter than any fixed-minute counting the platforms
might use, so it never exceeds theirs. Because our clock and the platform's see
a request at slightly different moments, the windows are widened by a small
safety margin (5 % by default) -- a hair of latency is far cheaper than a
ten-minute DingTalk ban.

The caller must record every request that reached the robot, whatever the
answer (a digest counts as one), and keep these times where every worker sees
them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

__all__ = [
    "DEFAULT_MARGIN_FRACTION",
    "ROBOT_LIMITS",
    "ROBOT_WINDOWS",
    "RobotPlan",
    "robot_send_plan",
]

ROBOT_LIMITS: Mapping[str, tuple[int, timedelta]] = {
    "dingtalk": (20, timedelta(seconds=60)),
    "wecom": (20, timedelta(seconds=60)),
    "feishu": (5, timedelta(seconds=1)),
}
"""The headline limit of each robot format: (messages, per window)."""

ROBOT_WINDOWS: Mapping[str, tuple[tuple[int, timedelta], ...]] = {
    "dingtalk": (ROBOT_LIMITS["dingtalk"],),
    "wecom": (ROBOT_LIMITS["wecom"],),
    # Feishu's custom-bot guide gives both 5 a second and 100 a minute; a steady
    # 5 a second would break the minute limit after 20 seconds.
    "feishu": (ROBOT_LIMITS["feishu"], (100, timedelta(seconds=60))),
}
"""Every window that applies to a format; a send must fit in all of them."""

UNLIMITED_FORMATS = frozenset({"standard"})

DEFAULT_MARGIN_FRACTION = 0.05
"""Each window is widened by this fraction of its length (60 s → 63 s, 1 s → 1.05 s)."""


@dataclass(frozen=True, slots=True)
class RobotPlan:
    """What to do now with ``pending`` alerts for one robot.

    * ``send_now`` and ``separate`` > 0: send that many alerts, one message each.
    * ``send_now`` and ``merge`` > 0: send that many alerts as ONE digest message.
    * not ``send_now``: wait; ``not_before`` is when a slot frees (None when there
      was nothing pending).
    """

    send_now: bool
    separate: int = 0
    merge: int = 0
    not_before: datetime | None = None

    @property
    def messages(self) -> int:
        """How many requests this plan sends now."""
        return self.separate + (1 if self.merge else 0)


def robot_send_plan(
    format: str,
    recent_sends: Sequence[datetime],
    now: datetime,
    pending: int,
    *,
    margin_fraction: float = DEFAULT_MARGIN_FRACTION,
) -> RobotPlan:
    """Decide how to send ``pending`` alerts to one robot without exceeding its limit.

    Args:
        format: the subscription format (``standard`` has no limit).
        recent_sends: when earlier messages were sent to this robot; older ones
            are ignored, so passing the last minute or two is enough. Sends
            stamped after ``now`` (another worker's clock) count as in-window.
        now: the current time, comparable with ``recent_sends``.
        pending: alerts waiting for this robot.
        margin_fraction: widening of each window (see the module docstring); 0
            gives the platform's exact numbers.

    Raises:
        ValueError: unknown format, negative ``pending`` or margin.
    """
    if pending < 0:
        raise ValueError(f"pending must not be negative, got {pending}")
    if margin_fraction < 0:
        raise ValueError(f"margin_fraction must not be negative, got {margin_fraction}")
    if format in UNLIMITED_FORMATS:
        return RobotPlan(send_now=pending > 0, separate=pending)
    windows = ROBOT_WINDOWS.get(format)
    if windows is None:
        raise ValueError(f"unknown webhook format {format!r}")
    if pending == 0:
        return RobotPlan(send_now=False)

    capacity: int | None = None
    not_before = now
    for limit, length in windows:
        window = length * (1 + margin_fraction)
        in_window = sorted(sent for sent in recent_sends if sent > now - window)
        free = limit - len(in_window)
        capacity = free if capacity is None else min(capacity, free)
        if free <= 0:
            # The slot frees when enough of the oldest sends have left the window
            # for one more to fit: the (used - limit + 1)-th oldest, plus the window.
            oldest_blocking = in_window[len(in_window) - limit]
            not_before = max(not_before, oldest_blocking + window)
    assert capacity is not None  # every format has at least one window

    if capacity <= 0:
        return RobotPlan(send_now=False, not_before=not_before)
    if capacity >= pending:
        return RobotPlan(send_now=True, separate=pending)
    return RobotPlan(send_now=True, merge=pending)
