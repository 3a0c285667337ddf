"""The collector pause of bulk jobs: nested and overlapping pauses, and what is restored."""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator

import pytest

from app.ops import collector


@pytest.fixture(autouse=True)
def _collector_on() -> Iterator[None]:
    was = gc.isenabled()
    gc.enable()
    yield
    if not was:
        gc.disable()


def test_a_pause_switches_automatic_collection_off_and_back_on() -> None:
    with collector.paused():
        assert not gc.isenabled()
    assert gc.isenabled()


def test_pauses_nest_and_the_last_one_out_switches_it_back_on() -> None:
    with collector.paused():
        with collector.paused():
            assert not gc.isenabled()
        assert not gc.isenabled()  # the outer pause still holds
    assert gc.isenabled()


def test_overlapping_pauses_of_two_threads() -> None:
    inner_in, outer_out = threading.Event(), threading.Event()
    seen: list[bool] = []

    def other() -> None:
        with collector.paused():
            inner_in.set()
            outer_out.wait(5)
            seen.append(gc.isenabled())  # the first pause ended: this one still holds
        seen.append(gc.isenabled())

    thread = threading.Thread(target=other)
    with collector.paused():
        thread.start()
        assert inner_in.wait(5)
    outer_out.set()
    thread.join(5)
    assert seen == [False, True]


def test_a_collector_switched_off_before_stays_off() -> None:
    gc.disable()
    with collector.paused():
        pass
    assert not gc.isenabled()


def test_an_error_inside_still_ends_the_pause() -> None:
    with pytest.raises(RuntimeError), collector.paused():
        raise RuntimeError("boom")
    assert gc.isenabled()


def test_collect_frees_the_cycles_made_during_a_pause() -> None:
    class Node:
        def __init__(self) -> None:
            self.other: Node | None = None

    with collector.paused():
        gc.collect()
        for _ in range(1000):
            a, b = Node(), Node()
            a.other, b.other = b, a
        del a, b
        assert collector.collect() >= 2000


def test_what_was_alive_before_is_frozen_for_the_pause_and_handed_back() -> None:
    assert gc.get_freeze_count() == 0
    with collector.paused():
        assert gc.get_freeze_count() > 0  # left out of the collections between chunks
        with collector.paused():
            pass
        assert gc.get_freeze_count() > 0
    assert gc.get_freeze_count() == 0


def test_a_process_that_froze_its_own_objects_keeps_them_frozen() -> None:
    gc.freeze()
    try:
        frozen = gc.get_freeze_count()
        with collector.paused():
            assert gc.get_freeze_count() == frozen
        assert gc.get_freeze_count() == frozen
    finally:
        gc.unfreeze()
