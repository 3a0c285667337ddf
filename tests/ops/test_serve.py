"""`refundwatch serve --workers 2` as a process: /metrics sums the workers; logs are JSON lines.

One server for the module (SQLite in a temporary data dir, loopback, a free
port), stopped at the end; every wait is bounded.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import orjson
import pytest

from tests.conftest import ADMIN_KEY
from tests.ops.scrape import parse, total, value
from tests.support import paid

START_TIMEOUT = 60.0
SERVE = [sys.executable, "-m", "app.cli", "serve", "--no-worker"]


@dataclass
class Served:
    url: str
    process: subprocess.Popen[bytes]
    stderr: Path
    metrics_dir: Path

    def lines(self) -> list[str]:
        return [line for line in self.stderr.read_text().splitlines() if line.strip()]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    root = tmp_path_factory.mktemp("served")
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("REFUNDWATCH_", "PROMETHEUS_"))}
    env.update(
        REFUNDWATCH_DATA_DIR=str(root / "data"),
        REFUNDWATCH_BOOTSTRAP_ADMIN_KEY=ADMIN_KEY,
        REFUNDWATCH_LOG_FORMAT="json",
        PROMETHEUS_MULTIPROC_DIR=str(root / "metrics"),
    )
    stderr = root / "stderr.log"
    with stderr.open("wb") as out:
        process = subprocess.Popen(
            [*SERVE, "--port", str(port), "--workers", "2"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=out,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            assert process.poll() is None, stderr.read_text()
            try:
                if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, stderr.read_text()
            time.sleep(0.2)
        yield Served(url, process, stderr, root / "metrics")
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()


async def _post_from_many_connections(url: str, requests: int, per_request: int) -> int:
    """``requests`` POSTs, each on a new connection (so the kernel spreads them)."""
    accepted = 0
    semaphore = asyncio.Semaphore(8)

    async def one(i: int) -> None:
        nonlocal accepted
        async with semaphore, httpx.AsyncClient(base_url=url, timeout=30) as client:
            events = [paid(f"w{i}-{j}", store=f"s{i % 3}") for j in range(per_request)]
            response = await client.post(
                "/v1/events",
                json={"events": events},
                headers={"Authorization": f"Bearer {ADMIN_KEY}", "X-Request-ID": f"load-{i}"},
            )
            assert response.status_code == 200, response.text
            accepted += response.json()["accepted"]

    await asyncio.gather(*(one(i) for i in range(requests)))
    return accepted


def test_metrics_sum_every_worker_whichever_answers(served: Served) -> None:
    accepted = asyncio.run(_post_from_many_connections(served.url, 40, 5))
    assert accepted == 200
    # Both workers took requests: each writes its counters to its own file.
    assert len({p.name.rsplit("_", 1)[-1] for p in served.metrics_dir.glob("counter_*.db")}) == 2
    headers = {"Authorization": f"Bearer {ADMIN_KEY}"}
    for _ in range(6):  # new connections: answered by one worker or the other
        response = httpx.get(f"{served.url}/metrics", headers=headers, timeout=10)
        assert response.status_code == 200
        _, samples = parse(response.text)
        assert value(samples, "refundwatch_events_total", status="accepted") == 200
        posts = total(samples, "refundwatch_http_requests_total", route="/v1/events")
        assert posts == 40


def test_every_log_line_is_json_with_request_ids_and_no_key(served: Served) -> None:
    response = httpx.get(
        f"{served.url}/v1/stores",
        headers={"Authorization": f"Bearer {ADMIN_KEY}", "X-Request-ID": "json-line-1"},
        timeout=10,
    )
    assert response.headers["x-request-id"] == "json-line-1"
    deadline = time.monotonic() + 10
    while "json-line-1" not in served.stderr.read_text():  # written by another process
        assert time.monotonic() < deadline
        time.sleep(0.1)
    lines = [orjson.loads(line) for line in served.lines()]  # every line parses
    (mine,) = [line for line in lines if line.get("request_id") == "json-line-1"]
    assert (mine["method"], mine["path"], mine["status"]) == ("GET", "/v1/stores", 200)
    assert ADMIN_KEY not in served.stderr.read_text()
    assert any(line["logger"].startswith("uvicorn") for line in lines)
