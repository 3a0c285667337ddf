"""Import phases: the file road against the HTTP batch road, and a big merchant-backend export.

``ImportVsHttp`` (``result["import"]``): the same ``--import-events`` events of
the bench's generator (a stream of their own, whole orders over the 30 days),
(a) written to an events-jsonl file and imported with the tree's
``refundwatch import`` into a fresh database, and (b) posted over HTTP (500
per request, 4 clients) to a refundwatch server on another fresh database,
``--runs`` times, alternating which goes first. The importer is timed whole
(its own CPU and peak RSS from ``wait4``); PostgreSQL's cores are measured
over the same interval. After each pair, ``/metrics`` and ``/products`` of
every store are read from both databases (same ``as_of``) and compared.

Beside them, in the same runs, two bare baselines: the bench's bare HTTP
baseline (``scripts/bench_baseline.py``, its table emptied first) posting the
same events, and a bare import: the same file read line by line in the bench's
process, each line parsed, and COPYed 10,000 rows a transaction into a
one-table database (what any importer has to do at least).

``PddExportImport`` (``result["import_pdd"]``): a PDD order export of
``--import-rows`` rows (``tests/imports/exports.write_many_orders_csv``)
imported into a fresh database: rows/s, events/s, the importer's peak RSS.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import orjson

from bench.child import ChildRun
from bench.context import Bench, Target
from bench.cpu import cpu_delta, cpu_snapshot
from bench.database import connection, pg_execute
from bench.load import IngestRun, median
from bench.paths import use_tests
from bench.phases import Phase
from bench.progress import log
from bench.stream import CST, Event, generate_stream, write_jsonl

HTTP_CLIENTS = 4
COPY_ROWS = 10_000  # rows per transaction of the bare import (PERFORMANCE.md's COPY ceiling)
TARGET_IMPORT_EV_S = 50_000
TARGET_IMPORT_RATIO = 5.0
TARGET_IMPORT_RATIO_FLOOR = 3.0
TARGET_IMPORT_RSS_MIB = 300.0


async def import_record(db_url: str) -> dict[str, Any]:
    """The newest import's row: counts and its own start/finish (the road's time)."""
    async with connection(db_url) as conn:
        row = await conn.fetchrow(
            "SELECT id, status, rows_read, events_accepted, events_duplicate, events_rejected,"
            " row_errors, skipped_by_cause, started_at, finished_at FROM imports"
            " ORDER BY id DESC LIMIT 1"
        )
        events = await conn.fetchval("SELECT count(*) FROM events")
    if row is None:
        return {"events_in_db": events}
    out = dict(row)
    started, finished = out.pop("started_at"), out.pop("finished_at")
    out["road_seconds"] = (
        round((finished - started).total_seconds(), 2) if started and finished else None
    )
    out["events_in_db"] = events
    out["skipped_by_cause"] = str(out["skipped_by_cause"])
    return out


def child_summary(run: ChildRun, events: int, rows: int | None = None) -> dict[str, Any]:
    out = asdict(run)
    out["cpu_seconds"] = round(run.cpu_seconds, 2)
    out["importer_cores"] = round(run.cores, 3)
    out["ev_per_s"] = round(events / run.seconds) if run.seconds else 0
    out["cpu_us_per_event"] = round(run.cpu_seconds / events * 1e6, 1) if events else None
    if rows is not None:
        out["rows_per_s"] = round(rows / run.seconds) if run.seconds else 0
    return out


class ImportVsHttp(Phase):
    """The same events through ``refundwatch import`` and ``POST /v1/events``: ``import``."""

    group = "imports"

    async def run(self, bench: Bench) -> None:
        args = bench.args
        n = args.import_events
        if n <= 0:
            return
        now = datetime.now(UTC)
        stream = await asyncio.to_thread(generate_stream, n + 2000, 0, args.seed + 9, now)
        events = stream.rest[:n]
        path = bench.artifact("import-events.jsonl")
        size = await asyncio.to_thread(write_jsonl, path, events)
        log(f"import phase: {len(events):,} events of {len(stream.stores)} stores, {size:,} bytes")
        out: dict[str, Any] = {
            "events": len(events),
            "file_bytes": size,
            "http_clients": HTTP_CLIENTS,
            "imports": [],
            "http": [],
            "checks": [],
        }
        try:
            for r in range(args.runs):
                order = ("import", "http") if r % 2 == 0 else ("http", "import")
                urls: dict[str, str] = {}
                for road in order:
                    if road == "import":
                        urls[road], run = await self._import(bench, path, len(events), r)
                        out["imports"].append(run)
                    else:
                        urls[road], irun = await self._http(bench, events, r)
                        out["http"].append(asdict(irun))
                out.setdefault("bare_copy", []).append(await bare_copy(bench, path, r))
                if bench.baseline:
                    await pg_execute(bench.baseline.db_url, "TRUNCATE bench_events")
                    base = await bench.ingest(
                        f"import-compare baseline c{HTTP_CLIENTS} #{r + 1}",
                        events,
                        HTTP_CLIENTS,
                        bench.baseline,
                    )
                    out.setdefault("baseline_http", []).append(asdict(base))
                out["checks"].append(
                    await compare_figures(bench, urls["import"], urls["http"], stream.stores, r)
                )
                for url in urls.values():
                    await bench.drop_database(url)
        finally:
            path.unlink(missing_ok=True)
        out.update(self._summary(out))
        bench.result["import"] = out
        log(
            f"import: {out['import_ev_per_s']:,.0f} ev/s, HTTP batch {out['http_ev_per_s']:,.0f} "
            f"ev/s: {out['ratio']:.2f}×; figures equal: {out['figures_equal']}"
        )

    async def _import(
        self, bench: Bench, path: Path, events: int, r: int
    ) -> tuple[str, dict[str, Any]]:
        url = await bench.fresh_database(f"rw_bench_imp{r}")
        run = await bench.run_cli(
            f"import events #{r + 1}",
            "import",
            str(path),
            env=bench.env_for(url),
            limit_s=bench.args.import_max_seconds,
        )
        summary = child_summary(run, events)
        summary["record"] = await import_record(url)
        road = summary["record"].get("road_seconds")
        summary["road_ev_per_s"] = round(events / road) if road else None
        if run.returncode != 0:
            log(f"  import exited {run.returncode}:\n{run.tail()}")
        return url, summary

    async def _http(self, bench: Bench, events: list[Event], r: int) -> tuple[str, IngestRun]:
        url = await bench.fresh_database(f"rw_bench_http{r}")
        async with bench.extra_app(f"import-http{r}", url) as target:
            run = await bench.ingest(
                f"import-compare HTTP batch c{HTTP_CLIENTS} #{r + 1}",
                events,
                HTTP_CLIENTS,
                target,
                max_seconds=bench.args.import_max_seconds,
            )
        return url, run

    @staticmethod
    def _summary(out: dict[str, Any]) -> dict[str, Any]:
        imp, http = out["imports"], out["http"]
        bare = out.get("bare_copy", [])
        base = out.get("baseline_http", [])
        ev = median([x["ev_per_s"] for x in imp])
        road = [x["road_ev_per_s"] for x in imp if x.get("road_ev_per_s")]
        hev = median([x["ev_per_s"] for x in http])
        return {
            "import_ev_per_s": round(ev),
            "import_road_ev_per_s": round(median(road)) if road else None,
            "http_ev_per_s": round(hev),
            "ratio": round(ev / hev, 2) if hev else None,
            "import_cores": round(median([x["importer_cores"] for x in imp]), 2),
            "import_cpu_us_per_event": round(median([x["cpu_us_per_event"] for x in imp]), 1),
            "import_postgres_cores": round(median([x["cpu"]["postgres_cores"] for x in imp]), 2),
            "import_other_cores": round(median([x["cpu"]["other_cores"] for x in imp]), 2),
            "import_peak_rss_mib": max(x["peak_rss_mib"] for x in imp),
            "import_tree_rss_mib": max(x.get("tree_rss_mib", 0.0) for x in imp),
            "import_processes": max(x.get("processes", 1) for x in imp),
            "http_server_cores": round(median([x["cpu"]["server_cores"] for x in http]), 2),
            "http_server_cpu_us_per_event": round(
                median([x["server_cpu_us_per_event"] for x in http]), 1
            ),
            "http_postgres_cores": round(median([x["cpu"]["postgres_cores"] for x in http]), 2),
            "http_other_cores": round(median([x["cpu"]["other_cores"] for x in http]), 2),
            "figures_equal": all(c["equal"] for c in out["checks"]),
            "bare_copy_ev_per_s": round(median([x["ev_per_s"] for x in bare])) if bare else None,
            "baseline_http_ev_per_s": round(median([x["ev_per_s"] for x in base]))
            if base
            else None,
        }


async def bare_copy(bench: Bench, path: Path, r: int) -> dict[str, Any]:
    """The bare import: parse every line of ``path`` and COPY it, 10,000 rows a transaction."""
    from bench_baseline import TABLE_DDL  # scripts/ is on sys.path

    url = await bench.fresh_database(f"rw_bench_copy{r}", migrated=False)
    try:
        await pg_execute(url, TABLE_DDL)
        columns = ["event_id", "store_id", "type", "occurred_at", "payload"]
        async with connection(url) as conn:
            before = cpu_snapshot(None)
            t = time.perf_counter()
            rows: list[tuple[Any, ...]] = []
            n = 0
            with path.open("rb") as f:
                for line in f:
                    e = orjson.loads(line)
                    rows.append(
                        (
                            e["event_id"],
                            e["store_id"],
                            e["type"],
                            datetime.fromisoformat(e["occurred_at"]),
                            line.decode().rstrip("\n"),
                        )
                    )
                    if len(rows) == COPY_ROWS:
                        n += await _copy(conn, rows, columns)
                        rows = []
            n += await _copy(conn, rows, columns)
            seconds = time.perf_counter() - t
            cpu = cpu_delta(before, cpu_snapshot(None))
    finally:
        await bench.drop_database(url)
    out = {"events": n, "seconds": round(seconds, 2), "ev_per_s": round(n / seconds), "cpu": cpu}
    log(
        f"bare import (parse + COPY {COPY_ROWS:,}/transaction) #{r + 1}: {out['ev_per_s']:,} "
        f"ev/s, bench {cpu['client_cores']:.2f} cores, PostgreSQL {cpu['postgres_cores']:.2f}"
    )
    return out


async def _copy(conn: Any, rows: list[tuple[Any, ...]], columns: list[str]) -> int:
    if not rows:
        return 0
    async with conn.transaction():
        await conn.copy_records_to_table("bench_events", records=rows, columns=columns)
    return len(rows)


async def compare_figures(
    bench: Bench, import_url: str, http_url: str, stores: list[str], r: int
) -> dict[str, Any]:
    """``/metrics`` and ``/products`` of every store, from both databases, at one ``as_of``."""
    as_of = datetime.now(CST).date().isoformat()
    paths = [f"/v1/stores/{s}/metrics?as_of={as_of}" for s in stores]
    paths += [f"/v1/stores/{s}/products?as_of={as_of}&limit=200" for s in stores]
    async with bench.extra_app(f"import-check{r}", import_url) as imported:
        a = await _get_all(bench, imported, paths)
    async with bench.extra_app(f"import-http-check{r}", http_url) as posted:
        b = await _get_all(bench, posted, paths)
    differ = [p for p in paths if a[p] != b[p]]
    check = {
        "run": r + 1,
        "as_of": as_of,
        "documents_compared": len(paths),
        "stores": len(stores),
        "equal": not differ,
        "differ": differ[:10],
    }
    if differ:
        first = differ[0]
        check["example"] = {"import": a[first], "http": b[first]}
    log(
        f"  figures after import vs HTTP, run {r + 1}: {len(paths) - len(differ)}/{len(paths)} equal"
    )
    return check


async def _get_all(bench: Bench, target: Target, paths: list[str]) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=target.base, headers=bench.headers, timeout=60) as c:
        out = {}
        for p in paths:
            r = await c.get(p)
            out[p] = r.json() if r.status_code == 200 else {"status": r.status_code}
        return out


class PddExportImport(Phase):
    """A ``--import-rows`` PDD order export into a fresh database: ``import_pdd``."""

    group = "imports"

    async def run(self, bench: Bench) -> None:
        args = bench.args
        if args.import_rows <= 0:
            return
        use_tests()
        from tests.imports.exports import write_many_orders_csv

        path = bench.artifact("import-orders.csv")
        t = time.perf_counter()
        await asyncio.to_thread(write_many_orders_csv, path, args.import_rows)
        written = time.perf_counter() - t
        size = path.stat().st_size
        log(f"PDD order export: {args.import_rows:,} rows, {size:,} bytes in {written:.0f} s")
        url = await bench.fresh_database("rw_bench_pdd")
        try:
            run = await bench.run_cli(
                f"import PDD export {args.import_rows} rows",
                "import",
                str(path),
                "--store",
                "pdd-export",
                env=bench.env_for(url),
                limit_s=args.import_max_seconds,
            )
            record = await import_record(url)
        finally:
            path.unlink(missing_ok=True)
            await bench.drop_database(url)
        events = int(record.get("events_accepted") or 0)
        out = child_summary(run, events, rows=args.import_rows)
        out.update(rows=args.import_rows, file_bytes=size, record=record, events=events)
        road = record.get("road_seconds")
        out["road_rows_per_s"] = round(args.import_rows / road) if road else None
        out["road_ev_per_s"] = round(events / road) if road else None
        if run.returncode != 0:
            log(f"  import exited {run.returncode}:\n{run.tail()}")
        bench.result["import_pdd"] = out
        log(
            f"PDD export import: {out['rows_per_s']:,} rows/s, {out['ev_per_s']:,} ev/s, "
            f"peak RSS {run.peak_rss_mib:.0f} MiB (VmHWM), {run.processes} process(es) "
            f"together {run.tree_rss_mib:.0f} MiB"
        )
