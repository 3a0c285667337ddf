"""Before/after tables from result files (``scripts/bench --compare A.json B.json …``).

Runs are grouped by the source tree they measured (``--app-dir``): with
several runs per tree, the first table gives each tree's medians and the ratio
of the last tree to the first; the second shows every run. Each figure stands
beside the bare baseline of its own run, the one ratio the machine's drift
leaves alone.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import orjson

Result = dict[str, Any]
Metric = tuple[str, Callable[[Result], float | None], str]  # row name, value, format


def print_comparison(paths: Sequence[str]) -> None:
    runs = [(Path(p).stem, orjson.loads(Path(p).read_bytes())) for p in paths]
    groups: dict[str, list[Result]] = {}
    for _, result in runs:
        groups.setdefault(result.get("code", {}).get("tree", "?"), []).append(result)
    if len(groups) > 1 and any(len(g) > 1 for g in groups.values()):
        print(group_markdown(groups))
        print()
    print(runs_markdown(runs))


def runs_markdown(runs: Sequence[tuple[str, Result]]) -> str:
    """One column per run."""
    out = [
        "| run | " + " | ".join(label for label, _ in runs) + " |",
        "|---|" + "---:|" * len(runs),
    ]
    for name, text in _facts():
        out.append(f"| {name} | " + " | ".join(text([r]) for _, r in runs) + " |")
    for name, value, fmt in metrics([r for _, r in runs]):
        out.append(f"| {name} | " + " | ".join(_cell(value(r), fmt) for _, r in runs) + " |")
    return "\n".join(out)


def group_markdown(groups: dict[str, list[Result]]) -> str:
    """One column per tree (the median of its runs), and the last tree over the first."""
    trees = list(groups)
    first, last = Path(trees[0]).name, Path(trees[-1]).name
    out = [
        "| median of runs | " + " | ".join(Path(t).name for t in trees) + f" | {last} / {first} |",
        "|---|" + "---:|" * (len(trees) + 1),
    ]
    for name, text in _facts():
        out.append(f"| {name} | " + " | ".join(text(groups[t]) for t in trees) + " | |")
    for name, value, fmt in metrics([r for g in groups.values() for r in g]):
        medians = [_median([value(r) for r in groups[t]]) for t in trees]
        a, b = medians[0], medians[-1]
        ratio = f"{b / a:.2f}×" if a and b is not None else "—"
        out.append(f"| {name} | " + " | ".join(_cell(m, fmt) for m in medians) + f" | {ratio} |")
    return "\n".join(out)


def metrics(results: Sequence[Result]) -> list[Metric]:
    """The headline figures of the results, as numbers (rows any of them has)."""
    cfg = results[0]["config"]
    out: list[Metric] = []
    if any("batch" in r for r in results):
        for conc in cfg["concurrency"]:
            out += _ingest_metrics(
                f"batch {conc} clients", "batch", f"app_c{conc}", f"base_c{conc}"
            )
    if any("single" in r for r in results):
        out += _ingest_metrics("single", "single", "app", "base")
    keys: list[str] = []
    for r in results:
        keys += [k for k in r if k.startswith("reads_") and k not in keys]
    for key in keys:
        endpoint = next(
            (r[key].get("endpoint", "metrics") for r in results if isinstance(r.get(key), dict)),
            "metrics",
        )
        for mode in ("sequential", f"c{cfg['read_clients']}"):
            if not any(mode in r.get(key, {}) for r in results):
                continue
            for q in ("p50", "p99"):
                name = f"{endpoint} read {q} ms, {mode}, {key.removeprefix('reads_')}"
                out.append((name, _getter(key, mode, f"{q}_ms"), ".2f"))
    if any("import" in r for r in results):
        out += [
            ("import ev/s (CLI wall)", _getter("import", "import_ev_per_s"), ",.0f"),
            ("HTTP batch ev/s beside the import", _getter("import", "http_ev_per_s"), ",.0f"),
            ("import / HTTP batch", _getter("import", "ratio"), ".2f"),
        ]
    return out


def _ingest_metrics(name: str, group: str, app: str, base: str) -> list[Metric]:
    def ratio(r: Result) -> float | None:
        a, b = _get(r, group, app, "ev_per_s"), _get(r, group, base, "ev_per_s")
        return a / b if a is not None and b else None

    return [
        (f"{name}, refundwatch ev/s", lambda r: _get(r, group, app, "ev_per_s"), ",.0f"),
        (f"{name}, bare baseline ev/s", lambda r: _get(r, group, base, "ev_per_s"), ",.0f"),
        (f"{name}, refundwatch / baseline", ratio, ".3f"),
        (
            f"{name}, server CPU µs/event",
            lambda r: _get(r, group, app, "server_cpu_us_per_event"),
            ",.0f",
        ),
    ]


def _facts() -> list[tuple[str, Callable[[list[Result]], str]]]:
    """Rows of text about the runs: when, which code, how fast the CPU was."""

    def started(rs: list[Result]) -> str:
        times = sorted(r.get("started_at", "?").replace("T", " ")[:19] for r in rs)
        return times[0] if times[0] == times[-1] else f"{times[0]} … {times[-1][11:]}"

    def code(rs: list[Result]) -> str:
        shas = {r.get("code", {}).get("app_sha256", "?") for r in rs}
        return ", ".join(sorted(shas))

    def calibration(rs: list[Result]) -> str:
        values = [v for r in rs for v in r.get("calibration_us", {}).values()]
        return f"{min(values)}–{max(values)}" if values else "—"

    def other_jobs(rs: list[Result]) -> str:
        values = [
            run["cpu"]["other_cores"]
            for r in rs
            for group in ("batch", "single")
            for summary in r.get(group, {}).values()
            for run in summary["runs"]
        ]
        return f"{statistics.median(values):.2f} (max {max(values):.2f})" if values else "—"

    return [
        ("started (UTC)", started),
        ("app code sha256", code),
        ("CPU µs per sum(range(1000)), min–max", calibration),
        ("other jobs' cores in ingest runs, median", other_jobs),
    ]


def _getter(*keys: str) -> Callable[[Result], float | None]:
    return lambda r: _get(r, *keys)


def _get(r: Result, *keys: str) -> float | None:
    x: Any = r
    for k in keys:
        if not isinstance(x, dict) or k not in x:
            return None
        x = x[k]
    return float(x)


def _median(values: list[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


def _cell(value: float | None, fmt: str) -> str:
    return "—" if value is None else format(value, fmt)
