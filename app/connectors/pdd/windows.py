"""Which stretches of time the connector reads, in which page order, and how far it
may claim to be in sync. All pure: ``now`` is an argument.

The increment APIs answer "every record whose last update falls between
``start_updated_at`` and ``end_updated_at``" (Unix seconds, at most 30 minutes
apart). The platform gives two pieces of advice against missed records, and
the rules here follow both:

* End a window at least 3 minutes before the platform's clock: updates reach
  the increment index a little late, so the newest minutes are not final yet.
  A window may still be read early (for freshness) but it only *counts* -- it
  only moves ``synced_through`` -- once its end is 3 minutes old.
* Read a window's pages from the last back to the first. Results are ordered by
  update time; a record updated while we page moves out of the window (to a
  later one), and the records behind it shift one place towards page 1. Read
  backwards, a shifted record lands on a page not read yet; read forwards, it
  would land on a page already read and be missed.

Boundaries are whole seconds (the API takes Unix seconds). Consecutive windows
overlap by one second, so a record updated exactly on a boundary is read
whether the platform treats the bounds as inclusive or exclusive; reading it
twice is harmless because event ids are derived from the record.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final

__all__ = [
    "MAX_PAGE_SIZE",
    "MAX_WINDOW",
    "SETTLE_DELAY",
    "WINDOW_OVERLAP",
    "Window",
    "advance_synced_through",
    "freshness_window",
    "page_count",
    "pages_last_to_first",
    "plan_windows",
    "settled_horizon",
    "settled_windows",
]

MAX_WINDOW: Final = timedelta(minutes=30)
"""The longest span one increment call may ask for (``end - start``)."""

SETTLE_DELAY: Final = timedelta(minutes=3)
"""How old a window's end must be before the window counts as read for good."""

WINDOW_OVERLAP: Final = timedelta(seconds=1)
"""Each window starts this much before the previous one's end."""

MAX_PAGE_SIZE: Final = 100
"""The platform's largest ``page_size``."""


def _floor_second(moment: datetime) -> datetime:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError("times must be timezone-aware")
    return moment.astimezone(UTC).replace(microsecond=0)


@dataclass(frozen=True)
class Window:
    """One increment query: updates from ``start`` to ``end`` (whole seconds, UTC).

    ``settled`` windows end at least :data:`SETTLE_DELAY` before ``now`` and may
    move ``synced_through`` to their ``end`` once their events are committed; a
    window that is not settled is a freshness read and moves nothing.
    """

    start: datetime
    end: datetime
    settled: bool

    def __post_init__(self) -> None:
        if self.start.microsecond or self.end.microsecond:
            raise ValueError("window bounds are whole seconds")
        if not self.start < self.end:
            raise ValueError("a window's start must be before its end")
        if self.end - self.start > MAX_WINDOW:
            raise ValueError(f"a window spans at most {MAX_WINDOW}")

    @property
    def start_timestamp(self) -> int:
        """``start_updated_at``: Unix seconds."""
        return int(self.start.timestamp())

    @property
    def end_timestamp(self) -> int:
        """``end_updated_at``: Unix seconds."""
        return int(self.end.timestamp())


def settled_horizon(now: datetime) -> datetime:
    """The latest instant ``synced_through`` may reach at ``now``: ``now - 3 min``.

    ``now`` should be the platform's clock as best known (see
    ``PddGateway.platform_now``): the advice is about the platform's time, and a
    local clock running ahead would otherwise settle minutes the platform has
    not finished indexing.
    """
    return _floor_second(now) - SETTLE_DELAY


def settled_windows(
    synced_through: datetime, now: datetime, *, limit: int | None = None
) -> list[Window]:
    """The windows that walk forward from ``synced_through`` to the settled horizon.

    Each spans at most :data:`MAX_WINDOW`, starts :data:`WINDOW_OVERLAP` before
    the previous one's end (the first one before ``synced_through``), and ends no
    later than :func:`settled_horizon`. ``limit`` caps how many are returned (a
    backfill of 45 days is about 2,200 windows; a sync cycle takes a bounded
    bite). Empty when ``synced_through`` is already at the horizon.
    """
    horizon = settled_horizon(now)
    cursor = _floor_second(synced_through)
    windows: list[Window] = []
    while cursor < horizon and (limit is None or len(windows) < limit):
        start = cursor - WINDOW_OVERLAP
        end = min(start + MAX_WINDOW, horizon)
        windows.append(Window(start, end, settled=True))
        cursor = end
    return windows


def freshness_window(synced_through: datetime, now: datetime) -> Window | None:
    """The early read of the newest minutes, from the settled horizon (or from
    ``synced_through`` when that is later) up to ``now``.

    It lets a change reach the figures within a sync interval instead of three
    minutes later; it never moves ``synced_through``, and the same minutes are
    read again by a settled window once they are 3 minutes old, so a record the
    platform indexed late is still found. None when there is nothing after the
    start yet.
    """
    end = _floor_second(now)
    start = max(settled_horizon(now), _floor_second(synced_through)) - WINDOW_OVERLAP
    start = max(start, end - MAX_WINDOW)
    if start >= end:
        return None
    return Window(start, end, settled=False)


def plan_windows(
    synced_through: datetime,
    now: datetime,
    *,
    limit: int | None = None,
    fresh: bool = True,
) -> list[Window]:
    """One sync cycle's windows: the settled ones in order, then the freshness read.

    The freshness window is planned only when the settled windows reach the
    horizon within ``limit`` (while a backfill is still far behind, reading the
    newest minutes would only be read again later, and the backfill is the
    better use of the calls).
    """
    windows = settled_windows(synced_through, now, limit=limit)
    caught_up = not windows or windows[-1].end >= settled_horizon(now)
    if fresh and caught_up:
        through = windows[-1].end if windows else synced_through
        window = freshness_window(through, now)
        if window is not None:
            windows.append(window)
    return windows


def advance_synced_through(synced_through: datetime, window: Window, now: datetime) -> datetime:
    """Where ``synced_through`` goes once ``window``'s events are committed.

    Only a settled window moves it, only forward, and never past
    :func:`settled_horizon` of ``now`` (a window planned as settled on one clock
    reading is checked again on the current one). A window that starts after
    ``synced_through`` (plus the overlap) would leave a gap, so it moves
    nothing either: windows must be committed in order.
    """
    if not window.settled or window.start > _floor_second(synced_through):
        return synced_through
    return max(synced_through, min(window.end, settled_horizon(now)))


def page_count(total_count: int, page_size: int = MAX_PAGE_SIZE) -> int:
    """How many pages ``total_count`` records fill (0 for none)."""
    if total_count < 0:
        raise ValueError("total_count must not be negative")
    if not 1 <= page_size <= MAX_PAGE_SIZE:
        raise ValueError(f"page_size must be 1 to {MAX_PAGE_SIZE}")
    return math.ceil(total_count / page_size)


def pages_last_to_first(total_count: int, page_size: int = MAX_PAGE_SIZE) -> list[int]:
    """The pages to read after a first look at page 1 told ``total_count``.

    Page 1 had to be asked first to learn the total. With one page or none, that
    answer is the whole window (``[]``). Otherwise read from the last page back
    to page 1 -- page 1 included again, because records that shift down while we
    page land there.
    """
    pages = page_count(total_count, page_size)
    if pages <= 1:
        return []
    return list(range(pages, 0, -1))
