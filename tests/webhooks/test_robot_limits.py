"""Group-robot rate limits: send separately, merge into a digest, or wait."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.webhooks.robot_limits import (
    ROBOT_LIMITS,
    ROBOT_WINDOWS,
    RobotPlan,
    robot_send_plan,
)

NOW = datetime(2026, 11, 26, 6, 0, 0, tzinfo=UTC)


def sends_before(now: datetime, *offsets: float) -> list[datetime]:
    return [now - timedelta(seconds=offset) for offset in offsets]


def test_published_limits() -> None:
    assert {
        "dingtalk": (20, timedelta(minutes=1)),
        "wecom": (20, timedelta(minutes=1)),
        "feishu": (5, timedelta(seconds=1)),
    } == ROBOT_LIMITS
    assert (100, timedelta(minutes=1)) in ROBOT_WINDOWS["feishu"]


def test_standard_has_no_limit() -> None:
    plan = robot_send_plan("standard", [NOW] * 10_000, NOW, 500)
    assert plan == RobotPlan(send_now=True, separate=500)
    assert plan.messages == 500


def test_nothing_pending() -> None:
    assert robot_send_plan("wecom", [], NOW, 0) == RobotPlan(send_now=False)
    assert robot_send_plan("standard", [], NOW, 0) == RobotPlan(send_now=False)


@pytest.mark.parametrize("fmt", ["dingtalk", "wecom"])
def test_twentieth_message_in_a_minute_goes_out(fmt: str) -> None:
    recent = sends_before(NOW, *range(19))  # 19 sends in the last 19 seconds
    plan = robot_send_plan(fmt, recent, NOW, 1, margin_fraction=0)
    assert plan == RobotPlan(send_now=True, separate=1)


@pytest.mark.parametrize("fmt", ["dingtalk", "wecom"])
def test_twenty_first_message_waits_for_the_oldest_to_leave(fmt: str) -> None:
    recent = sends_before(NOW, *range(50, 30, -1))  # 20 sends, 31..50 s ago
    plan = robot_send_plan(fmt, recent, NOW, 1, margin_fraction=0)
    assert not plan.send_now
    assert plan.not_before == NOW - timedelta(seconds=50) + timedelta(seconds=60)
    assert plan.messages == 0
    # At that moment exactly, the oldest send no longer counts: one slot is free.
    later = robot_send_plan(fmt, recent, plan.not_before, 1, margin_fraction=0)
    assert later == RobotPlan(send_now=True, separate=1)
    # A microsecond earlier, still full.
    earlier = robot_send_plan(
        fmt, recent, plan.not_before - timedelta(microseconds=1), 1, margin_fraction=0
    )
    assert not earlier.send_now


def test_sends_older_than_the_window_do_not_count() -> None:
    recent = sends_before(NOW, *[60 + i for i in range(100)])  # all ≥ 60 s old
    assert robot_send_plan("dingtalk", recent, NOW, 20, margin_fraction=0) == RobotPlan(
        send_now=True, separate=20
    )


def test_pending_beyond_capacity_merges_all_into_one_digest() -> None:
    recent = sends_before(NOW, *range(15))  # 15 used, 5 free
    assert robot_send_plan("wecom", recent, NOW, 5, margin_fraction=0) == RobotPlan(
        send_now=True, separate=5
    )
    plan = robot_send_plan("wecom", recent, NOW, 6, margin_fraction=0)
    assert plan == RobotPlan(send_now=True, merge=6)
    assert plan.messages == 1


def test_one_slot_left_merges_everything() -> None:
    recent = sends_before(NOW, *range(19))
    assert robot_send_plan("dingtalk", recent, NOW, 40, margin_fraction=0) == RobotPlan(
        send_now=True, merge=40
    )


def test_feishu_five_per_second() -> None:
    four = sends_before(NOW, 0.1, 0.2, 0.3, 0.4)
    assert robot_send_plan("feishu", four, NOW, 1, margin_fraction=0) == RobotPlan(
        send_now=True, separate=1
    )
    assert robot_send_plan("feishu", four, NOW, 3, margin_fraction=0) == RobotPlan(
        send_now=True, merge=3
    )
    five = sends_before(NOW, 0.1, 0.2, 0.3, 0.4, 0.5)
    plan = robot_send_plan("feishu", five, NOW, 1, margin_fraction=0)
    assert plan == RobotPlan(send_now=False, not_before=NOW + timedelta(seconds=0.5))


def test_feishu_minute_window() -> None:
    """5 a second would be 300 a minute: Feishu's 100 a minute binds too."""
    recent = sends_before(NOW, *[10 + 0.5 * i for i in range(100)])  # 10..59.5 s ago
    assert robot_send_plan("feishu", recent[:99], NOW, 1, margin_fraction=0).send_now
    plan = robot_send_plan("feishu", recent, NOW, 1, margin_fraction=0)
    assert not plan.send_now
    assert plan.not_before == NOW - timedelta(seconds=59.5) + timedelta(seconds=60)


def test_default_margin_widens_windows() -> None:
    recent = sends_before(NOW, *range(61, 41, -1))  # 20 sends, 42..61 s ago
    # Exact limits: the send 61 s ago has left the minute.
    assert robot_send_plan("dingtalk", recent, NOW, 1, margin_fraction=0).send_now
    # With the default 5 % margin (63 s) it still counts.
    plan = robot_send_plan("dingtalk", recent, NOW, 1)
    assert not plan.send_now
    assert plan.not_before == NOW - timedelta(seconds=61) + timedelta(seconds=63)


def test_future_stamped_sends_count() -> None:
    recent = [NOW + timedelta(seconds=2)] * 20  # another worker's clock runs ahead
    plan = robot_send_plan("wecom", recent, NOW, 1, margin_fraction=0)
    assert not plan.send_now
    assert plan.not_before == NOW + timedelta(seconds=62)


def test_invalid_arguments() -> None:
    with pytest.raises(ValueError, match="unknown webhook format"):
        robot_send_plan("slack", [], NOW, 1)
    with pytest.raises(ValueError, match="pending"):
        robot_send_plan("wecom", [], NOW, -1)
    with pytest.raises(ValueError, match="margin"):
        robot_send_plan("wecom", [], NOW, 1, margin_fraction=-0.1)


@settings(max_examples=60, deadline=None)
@given(
    fmt=st.sampled_from(["dingtalk", "wecom", "feishu"]),
    seed=st.integers(0, 2**32),
    steps=st.integers(50, 300),
)
def test_simulation_never_exceeds_any_window_and_drops_nothing(
    fmt: str, seed: int, steps: int
) -> None:
    """Alerts arrive at random; following the plan never breaks a limit or loses one."""
    rng = random.Random(seed)
    tick = timedelta(milliseconds=50) if fmt == "feishu" else timedelta(seconds=1)
    now = NOW
    sends: list[datetime] = []
    queue = 0
    arrived = delivered = 0
    for _ in range(steps):
        new = rng.choice([0, 0, 0, 1, 2, 5, 30])
        queue += new
        arrived += new
        plan = robot_send_plan(fmt, sends, now, queue, margin_fraction=0)
        if plan.send_now:
            sends.extend([now] * plan.messages)
            delivered += plan.separate + plan.merge
            queue -= plan.separate + plan.merge
        elif queue:
            assert plan.not_before is not None and plan.not_before > now
        now += tick
    assert delivered + queue == arrived
    for limit, window in ROBOT_WINDOWS[fmt]:
        for i, start in enumerate(sends):
            in_window = [s for s in sends[i:] if s < start + window]
            assert len(in_window) <= limit
