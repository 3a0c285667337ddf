"""The import as a person sees it on a terminal: a progress bar, then a summary table.

On a terminal (a TTY), ``rich`` draws a live bar with rows, rate and ETA; off
one (a log, CI, a pipe), plain progress lines are printed every few seconds.
"""

from __future__ import annotations

import csv
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from rich.console import Console
from rich.progress import (
    BarColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from app.imports.formats import RowError
from app.imports.service import ImportSummary

PLAIN_EVERY_SECONDS = 2.0


class ProgressView:
    """Shows an import's progress: a rich bar on a terminal, plain lines elsewhere."""

    def __init__(self, console: Console, label: str) -> None:
        self._console = console
        self._label = label
        self._started = time.monotonic()
        self._last_line = 0.0
        self._bar: Progress | None = None
        self._task: TaskID | None = None

    def __enter__(self) -> ProgressView:
        if self._console.is_terminal:
            self._bar = Progress(
                TextColumn("[bold]{task.description}"),
                BarColumn(),
                TextColumn("{task.percentage:>5.1f}%"),
                TextColumn("{task.fields[rows]:>10,} rows"),
                TextColumn("{task.fields[rate]:>8,.0f} rows/s"),
                TimeElapsedColumn(),
                TextColumn("ETA"),
                TimeRemainingColumn(),
                console=self._console,
                transient=False,
            )
            self._bar.start()
            self._task = self._bar.add_task(self._label, total=None, rows=0, rate=0.0)
        return self

    def __exit__(self, *_exc: object) -> None:
        if self._bar is not None:
            self._bar.stop()

    def update(self, summary: ImportSummary) -> None:
        elapsed = max(time.monotonic() - self._started, 1e-6)
        rows = summary.rows_read
        rate = (rows - summary.rows_resumed) / elapsed
        progress = summary.progress
        if self._bar is not None and self._task is not None:
            self._bar.update(
                self._task,
                total=progress.total if progress else None,
                completed=progress.done if progress else 0,
                rows=rows,
                rate=rate,
            )
            return
        now = time.monotonic()
        if now - self._last_line < PLAIN_EVERY_SECONDS:
            return
        self._last_line = now
        share = progress.fraction if progress else None
        eta = ""
        if share:
            eta = f", ETA {max(0.0, elapsed / share - elapsed):.0f}s"
        percent = f" ({share:.0%})" if share is not None else ""
        self._console.print(
            f"{self._label}: {rows:,} rows{percent}, {rate:,.0f} rows/s, "
            f"{summary.events_accepted:,} events accepted{eta}",
            highlight=False,
        )


def summary_table(title: str, summary: ImportSummary) -> Table:
    """The end-of-import table: rows, events by outcome, skips, unmapped labels."""
    table = Table(title=title, show_header=True, header_style="bold")
    table.add_column("")
    table.add_column("count", justify="right")
    table.add_row("rows read", f"{summary.rows_read:,}")
    if summary.resumed_from_row:
        table.add_row("resumed after row", f"{summary.resumed_from_row:,}")
    table.add_row("events accepted", f"{summary.events_accepted:,}")
    table.add_row("events duplicate (already stored)", f"{summary.events_duplicate:,}")
    table.add_row("events rejected", f"{summary.events_rejected:,}")
    for code, count in summary.rejected_by_code.most_common():
        table.add_row(f"  rejected: {code}", f"{count:,}")
    table.add_row("rows refused", f"{summary.row_errors:,}")
    for cause, count in summary.skipped_by_cause.most_common():
        table.add_row(f"rows skipped: {cause}", f"{count:,}")
    for label, count in summary.unmapped_labels.most_common():
        table.add_row(f"unknown reason label → other: {label!r}", f"{count:,}")
    return table


@contextmanager
def error_writer(path: Path | None) -> Iterator[ErrorFile | None]:
    """A CSV of every refused row (``row,column,code,message``), written as they come."""
    if path is None:
        yield None
        return
    with path.open("w", encoding="utf-8-sig", newline="") as handle:
        yield ErrorFile(handle)


class ErrorFile:
    def __init__(self, handle: IO[str]) -> None:
        self._writer = csv.writer(handle)
        self._writer.writerow(["row", "column", "code", "message"])
        self.count = 0

    def write(self, error: RowError) -> None:
        self._writer.writerow([error.row, error.column or "", error.code, error.message])
        self.count += 1
