#!/usr/bin/env python3
"""Fuzz the HTTP API with schemathesis, from its own ``/openapi.json``.

For each database asked for, this starts ``refundwatch serve`` on a free loopback
port with a fresh database (a new SQLite file, or a new PostgreSQL database that is
dropped afterwards) and a bootstrap admin key, runs schemathesis against it with
that key (every phase: examples, coverage, fuzzing, stateful), stops the server
and says what it found. The bar is zero server errors and zero undocumented status
codes; an ``unhandled error`` in the server's log fails the run too, since a
background failure (the relay, an import) never shows as a response.

Nothing leaves the machine: in the server process every outbound connection (a
webhook delivery, a marketplace sync) is dialled to a loopback sink that answers
``200 {"errcode": 0}``, host names resolve to 127.0.0.1 without DNS, and webhook
URLs naming any other address are refused.

    .venv/bin/python scripts/fuzz.py                       # both databases, CI size
    .venv/bin/python scripts/fuzz.py --db sqlite -n 100    # one database, more examples

PostgreSQL comes from ``--pg-url`` or ``REFUNDWATCH_TEST_POSTGRES_URL`` (default
``postgresql://postgres@127.0.0.1:5432/postgres``); the fuzz database is created
beside it. Exit status: 0 clean, 1 findings, 2 the run could not be made.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = ROOT / ".venv" / "bin"
PYTHON = BIN / "python"
DEFAULT_PG_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
PHASES = "examples,coverage,fuzzing,stateful"
CONFIG = Path(__file__).resolve().parent / "fuzz.toml"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


# --- the server side: `refundwatch serve` with outbound traffic pinned to loopback ---


def _serve_with_loopback_sink(sink_port: int, argv: list[str]) -> int:
    """Run ``refundwatch <argv>`` in this process with every outbound connection
    dialled to the loopback sink (uvicorn with one worker serves in-process)."""
    import http.server
    import ipaddress
    import threading

    import httpcore

    from app import cli
    from app.webhooks import ssrf

    class Sink(http.server.BaseHTTPRequestHandler):
        def _answer(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            self.rfile.read(min(length, 10_000_000))
            body = b'{"errcode": 0, "errmsg": "ok", "code": 0, "msg": "success"}'
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_POST = do_GET = do_PUT = _answer

        def log_message(self, format: str, *args: object) -> None:
            return

    sink = http.server.ThreadingHTTPServer(("127.0.0.1", sink_port), Sink)
    threading.Thread(target=sink.serve_forever, daemon=True).start()

    async def resolve_to_loopback(host: str, port: int) -> list[str]:
        return ["127.0.0.1"]

    vet = ssrf.check_address

    def loopback_only(ip: ssrf.IPAddress, allowed: object = ()) -> None:
        if not ip.is_loopback:
            raise ssrf.UrlRefused("non_public_address", f"{ip}: the fuzz server sends to loopback")
        vet(ip, [ipaddress.ip_network("127.0.0.0/8")])

    dial = httpcore.AnyIOBackend.connect_tcp

    async def dial_sink(self: httpcore.AnyIOBackend, host: str, port: int, **kw: object) -> object:
        return await dial(self, "127.0.0.1", sink_port, **kw)  # type: ignore[arg-type]

    ssrf._default_resolver = resolve_to_loopback  # type: ignore[assignment]
    ssrf.check_address = loopback_only  # type: ignore[assignment]
    httpcore.AnyIOBackend.connect_tcp = dial_sink  # type: ignore[assignment, method-assign]
    return cli.main(argv)


# --- the driver ---


@dataclass
class Target:
    name: str  # sqlite | postgres
    database_url: str
    drop: str | None = None  # the PostgreSQL database to drop afterwards


async def _pg(admin_url: str, sql: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(admin_url)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def _with_database(url: str, name: str) -> str:
    base, _, _ = url.rpartition("/")
    return f"{base}/{name}"


def _wait_ready(base: str, proc: subprocess.Popen[bytes], log: Path, limit_s: float) -> None:
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the server exited with {proc.returncode}; see {log}")
        with (
            contextlib.suppress(OSError),
            urllib.request.urlopen(base + "/readyz", timeout=2) as answer,
        ):
            if answer.status == 200:
                return
        time.sleep(0.2)
    raise RuntimeError(f"the server was not ready after {limit_s:.0f} s; see {log}")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)


def _seed(base: str, key: str) -> None:
    """Stores the fuzz config names (s1 breached, s2 calm), with products and an alert."""
    events: list[dict[str, object]] = []
    for store, refunds in (("s1", 6), ("s2", 1)):
        for i in range(10):
            common = {"store_id": store, "order_id": f"{store}-o{i}"}
            events.append(
                {
                    **common,
                    "event_id": f"seed-{store}-paid-{i}",
                    "type": "order.paid",
                    "occurred_at": "2026-11-20T10:00:00+08:00",
                    "product_id": f"p{i % 2 + 1}",
                    "amount": "19.90",
                }
            )
            if i < refunds:
                events.append(
                    {
                        **common,
                        "event_id": f"seed-{store}-refund-{i}",
                        "type": "refund.requested",
                        "occurred_at": "2026-11-21T10:00:00+08:00",
                        "refund_id": f"{store}-r{i}",
                        "kind": "refund_only",
                        "reason": "quality_issue",
                    }
                )
    request = urllib.request.Request(
        base + "/v1/events",
        data=json.dumps({"events": events}).encode(),
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as answer:
        accepted = json.load(answer)["accepted"]
    if accepted != len(events):
        raise RuntimeError(f"seeding the fuzz server accepted {accepted} of {len(events)} events")


def _server_errors(log: Path) -> list[str]:
    """Lines of the server log that say something went wrong inside it."""
    text = log.read_text(errors="replace") if log.exists() else ""
    markers = (
        "unhandled error",
        "Exception in ASGI",
        # app.api.problems' safety net: a 422 for the client, but a field lacks its type.
        "unvalidated value reached the database",
    )
    return [line for line in text.splitlines() if any(m in line for m in markers)]


def run_one(target: Target, args: argparse.Namespace, work: Path) -> tuple[int, float, list[str]]:
    """Serve, fuzz, stop: schemathesis' exit status, the seconds it took, server errors."""
    port, sink_port = free_port(), free_port()
    key = "rw_fuzz_" + secrets.token_hex(16)
    data_dir = work / target.name
    data_dir.mkdir(parents=True, exist_ok=True)
    env = {
        **os.environ,
        "REFUNDWATCH_ENVIRONMENT": "development",
        "REFUNDWATCH_DATA_DIR": str(data_dir),
        "REFUNDWATCH_DATABASE_URL": target.database_url,
        "REFUNDWATCH_BOOTSTRAP_ADMIN_KEY": key,
        "REFUNDWATCH_WEBHOOK_ALLOWED_NETWORKS": "127.0.0.0/8",
        "REFUNDWATCH_PDD_GATEWAY_URL": f"http://127.0.0.1:{sink_port}/api/router",
        "REFUNDWATCH_LOG_LEVEL": "warning",
    }
    log = work / f"server-{target.name}.log"
    serve = ["serve", "--host", "127.0.0.1", "--port", str(port)]
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [str(PYTHON), str(Path(__file__).resolve()), "--serve", str(sink_port), *serve],
            env=env,
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(base, proc, log, 90)
        report = work / f"report-{target.name}"
        _seed(base, key)
        command = [
            str(BIN / "schemathesis"),
            "--config-file",
            str(CONFIG),
            "run",
            f"{base}/openapi.json",
            "--header",
            f"Authorization: Bearer {key}",
            "--phases",
            args.phases,
            "--max-examples",
            str(args.max_examples),
            "--seed",
            str(args.seed),
            "--workers",
            str(args.workers),
            "--request-timeout",
            "30",
            "--generation-database",
            "none",
            "--report",
            "junit",
            "--report-dir",
            str(report),
            "--no-color",
        ]
        if args.max_time:
            command += ["--max-time", str(args.max_time)]
        print(f"\n=== {target.name}: schemathesis against {base} ===", flush=True)
        started = time.monotonic()
        status = subprocess.call(command, cwd=work, env={**os.environ, "NO_COLOR": "1"})
        elapsed = time.monotonic() - started
    finally:
        _stop(proc)
    return status, elapsed, _server_errors(log)


def _targets(args: argparse.Namespace, work: Path) -> list[Target]:
    chosen = ["sqlite", "postgres"] if args.db == "both" else [args.db]
    targets = []
    for name in chosen:
        if name == "sqlite":
            targets.append(Target("sqlite", f"sqlite:///{work / 'fuzz.db'}"))
        else:
            database = f"rw_fuzz_{secrets.token_hex(5)}"
            targets.append(Target("postgres", _with_database(args.pg_url, database), database))
    return targets


def main(argv: list[str]) -> int:
    if argv[:1] == ["--serve"]:
        return _serve_with_loopback_sink(int(argv[1]), argv[2:])
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0] if __doc__ else None,
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--db", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument(
        "--pg-url",
        default=os.environ.get("REFUNDWATCH_TEST_POSTGRES_URL") or DEFAULT_PG_URL,
        help="a PostgreSQL server to create the fuzz database on",
    )
    parser.add_argument(
        "-n", "--max-examples", type=int, default=25, help="examples per operation and phase"
    )
    parser.add_argument("--phases", default=PHASES, help="schemathesis phases, comma-separated")
    parser.add_argument("--seed", type=int, default=20261126, help="for a reproducible run")
    # One worker: schemathesis' generators call ast.parse, which CPython 3.11 before
    # 3.11.8 cannot run in several threads at once (a SystemError in the run).
    parser.add_argument("--workers", default="1", help="schemathesis workers (1-64 or auto)")
    parser.add_argument("--max-time", type=int, default=0, help="seconds per database; 0 = none")
    parser.add_argument(
        "--keep", type=Path, default=None, help="keep logs and reports in this folder"
    )
    args = parser.parse_args(argv)

    with contextlib.ExitStack() as stack:
        if args.keep is not None:
            work = args.keep.resolve()
            work.mkdir(parents=True, exist_ok=True)
        else:
            work = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="rw-fuzz-")))
        failed = False
        summary = []
        for target in _targets(args, work):
            if target.drop is not None:
                try:
                    asyncio.run(_pg(args.pg_url, f'CREATE DATABASE "{target.drop}"'))
                except Exception as exc:  # no server, no rights: say so, do not fuzz
                    print(f"cannot create a PostgreSQL database at {args.pg_url}: {exc}")
                    return 2
            try:
                status, elapsed, errors = run_one(target, args, work)
            except RuntimeError as exc:
                print(f"{target.name}: {exc}")
                return 2
            finally:
                if target.drop is not None:
                    asyncio.run(
                        _pg(args.pg_url, f'DROP DATABASE IF EXISTS "{target.drop}" WITH (FORCE)')
                    )
            for line in errors[:20]:
                print(f"{target.name} server log: {line}")
            clean = status == 0 and not errors
            failed |= not clean
            summary.append(
                f"{target.name}: {'clean' if clean else 'FINDINGS'} in {elapsed:.0f} s "
                f"(schemathesis exit {status}, {len(errors)} server-log errors)"
            )
        print("\n" + "\n".join(summary))
        if args.keep is not None:
            print(f"logs and junit reports in {work}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
