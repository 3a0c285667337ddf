"""A measured child process: a ``refundwatch`` command of the tree under test, timed whole.

``run_child`` starts the command in its own process group, waits for it with
``os.wait4`` (which gives that child's own CPU and peak RSS, unlike
``RUSAGE_CHILDREN``, which mixes in every child the bench ever waited for),
samples ``VmHWM`` from ``/proc/<pid>/status`` meanwhile as a cross-check, and
measures PostgreSQL's and the other jobs' cores over the same interval
(sampling the backends every 0.5 s, since the child's own end with it). A
child that outlives its limit is killed with its whole group.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from bench.cpu import cpu_delta, cpu_snapshot


@dataclass
class ChildRun:
    """What one command took: wall, its own CPU and memory, PostgreSQL's cores meanwhile."""

    label: str
    returncode: int
    seconds: float
    user_seconds: float
    system_seconds: float
    # The child's peak RSS: the last VmHWM (the kernel's high-water mark, reset at exec)
    # sampled every 0.5 s while it ran. Not wait4's ru_maxrss: the child is forked from
    # this process before its exec, so that counts the bench's own pages too (a child
    # running /usr/bin/true from a bench holding 600 MiB reports 611 MiB).
    peak_rss_mib: float
    # An importer in parts runs several processes: the peak of their RSS summed (VmRSS of
    # the child and its descendants, sampled together), and how many there were at most.
    tree_rss_mib: float
    processes: int
    wait4_maxrss_mib: float  # kept to show the difference; not the child's own figure
    cpu: dict[str, float] = field(default_factory=dict)  # postgres/other cores meanwhile
    log: str = ""

    @property
    def cpu_seconds(self) -> float:
        return self.user_seconds + self.system_seconds

    @property
    def cores(self) -> float:
        return self.cpu_seconds / self.seconds if self.seconds > 0 else 0.0

    def tail(self, lines: int = 15) -> str:
        path = Path(self.log)
        if not path.exists():
            return ""
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


def _status_kib(pid: int, field: str) -> int:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(field):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def _vmhwm_kib(pid: int) -> int:
    return _status_kib(pid, "VmHWM:")


def _tree(pid: int) -> list[int]:
    """``pid`` and its descendants (from /proc/<pid>/task/*/children)."""
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        try:
            tasks = os.listdir(f"/proc/{current}/task")
        except OSError:
            continue
        for task in tasks:
            try:
                with open(f"/proc/{current}/task/{task}/children") as f:
                    todo.extend(int(c) for c in f.read().split())
            except OSError:
                continue
    return found


async def run_child(
    label: str,
    argv: list[str],
    env: dict[str, str],
    cwd: Path,
    log: Path,
    *,
    limit_s: float,
) -> ChildRun:
    """Run ``argv`` to its end (at most ``limit_s`` seconds); raise if it is cut.

    A non-zero exit is the caller's to judge (``import`` exits 1 when rows were refused).
    """
    before = cpu_snapshot(None)
    start = time.perf_counter()
    proc = _spawn(argv, env, cwd, log)
    hwm = [0]
    tree_rss = [0]
    processes = [1]
    seen = cpu_snapshot(None)

    async def sample() -> None:
        # The child's PostgreSQL backends end with it, before the last snapshot: keep the
        # CPU each was last seen with (what it used in its last ~0.5 s is lost).
        while True:
            tree = _tree(proc.pid)
            hwm[0] = max(hwm[0], *(_vmhwm_kib(p) for p in tree))
            tree_rss[0] = max(tree_rss[0], sum(_status_kib(p, "VmRSS:") for p in tree))
            processes[0] = max(processes[0], len(tree))
            now = cpu_snapshot(None)
            seen.postgres.update(now.postgres)
            seen.postgres_others.update(now.postgres_others)
            await asyncio.sleep(0.5)

    sampler = asyncio.create_task(sample())
    waiting = asyncio.ensure_future(asyncio.to_thread(os.wait4, proc.pid, 0))
    try:
        done, _ = await asyncio.wait({waiting}, timeout=limit_s)
        if not done:
            _kill_group(proc.pid)
            await waiting
            proc.returncode = -9
            raise TimeoutError(f"{label}: cut after {limit_s:.0f} s (see {log})")
        _, status, usage = waiting.result()
    except BaseException:
        if proc.returncode is None:
            _kill_group(proc.pid)
            with contextlib.suppress(BaseException):
                await asyncio.shield(waiting)
            proc.returncode = -9
        raise
    finally:
        sampler.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await sampler
    seconds = time.perf_counter() - start
    after = cpu_snapshot(None)
    after.postgres = {**seen.postgres, **after.postgres}
    after.postgres_others = {**seen.postgres_others, **after.postgres_others}
    proc.returncode = os.waitstatus_to_exitcode(status)
    cpu = cpu_delta(before, after)
    child_cores = (usage.ru_utime + usage.ru_stime) / seconds
    cpu["child_cores"] = round(child_cores, 3)
    cpu["other_cores"] = round(max(0.0, cpu["other_cores"] - child_cores), 3)
    return ChildRun(
        label=label,
        returncode=proc.returncode,
        seconds=round(seconds, 2),
        user_seconds=round(usage.ru_utime, 2),
        system_seconds=round(usage.ru_stime, 2),
        peak_rss_mib=round(hwm[0] / 1024, 1),
        tree_rss_mib=round(tree_rss[0] / 1024, 1),
        processes=processes[0],
        wait4_maxrss_mib=round(usage.ru_maxrss / 1024, 1),
        cpu=cpu,
        log=str(log),
    )


def _spawn(argv: list[str], env: dict[str, str], cwd: Path, log: Path) -> subprocess.Popen[bytes]:
    with open(log, "wb") as out:
        return subprocess.Popen(
            argv,
            env=env,
            cwd=cwd,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )


def _kill_group(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)
