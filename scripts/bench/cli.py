"""The command line of the bench and its top level: describe the machine, size and generate
the stream, open the servers, run the phases in order, write the results."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import bench
from bench.compare import print_comparison
from bench.context import open_bench
from bench.cpu import cpu_calibration_us, wait_quiet
from bench.database import server_facts
from bench.machine import code_fingerprint, machine_info
from bench.paths import RESULTS
from bench.phases import Phase
from bench.phases.checks import Calibrate, Checks
from bench.phases.connector import RATES, ConnectorBackfill
from bench.phases.console import ConsoleLogin, ConsoleStores, console_reads
from bench.phases.imports import ImportVsHttp, PddExportImport
from bench.phases.ingest import BatchIngest, LoadSample, LoadToLarge, SingleIngest, Warmup
from bench.phases.insights import LoadBigStore, insight_reads
from bench.phases.profile import ProfileIngest, ProfileReads
from bench.phases.reads import metrics_reads
from bench.progress import log
from bench.report import markdown, print_report, write_json
from bench.server import AppTree
from bench.stream import Stream, generate_stream

# The run, in order. Each phase writes its figures into the result under its own key.
PHASES: list[Phase] = [
    Warmup(),
    LoadSample(),  # ~10k events: a sample of whole orders over the 30 days
    metrics_reads("small"),
    Calibrate("before_batch"),
    BatchIngest(),  # interleaved with the baseline
    SingleIngest(),  # interleaved with the baseline
    ProfileIngest(),
    Calibrate("before_imports", "imports"),
    ImportVsHttp(),  # fresh databases of their own
    PddExportImport(),
    Calibrate("before_connector", "connector"),
    ConnectorBackfill(),  # a fresh database and worker per rate
    Calibrate("before_load"),
    LoadBigStore(),  # the store with 100k orders, imported before the load to 1M
    LoadToLarge(),
    metrics_reads("large"),
    *insight_reads(),  # the big store's /metrics, breakdowns, SKUs, products, risk
    ProfileReads(),
    Calibrate("before_console", "console"),
    ConsoleStores(),  # up to --console-stores stores (after the 1M-event reads)
    ConsoleLogin(),
    *console_reads(),
    Calibrate("end"),
    Checks(),
]

# Groups of phases --with / --skip turn on and off ("core" always runs).
GROUPS = {
    "ingest": "batch and single-event ingest beside the baseline",
    "profile": "py-spy profiles of the server (also --no-profile)",
    "reads": "metrics reads at 10k and 1M events, the big store and its /metrics",
    "insights": "breakdown, SKU, products and risk reads on the big store",
    "console": "the console's overview and store pages with --console-stores stores",
    "imports": "events-jsonl import vs HTTP batch; a big PDD order export",
    "connector": "PDD backfill against the loopback fake at each --connector-rates; steady state",
}
DEFAULT_GROUPS = ("ingest", "profile", "reads", "insights", "console")


def selected(args: argparse.Namespace, phases: Sequence[Phase]) -> list[Phase]:
    """The phases of the groups this run measures, in their order."""
    return [p for p in phases if p.group == "core" or p.group in args.groups]


async def run_bench(args: argparse.Namespace, result: dict[str, Any], artifacts: str) -> None:
    await describe_run(args, result)
    phases = selected(args, PHASES)
    stream = make_stream(args, phases, result)
    async with open_bench(args, result, stream, artifacts) as b:
        for phase in phases:
            await phase.run(b)
    result["finished_at"] = datetime.now(UTC).isoformat(timespec="seconds")


async def describe_run(args: argparse.Namespace, result: dict[str, Any]) -> None:
    """The machine, the options and the code measured; wait for quiet if asked to."""
    result["started_at"] = datetime.now(UTC).isoformat(timespec="seconds")
    result["machine"] = machine_info(*await server_facts(args.pg))
    result["config"] = dict(vars(args))
    log(f"machine: {json.dumps(result['machine'])}")
    result["machine"]["loadavg_at_start"] = os.getloadavg()
    result["code"] = code_fingerprint(AppTree.of(args.app_dir).root)
    result["calibration_us"] = {"start": cpu_calibration_us()}
    log(f"code: {result['code']}")
    result["machine"]["quiet"] = await wait_quiet(args.wait_quiet)


def stream_size(args: argparse.Namespace, phases: Sequence[Phase]) -> int:
    """Events to generate so that one stream serves every phase and the load to --events-large."""
    needed = sum(p.events_needed(args) for p in phases)
    reserved = sum(p.events_reserved(args) for p in phases)
    return int(max(args.events_large, args.events_small + needed) + reserved + 20_000)


def make_stream(
    args: argparse.Namespace, phases: Sequence[Phase], result: dict[str, Any]
) -> Stream:
    total = stream_size(args, phases)
    log(f"generating ~{total:,} events …")
    stream = generate_stream(total, args.events_small, args.seed, datetime.now(UTC))
    result["stream"] = stream.summary()
    log(f"stream: {json.dumps(result['stream'])}")
    return stream


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="scripts/bench", description=(bench.__doc__ or "").split("\n\n")[0]
    )
    p.add_argument(
        "--quick",
        action="store_true",
        help="fast check: 200k large size, 25k events per batch run, 5 s single runs",
    )
    p.add_argument(
        "--events-large",
        type=int,
        default=None,
        help="events stored for the second metrics-read measurement (default 1,000,000)",
    )
    p.add_argument(
        "--events-small",
        type=int,
        default=10_000,
        help="events stored for the first metrics-read measurement",
    )
    p.add_argument(
        "--batch-events",
        type=int,
        default=None,
        help="events per batch-ingest run (default 100,000; quick 25,000)",
    )
    p.add_argument("--concurrency", default="4,8", help="batch-ingest client counts")
    p.add_argument("--single-clients", type=int, default=32)
    p.add_argument("--single-seconds", type=float, default=None, help="default 10 (quick 5)")
    p.add_argument("--reads", type=int, default=None, help="metrics reads per run (default 2000)")
    p.add_argument("--read-clients", type=int, default=8)
    p.add_argument("--runs", type=int, default=3)
    p.add_argument(
        "--server-workers", type=int, default=1, help="uvicorn workers (app and baseline)"
    )
    p.add_argument(
        "--pg",
        default="postgresql://postgres@127.0.0.1:5432",
        help="PostgreSQL server URL (no database)",
    )
    p.add_argument("--no-baseline", action="store_true")
    p.add_argument(
        "--app-pool-size",
        type=int,
        default=None,
        help="set REFUNDWATCH_DB_POOL_SIZE for refundwatch (default: the app's own default)",
    )
    p.add_argument(
        "--app-dir",
        default=None,
        metavar="PATH",
        help="measure the refundwatch source tree at PATH (e.g. a git worktree of another "
        "commit): its app/ and migrations/ first on PYTHONPATH, same venv, served by "
        "`python -m uvicorn app.asgi:app` (default: the installed refundwatch, this checkout)",
    )
    _add_limits(p)
    _add_groups(p)
    p.add_argument("--output", default=str(RESULTS / "latest.json"))
    p.add_argument(
        "--compare",
        nargs="+",
        metavar="RESULT_JSON",
        help="run nothing: print a before/after table of these result files, one column each",
    )
    args = _defaults(p.parse_args(argv))
    if args.app_dir:
        args.app_dir = str(Path(args.app_dir).resolve())
        if not (Path(args.app_dir) / "app" / "asgi.py").is_file():
            p.error(f"--app-dir {args.app_dir}: no app/asgi.py there")
    return args


def _add_groups(p: argparse.ArgumentParser) -> None:
    names = ", ".join(f"{k} ({v})" for k, v in GROUPS.items())
    p.add_argument(
        "--with",
        dest="with_groups",
        default="",
        metavar="GROUPS",
        help=f"add phase groups to the default ({', '.join(DEFAULT_GROUPS)}); groups: {names}",
    )
    p.add_argument("--skip", default="", metavar="GROUPS", help="leave these phase groups out")
    p.add_argument("--all", action="store_true", help="every phase group (imports, connector too)")
    p.add_argument(
        "--import-events",
        type=int,
        default=None,
        help="events of the import-vs-HTTP phase (default 200,000; quick 50,000; 0 skips)",
    )
    p.add_argument(
        "--import-rows",
        type=int,
        default=None,
        help="rows of the PDD order export imported (default 200,000; quick 50,000; 0 skips; "
        "the docs' figure is 1,000,000)",
    )
    p.add_argument(
        "--import-max-seconds", type=float, default=900.0, help="cut any one import after this"
    )
    p.add_argument("--connector-stores", type=int, default=5)
    p.add_argument("--connector-orders-per-day", type=int, default=2000)
    p.add_argument("--connector-days", type=int, default=None, help="default 30 (quick 3)")
    p.add_argument(
        "--connector-rates",
        default="published,unthrottled",
        help="REFUNDWATCH_PDD_CALLS_PER_MINUTE of each backfill: published (600), "
        "unthrottled (100,000)",
    )
    p.add_argument(
        "--connector-interval",
        type=float,
        default=60.0,
        help="REFUNDWATCH_SYNC_INTERVAL_SECONDS of the worker (the app's default is 60)",
    )
    p.add_argument(
        "--connector-steady-seconds",
        type=float,
        default=None,
        help="steady state measured after the first backfill (default 180; quick 70; 0 skips)",
    )
    p.add_argument(
        "--connector-max-seconds", type=float, default=900.0, help="cut a backfill after this"
    )
    p.add_argument(
        "--connector-profile",
        action="store_true",
        help="py-spy on the worker for the first --profile-seconds of each backfill "
        "(the profiled runs' figures carry py-spy's cost)",
    )
    p.add_argument(
        "--big-store-orders",
        type=int,
        default=None,
        help="orders of the big store in its window (default 100,000; quick 20,000; 0 skips)",
    )
    p.add_argument(
        "--insight-reads",
        type=int,
        default=None,
        help="requests per run of each explaining-figure read (default 500; quick 200)",
    )
    p.add_argument("--console-stores", type=int, default=200, help="stores for the console pages")
    p.add_argument(
        "--console-events",
        type=int,
        default=100_000,
        help="events of the stores added for the console",
    )
    p.add_argument(
        "--console-reads",
        type=int,
        default=None,
        help="requests per run of each console page (default 200; quick 60)",
    )


def _add_limits(p: argparse.ArgumentParser) -> None:
    p.add_argument("--no-profile", action="store_true")
    p.add_argument("--profile-seconds", type=float, default=15.0)
    p.add_argument(
        "--max-run-seconds", type=float, default=300.0, help="hard limit of any single measured run"
    )
    p.add_argument(
        "--batch-max-seconds",
        type=float,
        default=None,
        help="cut a batch-ingest run after this long (default 60, quick 30): keeps a full run "
        "under ~15 minutes when the service is slow; the JSON tells how many events were sent",
    )
    p.add_argument(
        "--read-max-seconds",
        type=float,
        default=25.0,
        help="cut a metrics-read run after this long",
    )
    p.add_argument(
        "--load-max-seconds",
        type=float,
        default=None,
        help="cut the load to --events-large after this long (default 240, quick 90)",
    )
    p.add_argument("--seed", type=int, default=20261126)
    p.add_argument(
        "--wait-quiet",
        type=float,
        default=0.0,
        help="wait up to this many seconds for other jobs to leave the CPU before starting",
    )


# Defaults that depend on --quick: flag -> (full run, --quick).
RUN_SIZE_DEFAULTS: dict[str, tuple[float, float]] = {
    "events_large": (1_000_000, 200_000),
    "batch_events": (100_000, 25_000),
    "single_seconds": (10.0, 5.0),
    "batch_max_seconds": (60.0, 30.0),
    "load_max_seconds": (240.0, 90.0),
    "reads": (2000, 500),
    "import_events": (200_000, 50_000),
    "import_rows": (200_000, 50_000),
    "connector_days": (30, 3),
    "connector_steady_seconds": (180.0, 70.0),
    "big_store_orders": (100_000, 20_000),
    "insight_reads": (500, 200),
    "console_reads": (200, 60),
}


def _defaults(args: argparse.Namespace) -> argparse.Namespace:
    for name, (full, quick) in RUN_SIZE_DEFAULTS.items():
        if getattr(args, name) is None:
            setattr(args, name, quick if args.quick else full)
    args.concurrency = [int(c) for c in str(args.concurrency).split(",") if c.strip()]
    args.connector_rates = [r.strip() for r in str(args.connector_rates).split(",") if r.strip()]
    for rate in args.connector_rates:
        if rate not in RATES:
            raise SystemExit(f"--connector-rates: {rate!r} is none of {sorted(RATES)}")
    groups = set(GROUPS) if args.all else set(DEFAULT_GROUPS)
    groups |= _names(args.with_groups)
    groups -= _names(args.skip)
    args.groups = sorted(groups)
    return args


def _names(text: str) -> set[str]:
    names = {g.strip() for g in str(text).split(",") if g.strip()}
    unknown = names - set(GROUPS)
    if unknown:
        raise SystemExit(f"unknown phase group(s) {sorted(unknown)}; groups: {sorted(GROUPS)}")
    return names


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.compare:
        print_comparison(args.compare)
        return 0

    def on_term(signum: int, _frame: Any) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, on_term)
    t0 = time.perf_counter()
    out = Path(args.output)
    out.parent.mkdir(parents=True, exist_ok=True)
    # Profiles and server logs go next to the JSON, named after it ("latest.json" -> "latest-…").
    artifacts = str(out.with_name(out.stem + "-"))
    result: dict[str, Any] = {}
    try:
        asyncio.run(run_bench(args, result, artifacts))
    except BaseException:
        result["failed"] = True
        partial = out.with_name(out.stem + "-failed.json")
        write_json(partial, result)
        log(f"FAILED; partial results in {partial}")
        raise
    result["total_seconds"] = round(time.perf_counter() - t0, 1)
    result["markdown"] = markdown(result)
    write_json(out, result)
    print_report(result, out)
    return 0
