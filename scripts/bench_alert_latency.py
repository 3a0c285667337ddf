#!/usr/bin/env python3
"""Alert latency: from the POST of the event that changes a state to the webhook's arrival.

Starts `refundwatch serve` (API + in-process worker) on a fresh PostgreSQL
database (or SQLite with --sqlite), a loopback receiver, subscribes a
`standard` webhook, then for N rounds ingests one event that flips store
`lat-N` from ok to breached and times how long until the receiver has the
signed `alert.breached`. Loopback only; bounded in rounds and time.

    .venv/bin/python scripts/bench_alert_latency.py [--rounds 50] [--sqlite]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import orjson
from bench.server import free_port  # scripts/ is sys.path[0]
from standardwebhooks import Webhook

ROOT = Path(__file__).resolve().parent.parent
PG = "postgresql://postgres@127.0.0.1:5432"


class Receiver:
    """A minimal HTTP/1.1 receiver that timestamps each arrival."""

    def __init__(self) -> None:
        self.arrivals: dict[str, tuple[float, bytes, dict[str, str]]] = {}
        self.event = asyncio.Event()

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        at = time.perf_counter()
        headers = {}
        for line in head.decode().split("\r\n")[1:]:
            if ":" in line:
                k, v = line.split(":", 1)
                headers[k.strip().lower()] = v.strip()
        body = await reader.readexactly(int(headers.get("content-length", "0")))
        data = orjson.loads(body)
        store = data.get("data", {}).get("store_id", "")
        if data.get("type") == "alert.breached":
            self.arrivals[store] = (at, body, headers)
            self.event.set()
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
        await writer.drain()
        writer.close()


def breach_events(store: str) -> list[dict[str, object]]:
    """20 orders, 4 quality refunds already in; the 5th refund breaches demotion."""
    at = "2026-11-20T10:00:00+08:00"
    events: list[dict[str, object]] = []
    for i in range(20):
        events.append(
            {
                "event_id": f"{store}-p{i}",
                "type": "order.paid",
                "store_id": store,
                "occurred_at": at,
                "order_id": f"o{i}",
                "product_id": f"p{i}",
            }
        )
    for i in range(4):
        events.append(
            {
                "event_id": f"{store}-r{i}",
                "type": "refund.requested",
                "store_id": store,
                "occurred_at": at,
                "refund_id": f"r{i}",
                "order_id": f"o{i}",
                "kind": "refund_only",
                "reason": "quality_issue",
            }
        )
    return events


async def run(args: argparse.Namespace) -> int:
    key = secrets.token_urlsafe(24)
    env = dict(
        os.environ,
        REFUNDWATCH_BOOTSTRAP_ADMIN_KEY=key,
        REFUNDWATCH_LOG_LEVEL="warning",
        REFUNDWATCH_WEBHOOK_ALLOWED_NETWORKS="127.0.0.0/8",
    )
    tmp = tempfile.mkdtemp()
    db_name = f"rw_latency_{secrets.token_hex(4)}"
    if args.sqlite:
        env["REFUNDWATCH_DATABASE_URL"] = f"sqlite:///{tmp}/latency.db"
    else:
        subprocess.run(
            ["psql", f"{PG}/postgres", "-qc", f'CREATE DATABASE "{db_name}"'], check=True
        )
        env["REFUNDWATCH_DATABASE_URL"] = f"{PG}/{db_name}"
    port = free_port()
    server = subprocess.Popen(
        [str(ROOT / ".venv/bin/refundwatch"), "serve", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        cwd=tmp,
    )
    receiver = Receiver()
    listener = await asyncio.start_server(receiver.handle, "127.0.0.1", 0)
    hook_port = listener.sockets[0].getsockname()[1]
    latencies: list[float] = []
    try:
        async with httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{port}",
            timeout=30,
            headers={"Authorization": f"Bearer {key}"},
        ) as client:
            for _ in range(300):
                try:
                    if (await client.get("/readyz")).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.1)
            hook = (
                await client.post(
                    "/v1/webhooks",
                    json={
                        "url": f"http://127.0.0.1:{hook_port}/hook",
                        "format": "standard",
                        "alert_types": ["alert.breached"],
                    },
                )
            ).json()
            verifier = Webhook(hook["secret"])
            for n in range(args.rounds):
                store = f"lat-{n}"
                r = await client.post("/v1/events", json={"events": breach_events(store)})
                assert r.status_code == 200, r.text
                fifth = {
                    "event_id": f"{store}-r4",
                    "type": "refund.requested",
                    "store_id": store,
                    "occurred_at": "2026-11-20T10:00:00+08:00",
                    "refund_id": "r4",
                    "order_id": "o4",
                    "kind": "refund_only",
                    "reason": "quality_issue",
                }
                sent = time.perf_counter()
                r = await client.post("/v1/events", json={"events": [fifth]})
                assert r.status_code == 200, r.text
                deadline = sent + 10
                while store not in receiver.arrivals and time.perf_counter() < deadline:
                    receiver.event.clear()
                    try:
                        await asyncio.wait_for(
                            receiver.event.wait(), timeout=deadline - time.perf_counter()
                        )
                    except TimeoutError:
                        break
                if store not in receiver.arrivals:
                    print(f"round {n}: no alert within 10 s", file=sys.stderr)
                    return 1
                at, body, headers = receiver.arrivals[store]
                verifier.verify(body, headers)  # every delivery is signed
                latencies.append((at - sent) * 1000)
    finally:
        server.terminate()
        server.wait(timeout=20)
        listener.close()
        if not args.sqlite:
            subprocess.run(
                [
                    "psql",
                    f"{PG}/postgres",
                    "-qc",
                    f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)',
                ]
            )
    latencies.sort()
    p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
    backend = "SQLite" if args.sqlite else "PostgreSQL"
    print(
        f"alert latency on {backend}, {len(latencies)} rounds: "
        f"p50 {statistics.median(latencies):.0f} ms, p99 {p99:.0f} ms, max {latencies[-1]:.0f} ms"
    )
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=50)
    parser.add_argument("--sqlite", action="store_true")
    return asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    sys.exit(main())
