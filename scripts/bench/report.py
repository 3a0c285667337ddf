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
# p99 targets of read endpoints, by the name a read phase gives its endpoint.
TARGET_READ_P99_MS = {"metrics": 10.0}

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
        target = TARGET_READ_P99_MS.get(endpoint)
        for mode, label in _read_modes(result["config"]):
            x = phase[mode]
            goal = (
                f"p99 ≤ {target:.0f} ms | {_verdict_max(x['p99_ms'], target, ' ms')}"
                if target
                else "— | —"
            )
            out.append(
                f"| {endpoint} read p50 / p99, {label}, {phase['events_stored']:,} events stored "
                f"| {x['p50_ms']:.2f} / {x['p99_ms']:.2f} ms | — | {goal} |"
            )
    return out


def _read_growth_rows(result: dict[str, Any]) -> list[str]:
    rs, rl = result.get("reads_small"), result.get("reads_large")
    if not (rs and rl):
        return []
    out = []
    for mode, label in _read_modes(result["config"]):
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
