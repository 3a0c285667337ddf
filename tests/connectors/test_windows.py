"""Window planning: 30-minute windows from synced_through, the 3-minute settle rule,
the freshness read, and pages from the last back to the first."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import pairwise

import pytest

from app.connectors.pdd.windows import (
    MAX_WINDOW,
    SETTLE_DELAY,
    WINDOW_OVERLAP,
    Window,
    advance_synced_through,
    freshness_window,
    page_count,
    pages_last_to_first,
    plan_windows,
    settled_horizon,
    settled_windows,
)

NOW = datetime(2026, 11, 26, 4, 0, tzinfo=UTC)


def test_the_horizon_is_three_minutes_before_now_in_whole_seconds() -> None:
    assert settled_horizon(NOW + timedelta(microseconds=900_000)) == NOW - SETTLE_DELAY


def test_windows_walk_forward_from_synced_through_to_the_horizon() -> None:
    synced = NOW - timedelta(hours=1, minutes=3)
    second = timedelta(seconds=1)
    minute = timedelta(minutes=1)
    assert settled_windows(synced, NOW) == [
        Window(synced - second, NOW - 33 * minute - second, settled=True),
        Window(NOW - 33 * minute - 2 * second, NOW - 3 * minute - 2 * second, settled=True),
        Window(NOW - 3 * minute - 3 * second, NOW - 3 * minute, settled=True),
    ]


def test_consecutive_windows_overlap_by_one_second() -> None:
    windows = settled_windows(NOW - timedelta(hours=5), NOW)
    assert all(w.end - w.start <= MAX_WINDOW for w in windows)
    for before, after in pairwise(windows):
        assert after.start == before.end - WINDOW_OVERLAP


def test_no_gap_between_windows_covers_every_second() -> None:
    synced = NOW - timedelta(days=2, seconds=17)
    windows = settled_windows(synced, NOW)
    covered = synced
    for window in windows:
        assert window.start <= covered
        covered = window.end
    assert covered == settled_horizon(NOW)


def test_a_limit_takes_a_bounded_bite_of_a_backfill() -> None:
    windows = settled_windows(NOW - timedelta(days=45), NOW, limit=10)
    assert len(windows) == 10


def test_nothing_to_settle_when_synced_through_is_at_the_horizon() -> None:
    assert settled_windows(NOW - SETTLE_DELAY, NOW) == []
    assert settled_windows(NOW, NOW) == []  # a clock stepped back: still nothing


def test_the_freshness_window_reads_the_newest_minutes_and_is_not_settled() -> None:
    window = freshness_window(NOW - SETTLE_DELAY, NOW)
    assert window == Window(NOW - SETTLE_DELAY - WINDOW_OVERLAP, NOW, settled=False)


def test_plan_reads_the_newest_minutes_only_when_caught_up() -> None:
    caught_up = plan_windows(NOW - timedelta(minutes=20), NOW)
    assert [w.settled for w in caught_up] == [True, False]
    assert caught_up[-1].end == NOW

    backfill = plan_windows(NOW - timedelta(days=3), NOW, limit=5)
    assert len(backfill) == 5 and all(w.settled for w in backfill)

    assert all(w.settled for w in plan_windows(NOW - timedelta(minutes=20), NOW, fresh=False))


def test_a_window_read_early_is_read_again_once_it_is_three_minutes_old() -> None:
    synced = NOW - SETTLE_DELAY
    (early,) = plan_windows(synced, NOW)
    assert not early.settled
    later = NOW + SETTLE_DELAY + timedelta(seconds=30)
    settled = [w for w in plan_windows(synced, later) if w.settled]
    assert settled[0].start <= early.start and settled[-1].end >= early.end


def test_synced_through_moves_only_on_settled_windows_and_never_past_the_horizon() -> None:
    synced = NOW - timedelta(minutes=40)
    window = settled_windows(synced, NOW)[0]
    assert advance_synced_through(synced, window, NOW) == window.end

    fresh = freshness_window(NOW - SETTLE_DELAY, NOW)
    assert fresh is not None
    assert advance_synced_through(NOW - SETTLE_DELAY, fresh, NOW) == NOW - SETTLE_DELAY

    # Planned on a clock that later turned out to run ahead: capped at the horizon.
    planned = settled_windows(synced, NOW + timedelta(minutes=10))[-1]
    assert advance_synced_through(synced, planned, NOW) <= settled_horizon(NOW)


def test_synced_through_never_goes_back_nor_jumps_a_gap() -> None:
    synced = NOW - timedelta(minutes=10)
    old = Window(NOW - timedelta(minutes=40), NOW - timedelta(minutes=20), settled=True)
    assert advance_synced_through(synced, old, NOW) == synced
    ahead = Window(NOW - timedelta(minutes=8), NOW - timedelta(minutes=5), settled=True)
    assert advance_synced_through(synced - timedelta(minutes=30), ahead, NOW) == (
        synced - timedelta(minutes=30)
    )


def test_a_window_refuses_more_than_thirty_minutes_or_an_empty_span() -> None:
    with pytest.raises(ValueError, match="at most"):
        Window(NOW - MAX_WINDOW - timedelta(seconds=1), NOW, settled=True)
    with pytest.raises(ValueError, match="before"):
        Window(NOW, NOW, settled=True)
    assert Window(NOW - MAX_WINDOW, NOW, settled=True).end_timestamp == int(NOW.timestamp())


def test_naive_times_are_refused() -> None:
    with pytest.raises(ValueError, match="aware"):
        settled_windows(datetime(2026, 11, 26), NOW)


@pytest.mark.parametrize(
    ("total", "size", "pages"),
    [
        (0, 100, []),
        (1, 100, []),
        (100, 100, []),
        (101, 100, [2, 1]),
        (250, 100, [3, 2, 1]),
        (7, 3, [3, 2, 1]),
    ],
)
def test_pages_are_read_from_the_last_back_to_the_first(
    total: int, size: int, pages: list[int]
) -> None:
    assert pages_last_to_first(total, size) == pages


def test_page_count_checks_its_inputs() -> None:
    assert page_count(201) == 3
    with pytest.raises(ValueError):
        page_count(-1)
    with pytest.raises(ValueError):
        page_count(10, 101)
