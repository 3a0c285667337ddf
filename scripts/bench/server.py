"""The servers the bench measures: refundwatch (from a chosen source tree) and the bare baseline.

Each runs in its own process group on a free loopback port; ``Server.stop``
always kills the whole group, so no worker outlives a run.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from bench.cpu import all_processes, process_tree
from bench.paths import BIN, ROOT, SCRIPTS


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    """A server subprocess in its own process group; stop() always kills the whole group."""

    def __init__(
        self,
        name: str,
        argv: list[str],
        env: dict[str, str],
        port: int,
        log: Path,
        cwd: Path = ROOT,
    ) -> None:
        self.name, self.argv, self.env, self.port, self.log_path = name, argv, env, port, log
        self.cwd = cwd
        self.proc: subprocess.Popen[bytes] | None = None
        self.base = f"http://127.0.0.1:{port}"

    def start(self) -> None:
        self._log = open(self.log_path, "wb")  # noqa: SIM115
        self.proc = subprocess.Popen(
            self.argv,
            env=self.env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            cwd=self.cwd,
        )

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    async def wait_ready(self, limit_s: float = 90.0) -> None:
        deadline = time.monotonic() + limit_s
        async with httpx.AsyncClient(timeout=5.0) as client:
            for _ in range(int(limit_s / 0.2) + 1):
                if self.proc is not None and self.proc.poll() is not None:
                    raise RuntimeError(
                        f"{self.name} exited with {self.proc.returncode}; see {self.log_path}"
                    )
                with contextlib.suppress(httpx.HTTPError):
                    r = await client.get(self.base + "/readyz")
                    if r.status_code == 200:
                        return
                if time.monotonic() > deadline:
                    break
                await asyncio.sleep(0.2)
        raise RuntimeError(f"{self.name} not ready after {limit_s:.0f} s; see {self.log_path}")

    def worker_pids(self) -> list[int]:
        if self.pid is None:
            return []
        return process_tree(self.pid, all_processes())

    def stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
        else:  # the leader exited: make sure no worker of its group lingers
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.proc.pid, signal.SIGKILL)
        self._log.close()
        self.proc = None


def scan_log(path: Path) -> dict[str, Any]:
    text = path.read_text(errors="replace") if path.exists() else ""
    lines = text.splitlines()
    interesting = [
        ln
        for ln in lines
        if any(w in ln for w in ("Traceback", "ERROR", "Error", "deadlock", "Exception", "WARNING"))
    ]
    return {
        "lines": len(lines),
        "tracebacks": text.count("Traceback"),
        "deadlocks": text.lower().count("deadlock detected"),
        "sample": interesting[:20],
    }


@dataclass(frozen=True)
class AppTree:
    """The refundwatch source tree whose server is measured.

    ``path`` None is the installed ``refundwatch`` command (this checkout, as
    `make bench` always ran it). A path (``--app-dir``) runs that tree's ``app``
    package with the same venv: the tree goes first on PYTHONPATH, so it wins
    over the editable install, and the server is ``python -m uvicorn
    app.asgi:app`` with the flags ``refundwatch serve --no-worker`` passes.
    """

    path: Path | None = None

    @classmethod
    def of(cls, app_dir: str | None) -> AppTree:
        """The tree of ``--app-dir`` (already resolved), or this checkout's install."""
        return cls(Path(app_dir) if app_dir else None)

    @property
    def root(self) -> Path:
        return self.path or ROOT

    def env(self, base: dict[str, str]) -> dict[str, str]:
        if self.path is None:
            return dict(base)
        pythonpath = [str(self.path), *filter(None, [base.get("PYTHONPATH")])]
        return {**base, "PYTHONPATH": os.pathsep.join(pythonpath)}

    def cli(self, *args: str) -> list[str]:
        """argv of ``refundwatch ARGS`` from this tree."""
        if self.path is None:
            return [str(BIN / "refundwatch"), *args]
        return [sys.executable, "-m", "app.cli", *args]

    def serve(self, port: int, workers: int) -> list[str]:
        """argv of the API server alone (no in-process worker) on 127.0.0.1:``port``."""
        if self.path is None:
            return self.cli(
                "serve", "--no-worker", "--host", "127.0.0.1", "--port", str(port),
                "--workers", str(workers),
            )  # fmt: skip
        return [
            sys.executable, "-m", "uvicorn", "app.asgi:app", "--host", "127.0.0.1",
            "--port", str(port), "--workers", str(workers), "--log-level", "warning",
            "--no-access-log", "--proxy-headers",
        ]  # fmt: skip


async def migrate(tree: AppTree, env: dict[str, str]) -> None:
    """``refundwatch migrate`` of ``tree`` on the database named in ``env``."""
    await asyncio.to_thread(
        subprocess.run,
        tree.cli("migrate"),
        env=env,
        check=True,
        cwd=tree.root,
        capture_output=True,
        timeout=120,
    )


def app_server(tree: AppTree, env: dict[str, str], workers: int, log: Path) -> Server:
    port = free_port()
    serve_env = {**env, "REFUNDWATCH_RUN_WORKER": "0"}  # what `serve --no-worker` sets
    return Server("refundwatch", tree.serve(port, workers), serve_env, port, log, tree.root)


def baseline_server(db_url: str, pool_size: int, workers: int, log: Path) -> Server:
    """scripts/bench_baseline.py under uvicorn, on its own database."""
    port = free_port()
    env = {
        **os.environ,
        "BENCH_BASELINE_DATABASE_URL": db_url,
        "BENCH_BASELINE_POOL_SIZE": str(pool_size),
    }
    argv = [
        str(BIN / "uvicorn"), "bench_baseline:app", "--app-dir", str(SCRIPTS),
        "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers),
        "--log-level", "warning", "--no-access-log",
    ]  # fmt: skip
    return Server("baseline", argv, env, port, log)
