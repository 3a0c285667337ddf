"""The phases of a bench run (the package docstring, ``bench/__init__.py``, says how to add one).

A phase is one step of the run: it takes events from the stream, drives load
through ``Bench.ingest`` / ``Bench.read`` (or anything of its own), and writes
what it measured into ``bench.result`` under its own key.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bench.context import Bench


class Phase:
    """One step of the bench; ``bench.cli.PHASES`` lists them in the order they run.

    ``group`` says which ``--with`` / ``--skip`` name turns it on or off
    (``bench.cli.GROUPS``); "core" phases always run.
    """

    group = "core"

    def events_needed(self, args: argparse.Namespace) -> int:
        """Events this phase takes from the stream for good (a ceiling; default none)."""
        return 0

    def events_reserved(self, args: argparse.Namespace) -> int:
        """Events a time-bounded run may take and give back unsent (added on top of the rest)."""
        return 0

    async def run(self, bench: Bench) -> None:
        raise NotImplementedError
