"""Read-latency phases: p50/p99 of GET requests, sequential and with ``--read-clients``.

``ReadLatency`` measures any GET endpoint on the settled database; the report
shows a row for each (``bench.report``). ``metrics_reads`` is the one the
targets name: ``GET /v1/stores/{id}/metrics`` over the 50 stores. A phase may
measure only sequentially (``concurrent=False``), take its request count from
another flag (``reads_flag``), and send other headers (``headers``: the
console's session cookie); when ``paths`` gives nothing (the data it needs is
not there, the routes are not built), the phase records why and is skipped.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict
from typing import Any

from bench.context import Bench
from bench.database import settle
from bench.load import ReadRun, median
from bench.phases import Phase

Paths = Callable[[Bench], list[str]]
Headers = Callable[[Bench], dict[str, str] | None]


def store_metrics_paths(bench: Bench) -> list[str]:
    return [f"/v1/stores/{store}/metrics" for store in bench.stream.stores]


class ReadLatency(Phase):
    """``--runs`` × (sequential, ``--read-clients``) runs of ``--reads`` GETs: ``result[key]``.

    ``endpoint`` names the route in the report and the log ("metrics"), ``when``
    the moment ("small": ~10k events stored, "large": after the load), ``paths``
    the request paths, cycled through (drawn from ``bench.stream`` or the database).
    """

    def __init__(
        self,
        key: str,
        endpoint: str,
        when: str,
        paths: Paths,
        *,
        group: str = "reads",
        concurrent: bool = True,
        reads_flag: str = "reads",
        headers: Headers | None = None,
        settle_first: bool = True,
    ) -> None:
        self.key, self.endpoint, self.when, self.paths = key, endpoint, when, paths
        self.group, self.concurrent, self.reads_flag = group, concurrent, reads_flag
        self.headers, self.settle_first = headers, settle_first

    async def run(self, bench: Bench) -> None:
        paths = self.paths(bench)
        headers = self.headers(bench) if self.headers else None
        if not paths or (self.headers and headers is None):
            why = bench.notes.get(f"skip:{self.group}", "no paths to read")
            bench.result[self.key] = {"endpoint": self.endpoint, "skipped": why}
            return
        # Reads are measured on a settled database, as autovacuum keeps one in production.
        if self.settle_first:
            await settle(bench.app.db_url)
        n = int(getattr(bench.args, self.reads_flag))
        await bench.read(
            "warmup", paths, 4, n=min(200, 4 * n), max_seconds=60, warmup=True, headers=headers
        )
        out: dict[str, Any] = {
            "events_stored": bench.stored,
            "runs": [],
            "endpoint": self.endpoint,
            "when": self.when,
            "paths": len(paths),
            "example_path": paths[0],
        }
        rc = bench.args.read_clients
        seq_runs, conc_runs = [], []
        for r in range(bench.args.runs):
            name = f"{self.endpoint}@{self.when}"
            seq_runs.append(
                await bench.read(f"{name} seq #{r + 1}", paths, 1, n=n, headers=headers)
            )
            if self.concurrent:
                conc_runs.append(
                    await bench.read(f"{name} c{rc} #{r + 1}", paths, rc, n=n, headers=headers)
                )
        out["sequential"] = _summarize(seq_runs)
        if conc_runs:
            out[f"c{rc}"] = _summarize(conc_runs)
        bench.result[self.key] = out


def metrics_reads(when: str) -> ReadLatency:
    """The store metrics read at a moment of the run: ``result["reads_<when>"]``."""
    return ReadLatency(f"reads_{when}", "metrics", when, store_metrics_paths)


def _summarize(runs: list[ReadRun]) -> dict[str, Any]:
    statuses: dict[str, int] = {}
    for x in runs:
        for k, v in x.statuses.items():
            statuses[k] = statuses.get(k, 0) + v
    return {
        "statuses": statuses,
        "server_cores": round(median([x.cpu.get("server_cores", 0.0) for x in runs]), 2),
        "postgres_cores": round(median([x.cpu.get("postgres_cores", 0.0) for x in runs]), 2),
        "p50_ms": round(median([x.p50_ms for x in runs]), 2),
        "p99_ms": round(median([x.p99_ms for x in runs]), 2),
        "req_per_s": round(median([x.req_per_s for x in runs]), 0),
        "runs": [asdict(x) for x in runs],
    }
