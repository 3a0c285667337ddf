"""Read-latency phases: p50/p99 of GET requests, sequential and with ``--read-clients``.

``ReadLatency`` measures any GET endpoint on the settled database; the report
shows a row for each (``bench.report``). ``metrics_reads`` is the one the
targets name: ``GET /v1/stores/{id}/metrics`` over the 50 stores.
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


def store_metrics_paths(bench: Bench) -> list[str]:
    return [f"/v1/stores/{store}/metrics" for store in bench.stream.stores]


class ReadLatency(Phase):
    """``--runs`` × (sequential, ``--read-clients``) runs of ``--reads`` GETs: ``result[key]``.

    ``endpoint`` names the route in the report and the log ("metrics"), ``when``
    the moment ("small": ~10k events stored, "large": after the load), ``paths``
    the request paths, cycled through (drawn from ``bench.stream`` or the database).
    """

    def __init__(self, key: str, endpoint: str, when: str, paths: Paths) -> None:
        self.key, self.endpoint, self.when, self.paths = key, endpoint, when, paths

    async def run(self, bench: Bench) -> None:
        # Reads are measured on a settled database, as autovacuum keeps one in production.
        await settle(bench.app.db_url)
        paths = self.paths(bench)
        await bench.read("warmup", paths, 4, n=200, max_seconds=60, warmup=True)
        out: dict[str, Any] = {"events_stored": bench.stored, "runs": [], "endpoint": self.endpoint}
        rc = bench.args.read_clients
        seq_runs, conc_runs = [], []
        for r in range(bench.args.runs):
            name = f"{self.endpoint}@{self.when}"
            seq_runs.append(await bench.read(f"{name} seq #{r + 1}", paths, 1))
            conc_runs.append(await bench.read(f"{name} c{rc} #{r + 1}", paths, rc))
        out["sequential"] = _summarize(seq_runs)
        out[f"c{rc}"] = _summarize(conc_runs)
        bench.result[self.key] = out


def metrics_reads(when: str) -> ReadLatency:
    """The store metrics read at a moment of the run: ``result["reads_<when>"]``."""
    return ReadLatency(f"reads_{when}", "metrics", when, store_metrics_paths)


def _summarize(runs: list[ReadRun]) -> dict[str, Any]:
    return {
        "p50_ms": round(median([x.p50_ms for x in runs]), 2),
        "p99_ms": round(median([x.p99_ms for x in runs]), 2),
        "req_per_s": round(median([x.req_per_s for x in runs]), 0),
        "runs": [asdict(x) for x in runs],
    }
