"""The bench's output: bench-results/latest.json and the Markdown tables of one run.

Every table is built from the result JSON alone (``bench.compare`` sets several
runs side by side the same way).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson

# Targets from the issue.
TARGET_BATCH = 16_000
TARGET_SINGLE = 1_200
TARGET_READ_GROWTH = 1.20
# p99 targets of read endpoints, by the name a read phase gives its endpoint (or its first
# word: "breakdown by=courier" -> "breakdown").
TARGET_READ_P99_MS = {
    "metrics": 10.0,
    "breakdown": 20.0,
    "skus": 20.0,
    "console overview": 150.0,
    "console store page": 200.0,
}


def read_target(endpoint: str) -> float | None:
    return TARGET_READ_P99_MS.get(endpoint) or TARGET_READ_P99_MS.get(endpoint.split()[0])


JSON_OPTIONS = orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS


def write_json(path: Path, result: dict[str, Any]) -> None:
    path.write_bytes(orjson.dumps(result, option=JSON_OPTIONS, default=str))


def _verdict_min(value: float, target: float) -> str:
    if value >= target:
        return f"met (+{100 * (value / target - 1):.0f}%)"
    return f"**missed** by {100 * (1 - value / target):.0f}% ({value / target:.2f}× target)"


def _verdict_max(value: float, target: float, unit: str = "") -> str:
    if value <= target:
        return "met"
    return f"**missed** by {value - target:.2f}{unit} ({value / target:.2f}× target)"


def markdown(result: dict[str, Any]) -> str:
    """The machine, the targets table and the per-run details of one bench result."""
    cfg = result["config"]
    out = [_machine_line(result["machine"], cfg)]
    cal = result.get("calibration_us", {})
    if cal:
        out.append("")
        out.append(
            "CPU speed during the run (µs per `sum(range(1000))`, lower is faster; ~10 on a "
            "quiet core): " + ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in cal.items()) + "."
        )
    out.append("")
    out.append(
        f"| measurement (median of {cfg['runs']} runs) | refundwatch | bare baseline | target "
        "| verdict |"
    )
    out.append("|---|---:|---:|---|---|")
    out += _ingest_target_rows(result)
    out += _read_target_rows(result)
    out += _read_growth_rows(result)
    out += _import_rows(result)
    out += _connector_rows(result)
    out.append("")
    out += _ingest_detail_rows(result)
    if result.get("load_large"):
        ld = result["load_large"]
        out.append("")
        out.append(
            f"Loading to {cfg['events_large']:,} events: {ld['accepted']:,} events in "
            f"{ld['seconds']:.0f} s = {ld['ev_per_s']:,.0f} ev/s at {ld['concurrency']} clients "
            f"(from {ld['stored_before']:,} stored)."
        )
    return "\n".join(out)


def _machine_line(m: dict[str, Any], cfg: dict[str, Any]) -> str:
    pg = m["postgresql_settings"]
    return (
        f"Machine: {m['nproc']} vCPU ({m['cpu_model']}), {m['memory_gib']} GiB, "
        f"Python {m['python']}, PostgreSQL {m['postgresql']} "
        f"(shared_buffers {pg['shared_buffers']}, fsync {pg['fsync']}, synchronous_commit "
        f"{pg['synchronous_commit']}); uvicorn workers: "
        f"{cfg['server_workers']}; client, server and PostgreSQL on the same cores."
    )


def _ingest_target_rows(result: dict[str, Any]) -> list[str]:
    cfg, out = result["config"], []
    batch = result.get("batch", {})
    for conc in cfg["concurrency"]:
        a, b = batch.get(f"app_c{conc}"), batch.get(f"base_c{conc}")
        if not a:
            continue
        out.append(
            f"| batch ingest, 500 ev/request, {conc} clients "
            f"({min(a['events_per_run']):,}+ ev/run) | {a['ev_per_s']:,.0f} ev/s | "
            + (f"{b['ev_per_s']:,.0f} ev/s" if b else "—")
            + f" | ≥ {TARGET_BATCH:,} ev/s | {_verdict_min(a['ev_per_s'], TARGET_BATCH)} |"
        )
    s = result.get("single", {})
    if s.get("app"):
        a, b = s["app"], s.get("base")
        out.append(
            f"| single-event ingest, 1 ev/request, {cfg['single_clients']} clients | "
            f"{a['ev_per_s']:,.0f} ev/s | "
            + (f"{b['ev_per_s']:,.0f} ev/s" if b else "—")
            + f" | ≥ {TARGET_SINGLE:,} ev/s | {_verdict_min(a['ev_per_s'], TARGET_SINGLE)} |"
        )
    return out


def read_phases(result: dict[str, Any]) -> list[dict[str, Any]]:
    """The results of every read-latency phase, in the order they ran."""
    return [v for k, v in result.items() if k.startswith("reads_") and isinstance(v, dict)]


def _read_modes(cfg: dict[str, Any]) -> list[tuple[str, str]]:
    clients = cfg["read_clients"]
    return [("sequential", "sequential"), (f"c{clients}", f"{clients} clients")]


def _read_target_rows(result: dict[str, Any]) -> list[str]:
    out = []
    for phase in read_phases(result):
        endpoint = phase.get("endpoint", "metrics")
        if phase.get("skipped"):
            out.append(f"| {endpoint} read | skipped: {phase['skipped']} | — | — | — |")
            continue
        target = read_target(endpoint)
        when = (
            f" ({phase['when']})"
            if phase.get("when")
            and phase["when"]
            not in (
                "small",
                "large",
            )
            else ""
        )
        for mode, label in _read_modes(result["config"]):
            x = phase.get(mode)
            if x is None:
                continue
            goal = (
                f"p99 ≤ {target:.0f} ms | {_verdict_max(x['p99_ms'], target, ' ms')}"
                if target
                else "— | —"
            )
            bad = {k: v for k, v in x.get("statuses", {}).items() if k != "200"}
            out.append(
                f"| {endpoint} read{when} p50 / p99, {label}, {phase['events_stored']:,} events "
                f"stored{' NON-200 ' + str(bad) if bad else ''} "
                f"| {x['p50_ms']:.2f} / {x['p99_ms']:.2f} ms | — | {goal} |"
            )
    return out


def _import_rows(result: dict[str, Any]) -> list[str]:
    out = []
    imp = result.get("import")
    if imp:
        ev, http, ratio = imp["import_ev_per_s"], imp["http_ev_per_s"], imp["ratio"] or 0.0
        bare, base = imp.get("bare_copy_ev_per_s"), imp.get("baseline_http_ev_per_s")
        road = imp.get("import_road_ev_per_s")
        out.append(
            f"| import {imp['events']:,} events, events-jsonl, `refundwatch import` wall "
            f"(its own start → finish: {road or 0:,} ev/s) | {ev:,} ev/s | "
            + (f"bare parse + COPY {bare:,} ev/s" if bare else "—")
            + f" | ≥ 50,000 ev/s | {_verdict_min(ev, 50_000)} |"
        )
        if imp.get("import_processes", 1) > 1:
            out.append(
                f"| importer processes (parts by store), their RSS together at peak | "
                f"{imp['import_processes']}, {imp['import_tree_rss_mib']:.0f} MiB "
                f"(largest one {imp['import_peak_rss_mib']:.0f} MiB) | — | — | — |"
            )
        out.append(
            f"| the same events over HTTP, 500/request, {imp['http_clients']} clients | "
            f"{http:,} ev/s | " + (f"{base:,} ev/s" if base else "—") + " | — | — |"
        )
        verdict = _verdict_min(ratio, 5.0)
        if ratio < 5.0:
            verdict += " (floor 3×: " + ("met" if ratio >= 3.0 else "**missed**") + ")"
        out.append(
            f"| import / HTTP batch ratio | {ratio:.2f}× | — | ≥ 5× (≥ 3× at least) | {verdict} |"
        )
        out.append(
            f"| figures after import = after HTTP (/metrics, /products of every store) "
            f"| {'equal' if imp['figures_equal'] else '**differ**'} | — | equal | "
            f"{'met' if imp['figures_equal'] else '**missed**'} |"
        )
    pdd = result.get("import_pdd")
    if pdd:
        rss = pdd["peak_rss_mib"]
        out.append(
            f"| import PDD order export, {pdd['rows']:,} rows ({pdd['events']:,} events) "
            f"| {pdd['rows_per_s']:,} rows/s, {pdd['ev_per_s']:,} ev/s | — | — | — |"
        )
        out.append(
            f"| importer peak RSS, {pdd['rows']:,}-row export | {rss:.0f} MiB | — | ≤ 300 MB | "
            + ("met" if rss * 1.048576 <= 300 else f"**missed** ({rss * 1.048576:.0f} MB)")
            + " |"
        )
    return out


def _connector_rows(result: dict[str, Any]) -> list[str]:
    con = result.get("connector")
    if not con:
        return []
    out = []
    for rate, run in con["runs"].items():
        seconds = run["seconds_to_all_live"]
        verdict = (
            "met"
            if run["all_live"] and seconds <= 120
            else f"**missed** ({seconds / 120:.2f}× target)"
        )
        out.append(
            f"| connector backfill, {con['stores']} stores × {con['orders_per_day']:,} orders/day × "
            f"{con['days']} days, {rate} rate | {seconds:,.0f} s to all live, {run['calls']:,} "
            f"calls ({run['calls_per_s']}/s), worker {run['worker_cores']:.2f} cores, "
            f"{run['worker_cpu_ms_per_call']} ms CPU/call; bound: {run['rate_bound']['bound']} "
            f"| — | < 120 s, bound by calls | {verdict} |"
        )
        steady = run.get("steady")
        if steady:
            share = steady["worker_core_share_per_connection"]
            scaled = steady.get("scaled_to_default_interval")
            measured = f"{100 * share:.2f}% of a core per connection"
            if scaled is not None:
                measured += f", scaled to the 60 s interval {100 * scaled:.2f}%"
                share = scaled
            out.append(
                f"| connector steady state, measured at interval {steady['interval_seconds']:.0f} s "
                f"| {measured} | — | < 2% at 60 s | "
                + ("met" if share < 0.02 else f"**missed** ({share / 0.02:.2f}× target)")
                + " |"
            )
    return out


def _read_growth_rows(result: dict[str, Any]) -> list[str]:
    rs, rl = result.get("reads_small"), result.get("reads_large")
    if not (rs and rl):
        return []
    out = []
    for mode, label in _read_modes(result["config"]):
        if mode not in rs or mode not in rl:
            continue
        ratio = rl[mode]["p99_ms"] / rs[mode]["p99_ms"]
        r50 = rl[mode]["p50_ms"] / rs[mode]["p50_ms"]
        verdict = (
            "met"
            if ratio <= TARGET_READ_GROWTH
            else f"**missed** (p99 +{100 * (ratio - 1):.0f}%, allowed +20%)"
        )
        out.append(
            f"| metrics read growth {rs['events_stored']:,} → {rl['events_stored']:,} "
            f"events, {label} (p50 / p99) | {r50:.2f}× / {ratio:.2f}× | — | p99 ≤ "
            f"{TARGET_READ_GROWTH:.2f}× | {verdict} |"
        )
    return out


def _ingest_detail_rows(result: dict[str, Any]) -> list[str]:
    out = [
        "| ingest run (medians) | request p50 / p99 | server CPU per event | client cores | "
        "server cores | PostgreSQL cores | other jobs' cores | new DB conn/s | non-200 |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    batch, single = result.get("batch", {}), result.get("single", {})
    for key, x in list(batch.items()) + [(f"single_{k}", v) for k, v in single.items()]:
        name = key.replace("app_", "refundwatch batch ").replace("base_", "baseline batch ")
        name = name.replace("single_app", "refundwatch single").replace(
            "single_base", "baseline single"
        )
        out.append(
            f"| {name} | {x['req_p50_ms']:.1f} / {x['req_p99_ms']:.1f} ms "
            f"| {x['server_cpu_us_per_event']:,.0f} µs | {x['client_cores']:.2f} | "
            f"{x['server_cores']:.2f} | {x['postgres_cores']:.2f} | {x['other_cores']:.2f} "
            f"| {x['db_connections_opened_per_s']:.1f} | {x['non_200'] or 'none'} |"
        )
    return out


def print_report(result: dict[str, Any], out: Path) -> None:
    """The machine, the tables, the profiles' top frames and any trouble in the server logs."""
    m = result["machine"]
    print(
        f"nproc {m['nproc']} · {m['memory_gib']} GiB · Python {m['python']} · "
        f"PostgreSQL {m['postgresql']} · {m['cpu_model']}"
    )
    print()
    print(result["markdown"])
    for k, prof in result.get("profiles", {}).items():
        print()
        print(f"py-spy, {k} ingest ({prof['samples']} samples, {prof['file']}) — top self time:")
        for x in prof.get("self", [])[:15]:
            print(f"  {x['percent']:5.1f}%  {x['function']}")
        print("  inclusive, app code:")
        for x in prof.get("inclusive_app", [])[:15]:
            print(f"  {x['percent']:5.1f}%  {x['function']}")
    for name, info in result.get("server_logs", {}).items():
        if info.get("tracebacks") or info.get("sample"):
            print(
                f"\n{name} log: {info['tracebacks']} tracebacks, {info['deadlocks']} deadlocks; "
                f"first lines: {info['sample'][:5]}"
            )
    print(f"\nresults: {out} ({result['total_seconds']:.0f} s)")
