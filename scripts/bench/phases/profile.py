"""Profile phases: py-spy (100 Hz) on the server during extra batch, single and read runs.

The raw collapsed stacks go to ``<output>-profile-<label>.txt`` (speedscope.app
or flamegraph.pl read them); ``result["profiles"]`` keeps the self and inclusive
shares of the busy samples (idle thread-pool threads are dropped).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from bench.context import Bench
from bench.load import IngestRun, ReadRun
from bench.paths import ROOT
from bench.phases import Phase
from bench.phases.reads import store_metrics_paths
from bench.progress import log

PROFILE_BATCH_EVENTS = 300_000  # a ceiling for the profiled batch run (15 s at 20k ev/s)
PROFILE_SINGLE_EVENTS = 60_000
IDLE_LEAVES = {
    "threading.py:Condition.wait",
    "threading.py:Event.wait",
    "queue.py:Queue.get",
    "selectors.py:EpollSelector.select",
}


def profiling(bench: Bench) -> bool:
    if bench.args.no_profile:
        return False
    if not bench.pyspy:
        log("py-spy not found: no profile")
    return bench.pyspy is not None


class ProfileIngest(Phase):
    """Profiled batch (largest ``--concurrency``) and single-event runs."""

    group = "profile"

    def events_reserved(self, args: argparse.Namespace) -> int:
        return 0 if args.no_profile else PROFILE_BATCH_EVENTS + PROFILE_SINGLE_EVENTS

    async def run(self, bench: Bench) -> None:
        profiles: dict[str, Any] = bench.result.setdefault("profiles", {})
        if not profiling(bench):
            return
        args, stream = bench.args, bench.stream
        seconds = args.profile_seconds
        conc, sc = max(args.concurrency), args.single_clients
        events = stream.take(PROFILE_BATCH_EVENTS)
        profiles["batch"] = await profile_run(
            bench,
            f"batch-c{conc}",
            lambda: bench.ingest(f"profiled batch c{conc}", events, conc, duration=seconds),
        )
        stream.give_back(len(events), profiles["batch"]["run"]["events_sent"])
        events = stream.take(PROFILE_SINGLE_EVENTS)
        profiles["single"] = await profile_run(
            bench,
            f"single-c{sc}",
            lambda: bench.ingest(f"profiled single c{sc}", events, sc, size=1, duration=seconds),
        )
        stream.give_back(len(events), profiles["single"]["run"]["events_sent"])


class ProfileReads(Phase):
    """A profiled metrics-read run with ``--read-clients``."""

    group = "profile"

    async def run(self, bench: Bench) -> None:
        profiles: dict[str, Any] = bench.result.setdefault("profiles", {})
        if bench.args.no_profile or not bench.pyspy:
            return
        rc, seconds = bench.args.read_clients, bench.args.profile_seconds
        paths = store_metrics_paths(bench)
        profiles["reads"] = await profile_run(
            bench,
            f"reads-c{rc}",
            lambda: bench.read(
                f"profiled reads c{rc}", paths, rc, n=1_000_000, max_seconds=seconds
            ),
        )


async def profile_run(
    bench: Bench, label: str, drive: Callable[[], Awaitable[IngestRun | ReadRun]]
) -> dict[str, Any]:
    """Run ``drive`` while py-spy records the server; the profile's summary and the run."""
    seconds = bench.args.profile_seconds
    log(f"profiling {label.replace('-', ' ')} with py-spy for {seconds:.0f} s …")
    out = bench.artifact(f"profile-{label}.txt")
    assert bench.pyspy is not None and bench.app.pid is not None
    argv = [
        bench.pyspy, "record", "--pid", str(bench.app.pid), "--duration", str(int(seconds)),
        "--rate", "100", "--format", "raw", "--output", str(out), "--subprocesses",
    ]  # fmt: skip
    proc = await asyncio.create_subprocess_exec(
        *argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    try:
        await asyncio.sleep(1.0)
        run = await drive()
        try:
            output, _ = await asyncio.wait_for(proc.communicate(), timeout=seconds + 60)
        except TimeoutError:
            proc.kill()
            output = b""
    finally:
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()
    result = parse_collapsed(out, roots=(bench.tree.root, ROOT))
    result["file"] = str(out.relative_to(ROOT)) if out.is_relative_to(ROOT) else str(out)
    result["pyspy_output"] = output.decode(errors="replace")[-500:]
    result["run"] = asdict(run)
    top = ", ".join(f"{x['function']} {x['percent']}%" for x in result.get("self", [])[:8])
    log(f"profile {label}: {result['samples']} samples; top self: {top}")
    return result


def parse_collapsed(path: Path, roots: Sequence[Path] = (ROOT,), top: int = 25) -> dict[str, Any]:
    """Self and inclusive shares per function from py-spy's raw (collapsed-stack) output.

    Percentages are of the busy samples: stacks of idle thread-pool threads are dropped.
    Frames under one of ``roots`` are named relative to it ("app/ingest/road.py:…").
    """
    self_counts: Counter[str] = Counter()
    incl_counts: Counter[str] = Counter()
    total = 0
    idle = 0
    if not path.exists():
        return {"samples": 0}
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        # The leading frames are "process ..." / "thread ..." labels.
        frames = [f for f in (_short_frame(f, roots) for f in stack.split(";")) if f]
        if not frames or frames[-1] in IDLE_LEAVES:
            idle += n  # a thread-pool thread waiting for work: not CPU
            continue
        total += n
        self_counts[frames[-1]] += n
        for f in set(frames):
            incl_counts[f] += n

    def share(c: Counter[str]) -> list[dict[str, Any]]:
        return [
            {"function": f, "percent": round(100.0 * v / total, 1)} for f, v in c.most_common(top)
        ]

    app_incl = Counter({f: v for f, v in incl_counts.items() if f.startswith("app/")})
    return {
        "samples": total,
        "idle_samples_dropped": idle,
        "self": share(self_counts),
        "inclusive": share(incl_counts),
        "inclusive_app": share(app_incl),
    }


def _short_frame(frame: str, roots: Sequence[Path]) -> str:
    """'ingest_batch (app/ingest/service.py:140)' -> 'app/ingest/service.py:ingest_batch'."""
    frame = frame.strip()
    if frame.startswith(("process ", "thread ")) or not frame:
        return ""
    name, _, loc = frame.partition(" (")
    loc = loc.rstrip(")")
    file = loc.rsplit(":", 1)[0]
    for marker in ("/site-packages/", "/lib/python3"):
        if marker in file:
            file = file.split(marker, 1)[1]
            break
    for root in roots:
        prefix = str(root) + "/"
        if prefix in file:
            file = file.split(prefix, 1)[1]
            break
    return f"{file}:{name}"
