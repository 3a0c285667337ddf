"""CPU accounting from /proc and getrusage: who used the shared cores during a run.

The load generator, the server under test and PostgreSQL share the machine's
cores with other people's jobs; every measured run reports the cores each of
them used, and the calibration loop says how fast the CPU was at the time.
"""

from __future__ import annotations

import asyncio
import os
import resource
import time
import timeit
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from bench.progress import log

CLK_TCK = os.sysconf("SC_CLK_TCK")

# The databases this run created (``bench.database.Databases`` adds them). Other people's
# jobs use the same PostgreSQL server: a backend serving another database is theirs, and
# its CPU goes to "other jobs", not to PostgreSQL's share of this run. The shared server
# processes (checkpointer, WAL writer, background writer, launchers) count as this run's.
OUR_DATABASES: set[str] = set()


def _postgres_is_ours(pid: int) -> bool:
    """A shared server process, or a backend (or autovacuum worker) of one of our databases."""
    if not OUR_DATABASES:
        return True
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            title = f.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return False
    # A backend's title: "postgres: 15/main: <user> <database> <host>(<port>) <state>".
    words = title.split()
    is_backend = "(" in title or "[local]" in title
    if is_backend or "autovacuum worker" in title:
        return any(db in words for db in OUR_DATABASES)
    return True


def process_cpu(pid: int) -> float | None:
    """Seconds of CPU (user + system) the process has used, or None once it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
    except OSError:
        return None
    fields_ = data[data.rindex(b")") + 2 :].split()
    return (int(fields_[11]) + int(fields_[12])) / CLK_TCK  # utime + stime


def all_processes() -> dict[int, tuple[int, str]]:
    """pid -> (ppid, comm) for every process."""
    out: dict[int, tuple[int, str]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                data = f.read()
        except OSError:
            continue
        comm = data[data.index(b"(") + 1 : data.rindex(b")")].decode(errors="replace")
        rest = data[data.rindex(b")") + 2 :].split()
        out[int(entry)] = (int(rest[1]), comm)
    return out


def process_tree(root: int, procs: dict[int, tuple[int, str]]) -> list[int]:
    """``root`` and all its descendants."""
    children: dict[int, list[int]] = defaultdict(list)
    for pid, (ppid, _) in procs.items():
        children[ppid].append(pid)
    out, todo = [], [root]
    for _ in range(10_000):
        if not todo:
            break
        pid = todo.pop()
        out.append(pid)
        todo.extend(children.get(pid, ()))
    return out


def _system_busy() -> tuple[float, float]:
    """(all jiffies, idle jiffies) of the machine so far."""
    with open("/proc/stat") as f:
        parts = [float(x) for x in f.readline().split()[1:]]
    idle = parts[3] + parts[4]
    return sum(parts), idle


@dataclass
class CpuSnapshot:
    wall: float
    client: float
    server: dict[int, float]
    postgres: dict[int, float]
    system: tuple[float, float]
    postgres_others: dict[int, float]


def cpu_snapshot(server_pid: int | None) -> CpuSnapshot:
    procs = all_processes()
    ru = resource.getrusage(resource.RUSAGE_SELF)
    server: dict[int, float] = {}
    if server_pid is not None:
        for pid in process_tree(server_pid, procs):
            v = process_cpu(pid)
            if v is not None:
                server[pid] = v
    postgres: dict[int, float] = {}
    others: dict[int, float] = {}
    for pid, (_, comm) in procs.items():
        if comm.startswith("postgres"):
            v = process_cpu(pid)
            if v is not None:
                (postgres if _postgres_is_ours(pid) else others)[pid] = v
    return CpuSnapshot(
        time.perf_counter(), ru.ru_utime + ru.ru_stime, server, postgres, _system_busy(), others
    )


def cpu_delta(a: CpuSnapshot, b: CpuSnapshot) -> dict[str, float]:
    """Cores used over the interval (1.0 = one core busy all the time)."""
    wall = max(b.wall - a.wall, 1e-9)

    def group(x: dict[int, float], y: dict[int, float]) -> float:
        return sum(v - x.get(pid, 0.0) for pid, v in y.items())

    total = b.system[0] - a.system[0]
    idle = b.system[1] - a.system[1]
    ncpu = os.cpu_count() or 1
    out = {
        "client_cores": round((b.client - a.client) / wall, 3),
        "server_cores": round(group(a.server, b.server) / wall, 3),
        "postgres_cores": round(group(a.postgres, b.postgres) / wall, 3),
        "machine_busy_cores": round(ncpu * (1 - idle / total), 3) if total > 0 else 0.0,
        # PostgreSQL backends of other people's databases (part of other_cores).
        "postgres_others_cores": round(group(a.postgres_others, b.postgres_others) / wall, 3),
    }
    # Whatever else ran on the machine meanwhile (other jobs share these cores).
    ours = out["client_cores"] + out["server_cores"] + out["postgres_cores"]
    out["other_cores"] = round(max(0.0, out["machine_busy_cores"] - ours), 3)
    return out


def cpu_calibration_us() -> float:
    """µs for ``sum(range(1000))``, best of 5: how fast this (shared) CPU is right now.

    A quiet modern x86 core does it in about 8–12 µs; when other jobs share the
    cores the figure rises, and every CPU-bound figure of this run falls with it.
    """
    return round(min(timeit.repeat("sum(range(1000))", number=2000, repeat=5)) / 2000 * 1e6, 1)


async def wait_quiet(limit_s: float) -> dict[str, Any]:
    """Wait (at most ``limit_s``) until the machine is idle: other jobs share these cores."""
    waited = 0.0
    busy = 0.0
    ncpu = os.cpu_count() or 1
    for _ in range(int(limit_s / 3) + 1):
        a = _system_busy()
        await asyncio.sleep(3.0)
        b = _system_busy()
        total = b[0] - a[0]
        busy = ncpu * (1 - (b[1] - a[1]) / total) if total > 0 else 0.0
        if busy < 0.3 or waited >= limit_s:
            break
        waited += 3.0
        log(f"machine busy ({busy:.2f} cores used by other jobs); waiting …")
    return {"waited_s": waited, "busy_cores_at_start": round(busy, 2)}
