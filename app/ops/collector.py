"""Python's cyclic garbage collector, paused while a bulk job runs.

A file import allocates millions of small objects (validated events, states,
bucket keys) that live until their chunk commits. Every 700 allocations the
collector walks the young ones, and every few of those walks everything alive
again: measured on a 200,000-event import, a fifth of the importer's CPU went to
walks that found nothing to free (the road makes almost no reference cycles).
A bulk job therefore pauses automatic collection for its run and collects once
after each committed chunk (:func:`collect`), when what the chunk held is gone
and the heap is at its smallest: memory stays as flat as before. What was alive
when the pause began (the modules, the engine, the app: 220,000 objects in the
CLI, 0.18 s a walk) is frozen out of those collections (``gc.freeze``) and
handed back to the collector when the pause ends.

Pauses nest and may overlap (several parts' worth of work in one process, a
test): the collector is switched back on when the last pause ends, and only if
it was on before the first. Only a process that exists for the bulk job pauses
it (the import CLI and its parts): an upload inside the API process does not,
since the pause would hold back collection for every request served meanwhile.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

_lock = threading.Lock()
_pauses = 0
_was_enabled = False
_froze = False


@contextmanager
def paused() -> Iterator[None]:
    """Automatic collection off for the block (see the module's note)."""
    global _pauses, _was_enabled, _froze
    with _lock:
        if _pauses == 0:
            _was_enabled = gc.isenabled()
            gc.disable()
            # a process that froze its own objects keeps them frozen, untouched
            _froze = gc.get_freeze_count() == 0
            if _froze:
                gc.freeze()
        _pauses += 1
    try:
        yield
    finally:
        with _lock:
            _pauses -= 1
            if _pauses == 0:
                if _froze:
                    gc.unfreeze()
                if _was_enabled:
                    gc.enable()


def collect() -> int:
    """One full collection (between chunks); returns the objects it freed."""
    return gc.collect()
