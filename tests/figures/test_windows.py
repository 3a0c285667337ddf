"""Window sums from a daily series (pure)."""

from __future__ import annotations

from datetime import date, timedelta

from app.figures.rules import WindowFigures, count_clears_on, sliding_windows, window_sum


def test_sliding_windows_ignore_days_before_the_first_window_whatever_the_series_holds() -> None:
    start = date(2026, 10, 1)
    series = {start + timedelta(days=i): WindowFigures(orders=i + 1) for i in range(60)}
    first, last = date(2026, 11, 1), date(2026, 11, 20)
    for day, figures in sliding_windows(series, first, last, 7):
        assert figures == window_sum(series, day - timedelta(days=6), day), day


def test_a_count_clears_when_its_oldest_days_leave_the_window() -> None:
    as_of = date(2026, 11, 26)
    counts = {date(2026, 10, 28): 3, date(2026, 11, 1): 2, date(2026, 11, 20): 1}
    # 6 in the window; 10-28 leaves on 11-27 (3 left ≥ 3), 11-01 leaves on 12-01 (1 < 3).
    assert count_clears_on(counts, as_of, 30, 3) == date(2026, 12, 1)
    assert count_clears_on(counts, as_of, 30, 6) == date(2026, 11, 27)
    assert count_clears_on(counts, as_of, 30, 7) is None
    # A day outside the window does not count, even when the series holds it.
    assert count_clears_on({**counts, date(2026, 10, 1): 9}, as_of, 30, 7) is None
