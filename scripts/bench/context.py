"""The running bench that every phase gets: servers, databases, the stream and the results.

``open_bench`` creates the databases, migrates, starts refundwatch (from the
chosen tree) and the bare baseline, and waits until both answer; when the run
ends, also on failure or Ctrl-C, it stops both servers and drops every
database it created.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import secrets
import shutil
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.child import ChildRun, run_child
from bench.database import Databases, pg_execute, pg_sessions
from bench.load import IngestRun, ReadRun, drive_ingest, drive_reads
from bench.paths import BIN
from bench.progress import log
from bench.server import AppTree, Server, app_server, baseline_server, migrate, scan_log
from bench.stream import Event, Stream, batch_bodies

BATCH_SIZE = 500  # events per request of every batch-ingest run


@dataclass
class Target:
    """A server under load and the database it writes to."""

    server: Server
    db_url: str

    @property
    def base(self) -> str:
        return self.server.base

    @property
    def pid(self) -> int | None:
        return self.server.pid


@dataclass
class Bench:
    """What a phase works with. It writes its figures into ``result`` under its own key."""

    args: argparse.Namespace
    result: dict[str, Any]
    stream: Stream
    tree: AppTree
    databases: Databases
    headers: dict[str, str]  # the admin key's Authorization, for every request
    app_env: dict[str, str]  # environment of refundwatch's own commands (its database, key)
    app: Target
    baseline: Target | None
    artifacts: str  # path prefix of profiles and server logs: "bench-results/latest-"
    pyspy: str | None
    stored: int = 0  # events refundwatch has accepted so far
    notes: dict[str, Any] = field(default_factory=dict)  # what one phase leaves for later ones

    def artifact(self, name: str) -> Path:
        return Path(self.artifacts + name)

    def env_for(self, db_url: str, **extra: str) -> dict[str, str]:
        """refundwatch's environment (the tree, the admin key) on another database."""
        return {**self.app_env, "REFUNDWATCH_DATABASE_URL": db_url, **extra}

    async def fresh_database(self, prefix: str, *, migrated: bool = True) -> str:
        """A new database ``<prefix>_<tag>`` (dropped with the others), migrated by the tree."""
        url = await self.databases.create(prefix)
        if migrated:
            await migrate(self.tree, self.env_for(url))
        return url

    async def drop_database(self, url: str) -> None:
        """Drop one of the databases made here before the run ends (disk is shared)."""
        for error in await self.databases.drop(url.rsplit("/", 1)[1]):
            log(error)

    @contextlib.asynccontextmanager
    async def extra_app(self, name: str, db_url: str, **extra_env: str) -> AsyncIterator[Target]:
        """Another refundwatch API server of the tree under test on ``db_url``, ready.

        Started like the main one (``serve --no-worker``, a free loopback port); stopped
        when the block ends, also on failure. Its log is ``<output>-server-<name>.log``.
        """
        env = self.env_for(db_url, **extra_env)
        server = app_server(
            self.tree, env, self.args.server_workers, self.artifact(f"server-{name}.log")
        )
        server.name = name
        server.start()
        try:
            await server.wait_ready()
            yield Target(server, db_url)
        finally:
            server.stop()
            self.result.setdefault("server_logs_extra", {})[name] = scan_log(server.log_path)

    def worker(self, name: str, db_url: str, **extra_env: str) -> Server:
        """A ``refundwatch worker`` process of the tree on ``db_url`` (not started yet)."""
        env = self.env_for(db_url, **extra_env)
        return Server(
            name, self.tree.cli("worker"), env, 0, self.artifact(f"{name}.log"), self.tree.root
        )

    async def run_cli(
        self, label: str, *args: str, env: dict[str, str] | None = None, limit_s: float
    ) -> ChildRun:
        """``refundwatch ARGS`` of the tree, timed whole (``bench.child``); log it.

        Its output goes to ``<output>-<label>.log``; a non-zero exit is reported, not raised
        (``import`` exits 1 when rows were refused).
        """
        slug = "".join(c if c.isalnum() else "-" for c in label).strip("-")
        run = await run_child(
            label,
            self.tree.cli(*args),
            env or self.app_env,
            self.tree.root,
            self.artifact(f"{slug}.log"),
            limit_s=limit_s,
        )
        log(
            f"{label}: exit {run.returncode} in {run.seconds:.1f} s, CPU {run.cpu_seconds:.1f} s "
            f"({run.cores:.2f} cores), peak RSS {run.peak_rss_mib:.0f} MiB "
            f"({run.processes} process(es), together {run.tree_rss_mib:.0f} MiB), "
            f"PostgreSQL {run.cpu['postgres_cores']:.2f} cores, other jobs "
            f"{run.cpu['other_cores']:.2f}"
        )
        return run

    async def ingest(
        self,
        label: str,
        events: Sequence[Event],
        concurrency: int,
        target: Target | None = None,
        *,
        size: int = BATCH_SIZE,
        duration: float | None = None,
        max_seconds: float | None = None,
    ) -> IngestRun:
        """POST ``events`` in bodies of ``size`` to ``target`` (refundwatch by default); log it."""
        target = target or self.app
        sessions_before = await pg_sessions(target.db_url)
        run = await drive_ingest(
            label,
            target.base + "/v1/events",
            self.headers,
            batch_bodies(events, size),
            concurrency,
            duration=duration,
            max_seconds=max_seconds or self.args.max_run_seconds,
            server_pid=target.pid,
        )
        opened = await pg_sessions(target.db_url) - sessions_before - 1
        run.db_connections_opened = max(0, opened)
        if run.accepted:
            run.server_cpu_us_per_event = round(
                run.cpu["server_cores"] * run.seconds / run.accepted * 1e6, 1
            )
        if target is self.app:
            run.stored_before = self.stored
            self.stored += run.accepted
        log(run.describe())
        return run

    async def read(
        self,
        label: str,
        paths: Sequence[str],
        concurrency: int,
        *,
        n: int | None = None,
        max_seconds: float | None = None,
        warmup: bool = False,
        headers: dict[str, str] | None = None,
    ) -> ReadRun:
        """GET ``n`` (``--reads``) requests from refundwatch, cycling through ``paths``; log it.

        A ``warmup`` is neither logged nor CPU-accounted. ``headers`` replace the admin
        key's (the console signs in with a cookie).
        """
        run = await drive_reads(
            label,
            self.app.base,
            self.headers if headers is None else headers,
            paths,
            n or self.args.reads,
            concurrency,
            max_seconds=max_seconds or self.args.read_max_seconds,
            server_pid=None if warmup else self.app.pid,
        )
        if not warmup:
            log(run.describe())
        return run


@contextlib.asynccontextmanager
async def open_bench(
    args: argparse.Namespace, result: dict[str, Any], stream: Stream, artifacts: str
) -> AsyncIterator[Bench]:
    """Databases and servers for one run, ready; stopped and dropped when the run ends."""
    tree = AppTree.of(args.app_dir)
    admin_key = "rw_bench_" + secrets.token_urlsafe(24)
    databases = Databases(args.pg, secrets.token_hex(4))
    servers: list[Server] = []
    try:
        app_url = await databases.create("rw_bench")
        base_url = None if args.no_baseline else await databases.create("rw_bench_base")
        env = tree.env(
            {
                **os.environ,
                "REFUNDWATCH_DATABASE_URL": app_url,
                "REFUNDWATCH_BOOTSTRAP_ADMIN_KEY": admin_key,
                "REFUNDWATCH_LOG_LEVEL": "warning",
            }
        )
        if args.app_pool_size:
            env["REFUNDWATCH_DB_POOL_SIZE"] = str(args.app_pool_size)
        app = await _start_app(args, tree, env, artifacts, servers)
        baseline = await _start_baseline(args, base_url, artifacts, servers) if base_url else None
        await app.server.wait_ready()
        if baseline:
            await baseline.server.wait_ready()
        log(
            f"servers ready: refundwatch pid {app.pid} :{app.server.port}"
            + (f", baseline pid {baseline.pid} :{baseline.server.port}" if baseline else "")
        )
        yield Bench(
            args=args,
            result=result,
            stream=stream,
            tree=tree,
            databases=databases,
            headers={"Authorization": f"Bearer {admin_key}", "Content-Type": "application/json"},
            app_env=env,
            app=app,
            baseline=baseline,
            artifacts=artifacts,
            pyspy=shutil.which("py-spy", path=str(BIN)) or shutil.which("py-spy"),
        )
    finally:
        for s in servers:
            s.stop()
        for error in await databases.drop_all():
            log(error)
        log("servers stopped, databases dropped")
        result["server_logs"] = {s.name: scan_log(s.log_path) for s in servers}


async def _start_app(
    args: argparse.Namespace,
    tree: AppTree,
    env: dict[str, str],
    artifacts: str,
    servers: list[Server],
) -> Target:
    t = time.perf_counter()
    await migrate(tree, env)
    db_name = env["REFUNDWATCH_DATABASE_URL"].rsplit("/", 1)[1]
    log(f"migrated {db_name} in {time.perf_counter() - t:.1f} s")
    server = app_server(tree, env, args.server_workers, Path(artifacts + "server-refundwatch.log"))
    servers.append(server)
    server.start()
    return Target(server, env["REFUNDWATCH_DATABASE_URL"])


async def _start_baseline(
    args: argparse.Namespace, db_url: str, artifacts: str, servers: list[Server]
) -> Target:
    from bench_baseline import TABLE_DDL  # scripts/ is on sys.path

    await pg_execute(db_url, TABLE_DDL)
    # The bare baseline gets the pool PERFORMANCE.md recommends: one connection per
    # concurrent request, so it never reconnects.
    pool = max(args.single_clients, *args.concurrency) + 8
    server = baseline_server(
        db_url, pool, args.server_workers, Path(artifacts + "server-baseline.log")
    )
    servers.append(server)
    server.start()
    return Target(server, db_url)
