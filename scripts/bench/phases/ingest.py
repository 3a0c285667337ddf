"""Ingest phases: warm-up, the ~10k sample, batch and single-event ingest beside the baseline,
and the load up to ``--events-large``.

The refundwatch and baseline runs are interleaved, so drift hits both; the
baseline gets the same events, into its own database.
"""

from __future__ import annotations

import argparse
from collections import Counter, defaultdict
from dataclasses import asdict
from typing import Any

from bench.context import BATCH_SIZE, Bench
from bench.load import IngestRun, median
from bench.phases import Phase
from bench.progress import log


def single_cap(args: argparse.Namespace) -> int:
    """Bodies prepared per single-event run: a ceiling no run reaches in its duration."""
    return int(args.single_seconds * 4000)


class Warmup(Phase):
    """A few batches to each server: prepared statements, caches, connections."""

    def events_needed(self, args: argparse.Namespace) -> int:
        return int(2 * BATCH_SIZE * max(args.concurrency))

    async def run(self, bench: Bench) -> None:
        warm = bench.stream.take(BATCH_SIZE * 2)
        await bench.ingest("warmup refundwatch", warm, 2)
        if bench.baseline:
            await bench.ingest("warmup baseline", warm, 2, bench.baseline)


class LoadSample(Phase):
    """Store up to ``--events-small``: the 1% sample of whole orders across the 30 days."""

    async def run(self, bench: Bench) -> None:
        need = max(0, bench.args.events_small - bench.stored)
        await bench.ingest("load sample", bench.stream.sample[:need] if need else [], 4)


class BatchIngest(Phase):
    """500 events per request, for each ``--concurrency``, ``--runs`` times: ``result["batch"]``."""

    group = "ingest"

    def events_needed(self, args: argparse.Namespace) -> int:
        return int(args.runs * len(args.concurrency) * args.batch_events)

    async def run(self, bench: Bench) -> None:
        args, stream = bench.args, bench.stream
        runs: dict[str, list[IngestRun]] = defaultdict(list)
        for r in range(args.runs):
            for conc in args.concurrency:
                events = stream.take(args.batch_events)
                run = await bench.ingest(
                    f"batch c{conc} #{r + 1}", events, conc, max_seconds=args.batch_max_seconds
                )
                runs[f"app_c{conc}"].append(run)
                sent = run.events_sent
                if sent < len(events):
                    log(f"  (cut at {args.batch_max_seconds:.0f} s: {sent:,} of {len(events):,})")
                    stream.give_back(len(events), sent)
                if bench.baseline:
                    label = f"baseline batch c{conc} #{r + 1}"
                    base = await bench.ingest(label, events[:sent], conc, bench.baseline)
                    runs[f"base_c{conc}"].append(base)
        bench.result["batch"] = {k: summarize(v) for k, v in runs.items()}


class SingleIngest(Phase):
    """1 event per request, ``--single-clients``, ``--single-seconds``: ``result["single"]``."""

    group = "ingest"

    def events_needed(self, args: argparse.Namespace) -> int:
        return int(args.runs) * single_cap(args)

    async def run(self, bench: Bench) -> None:
        args, stream = bench.args, bench.stream
        runs: dict[str, list[IngestRun]] = defaultdict(list)
        sc = args.single_clients
        for r in range(args.runs):
            events = stream.take(single_cap(args))
            label = f"single c{sc} #{r + 1}"
            run = await bench.ingest(label, events, sc, size=1, duration=args.single_seconds)
            runs["app"].append(run)
            stream.give_back(len(events), run.events_sent)
            if bench.baseline:
                base = await bench.ingest(
                    f"baseline {label}",
                    events,
                    sc,
                    bench.baseline,
                    size=1,
                    duration=args.single_seconds,
                )
                runs["base"].append(base)
        bench.result["single"] = {k: summarize(v) for k, v in runs.items()}


class LoadToLarge(Phase):
    """Batch-load refundwatch up to ``--events-large`` stored: ``result["load_large"]``.

    The stream is sized so that it holds these events (``bench.cli.stream_size``).
    """

    async def run(self, bench: Bench) -> None:
        args, stream = bench.args, bench.stream
        need = args.events_large - bench.stored
        if need <= 0:
            return
        if need > stream.left:
            log(f"only {stream.left:,} events left in the stream (wanted {need:,})")
        load = await bench.ingest(
            f"load to {args.events_large:,}",
            stream.take(need),
            max(args.concurrency),
            max_seconds=args.load_max_seconds,
        )
        bench.result["load_large"] = asdict(load)


def summarize(runs: list[IngestRun]) -> dict[str, Any]:
    """Medians of the runs of one measurement, with every run kept beside them."""
    non_200: Counter[str] = Counter()
    for x in runs:
        non_200.update(x.non_200())
        non_200.update(x.exceptions)

    def mid(values: list[float], digits: int) -> float:
        return round(median(values), digits)

    return {
        "ev_per_s": mid([x.ev_per_s for x in runs], 0),
        "events_per_run": [x.accepted for x in runs],
        "server_cpu_us_per_event": mid([x.server_cpu_us_per_event for x in runs], 1),
        "db_connections_opened_per_s": mid([x.db_connections_opened / x.seconds for x in runs], 1),
        "req_p50_ms": mid([x.req_p50_ms for x in runs], 1),
        "req_p99_ms": mid([x.req_p99_ms for x in runs], 1),
        "client_cores": mid([x.cpu["client_cores"] for x in runs], 2),
        "server_cores": mid([x.cpu["server_cores"] for x in runs], 2),
        "postgres_cores": mid([x.cpu["postgres_cores"] for x in runs], 2),
        "other_cores": mid([x.cpu["other_cores"] for x in runs], 2),
        "non_200": dict(non_200),
        "rejected": sum(x.rejected for x in runs),
        "duplicates": sum(x.duplicates for x in runs),
        "runs": [asdict(x) for x in runs],
    }
