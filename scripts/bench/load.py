"""Load drivers: closed-loop clients that send ingest bodies or reads, and what one run measured.

Each driver runs ``concurrency`` workers over one keep-alive connection each,
until the work is done or a deadline passes, and reports latencies, answers
and the CPU every party used meanwhile (``bench.cpu``).
"""

from __future__ import annotations

import asyncio
import itertools
import math
import statistics
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field

import orjson

from bench.client import Answer, LoadError, RawClient, client_pool, request_path
from bench.cpu import cpu_delta, cpu_snapshot

Worker = Callable[[RawClient], Awaitable[None]]


def pct(values: Sequence[float], p: float) -> float:
    """Nearest-rank percentile."""
    if not values:
        return float("nan")
    s = sorted(values)
    k = max(0, min(len(s) - 1, math.ceil(p / 100.0 * len(s)) - 1))
    return s[k]


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


async def _run_clients(
    concurrency: int,
    headers: dict[str, str],
    request_timeout: float,
    base_url: str,
    server_pid: int | None,
    worker: Worker,
    start: float,
) -> tuple[float, dict[str, float]]:
    """Run ``worker`` once per connection; (seconds since ``start``, cores used meanwhile)."""
    async with client_pool(concurrency, headers, request_timeout, base_url) as pool:
        before = cpu_snapshot(server_pid)
        await asyncio.gather(*(worker(c) for c in pool))
        after = cpu_snapshot(server_pid)
        seconds = time.perf_counter() - start
    return seconds, cpu_delta(before, after)


@dataclass
class IngestRun:
    label: str
    concurrency: int
    requests: int = 0
    events_sent: int = 0
    accepted: int = 0
    duplicates: int = 0
    rejected: int = 0
    statuses: dict[str, int] = field(default_factory=dict)
    exceptions: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    ev_per_s: float = 0.0
    req_p50_ms: float = 0.0
    req_p99_ms: float = 0.0
    cpu: dict[str, float] = field(default_factory=dict)
    stored_before: int = 0
    reject_codes: dict[str, int] = field(default_factory=dict)
    server_cpu_us_per_event: float = 0.0
    db_connections_opened: int = 0

    def non_200(self) -> dict[str, int]:
        return {k: v for k, v in self.statuses.items() if k != "200"}

    def describe(self) -> str:
        bad = self.non_200()
        return (
            f"{self.label}: {self.ev_per_s:,.0f} ev/s ({self.accepted:,} accepted in "
            f"{self.seconds:.1f} s, {self.requests} req, p50 {self.req_p50_ms:.1f} ms, "
            f"p99 {self.req_p99_ms:.1f} ms) server {self.server_cpu_us_per_event:.0f} µs CPU/ev, "
            f"{self.db_connections_opened} new DB connections, cpu {self.cpu}"
            + (f" NON-200 {bad}" if bad else "")
            + (f" EXC {self.exceptions}" if self.exceptions else "")
            + (f" rejected {self.rejected} {self.reject_codes}" if self.rejected else "")
            + (f" duplicates {self.duplicates}" if self.duplicates else "")
        )


@dataclass
class _IngestTally:
    """The counters an ingest run's workers share while it runs."""

    statuses: Counter[str] = field(default_factory=Counter)
    exceptions: Counter[str] = field(default_factory=Counter)
    reject_codes: Counter[str] = field(default_factory=Counter)
    latencies: list[float] = field(default_factory=list)

    def count(self, run: IngestRun, answer: Answer, n: int) -> bool:
        """Count one answer to a body of ``n`` events; True if it was a 200."""
        run.requests += 1
        run.events_sent += n
        self.statuses[str(answer.status_code)] += 1
        if answer.status_code != 200:
            return False
        doc = orjson.loads(answer.content)
        run.accepted += doc.get("accepted", 0)
        run.duplicates += doc.get("duplicates", 0)
        rejected = doc.get("rejected", 0)
        run.rejected += rejected
        if rejected:
            for res in doc.get("results", ()):
                if res.get("status") == "rejected":
                    self.reject_codes[(res.get("error") or {}).get("code", "?")] += 1
        return True


async def drive_ingest(
    label: str,
    url: str,
    headers: dict[str, str],
    bodies: Sequence[tuple[bytes, int]],
    concurrency: int,
    *,
    duration: float | None,
    max_seconds: float,
    server_pid: int | None,
) -> IngestRun:
    """Send pre-serialized bodies from ``concurrency`` clients until done or the duration ends."""
    run = IngestRun(label=label, concurrency=concurrency)
    tally = _IngestTally()
    source: Iterator[tuple[bytes, int]] = iter(bodies)
    path = request_path(url)
    start = time.perf_counter()
    stop_at = start + min(duration if duration is not None else max_seconds, max_seconds)

    async def worker(client: RawClient) -> None:
        consecutive_errors = 0
        for body, n in source:  # bounded: the bodies are finite
            if time.perf_counter() >= stop_at or consecutive_errors > 20:
                return
            t = time.perf_counter()
            try:
                answer = await client.post(path, content=body)
            except LoadError as exc:
                tally.exceptions[str(exc)] += 1
                consecutive_errors += 1
                continue
            tally.latencies.append(time.perf_counter() - t)
            consecutive_errors = 0 if tally.count(run, answer, n) else consecutive_errors + 1

    run.seconds, run.cpu = await _run_clients(
        concurrency, headers, 120.0, url, server_pid, worker, start
    )
    run.statuses = dict(tally.statuses)
    run.exceptions = dict(tally.exceptions)
    run.reject_codes = dict(tally.reject_codes)
    run.ev_per_s = run.accepted / run.seconds if run.seconds > 0 else 0.0
    run.req_p50_ms = pct(tally.latencies, 50) * 1000
    run.req_p99_ms = pct(tally.latencies, 99) * 1000
    return run


@dataclass
class ReadRun:
    label: str
    concurrency: int
    requests: int = 0
    statuses: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    p50_ms: float = 0.0
    p99_ms: float = 0.0
    mean_ms: float = 0.0
    req_per_s: float = 0.0
    cpu: dict[str, float] = field(default_factory=dict)

    def describe(self) -> str:
        bad = {k: v for k, v in self.statuses.items() if k != "200"}
        return (
            f"{self.label}: p50 {self.p50_ms:.2f} ms, p99 {self.p99_ms:.2f} ms, "
            f"{self.req_per_s:,.0f} req/s cpu {self.cpu}" + (f" NON-200 {bad}" if bad else "")
        )


async def drive_reads(
    label: str,
    base: str,
    headers: dict[str, str],
    paths: Sequence[str],
    n: int,
    concurrency: int,
    *,
    max_seconds: float,
    server_pid: int | None,
) -> ReadRun:
    """GET ``n`` requests, cycling through ``paths``, from ``concurrency`` clients."""
    run = ReadRun(label=label, concurrency=concurrency)
    statuses: Counter[str] = Counter()
    latencies: list[float] = []
    source = itertools.islice(itertools.cycle(paths), n)
    start = time.perf_counter()
    hard_stop = start + max_seconds

    async def worker(client: RawClient) -> None:
        for path in source:
            if time.perf_counter() >= hard_stop:
                return
            t = time.perf_counter()
            try:
                r = await client.get(path)
            except LoadError as exc:
                statuses[str(exc)] += 1
                continue
            latencies.append(time.perf_counter() - t)
            statuses[str(r.status_code)] += 1

    run.seconds, run.cpu = await _run_clients(
        concurrency, headers, 30.0, base, server_pid, worker, start
    )
    run.requests = len(latencies)
    run.statuses = dict(statuses)
    run.p50_ms = pct(latencies, 50) * 1000
    run.p99_ms = pct(latencies, 99) * 1000
    run.mean_ms = statistics.fmean(latencies) * 1000 if latencies else float("nan")
    run.req_per_s = run.requests / run.seconds if run.seconds else 0.0
    return run
