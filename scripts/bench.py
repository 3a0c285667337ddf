"""End-to-end benchmark of refundwatch on PostgreSQL, beside a bare baseline (`make bench`).

What it does (docs/performance.md explains the method and shows the figures):

1. Creates fresh PostgreSQL databases (one for refundwatch, one for the bare
   baseline of scripts/bench_baseline.py), runs ``refundwatch migrate``, starts
   ``refundwatch serve --no-worker`` and the baseline (uvicorn) on free loopback
   ports, waits for /readyz. Servers are killed and databases dropped at the end,
   also on failure or Ctrl-C.
2. Generates a realistic event stream in-process (a store cluster: 50 stores ×
   200 products, orders paid over the last 30 days, ~8% refunded with realistic
   kinds, reasons — ~40% quality — lifecycles, reason changes and appeals;
   ``occurred_at`` in the past with +08:00 offsets; unique event ids).
3. Measures, each the median of ``--runs`` (3) runs:
   - batch ingest ev/s (500 events/request, 4 and 8 concurrent clients),
   - single-event ingest ev/s (1 event/request, 32 concurrent clients, ~10 s),
   - the same two against the bare baseline, interleaved with the above,
   - GET /v1/stores/{id}/metrics latency p50/p99 (sequential and 8 clients) with
     ~10k events stored and again with ``--events-large`` (1M) stored.
4. Profiles the server with py-spy during an extra batch run (and an extra
   single-event run) when py-spy is installed.
5. Prints the machine and a Markdown table; writes bench-results/latest.json.

Request bodies are pre-serialized with orjson before each run and sent as raw
bytes over one keep-alive HTTP/1.1 connection per concurrent client (a minimal
raw client, ``RawClient``, playing wrk's part), so the client spends little CPU;
client, server and PostgreSQL CPU are reported per run (the three share the
machine's cores).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import platform
import random
import resource
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import asyncpg
import httpx
import orjson

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
RESULTS = ROOT / "bench-results"
CST = timezone(timedelta(hours=8))
CLK_TCK = os.sysconf("SC_CLK_TCK")

N_STORES = 50
N_PRODUCTS = 200
BATCH_SIZE = 500
PROFILE_BATCH_EVENTS = 300_000  # a ceiling for the profiled batch run (15 s at 20k ev/s)
PROFILE_SINGLE_EVENTS = 60_000
# Profiles and server logs go next to the JSON, named after it ("latest.json" -> "latest-…").
ARTIFACT_PREFIX = str(RESULTS / "latest-")

# Targets from the issue.
TARGET_BATCH = 16_000
TARGET_SINGLE = 1_200
TARGET_READ_P99_MS = 10.0
TARGET_READ_GROWTH = 1.20


# --------------------------------------------------------------------------- stream


QUALITY_REASONS = {"quality_issue", "not_as_described"}
# (code, weight %, Chinese label): ~40% quality reasons.
REASONS = [
    ("quality_issue", 28, "质量问题"),
    ("not_as_described", 12, "描述不符"),
    ("damaged", 8, "破损"),
    ("wrong_item", 5, "发错货"),
    ("missing_parts", 5, "少件/漏发"),
    ("counterfeit", 1, "假冒品牌"),
    ("changed_mind", 20, "不想要了"),
    ("ordered_by_mistake", 8, "拍错/多拍"),
    ("shipping_delay", 7, "发货慢"),
    ("lost_in_transit", 3, "快递丢件"),
    ("other", 3, "其他"),
]
KINDS = [
    ("refund_only_unshipped", 22),
    ("return_refund", 45),
    ("refund_only", 23),
    ("intercept", 10),
]
COURIERS = ["zto", "yto", "sto", "yunda", "jtexpress", "sf", "jd", "ems"]
HOUR = 3600.0
DAY = 86400.0


def _cum(weights: Sequence[float]) -> list[float]:
    out, total = [], 0.0
    for w in weights:
        total += w
        out.append(total)
    return out


@dataclass
class Stream:
    """The generated events: a ~1% sample of whole orders, then the rest in arrival order."""

    sample: list[dict[str, Any]]
    rest: list[dict[str, Any]]
    stores: list[str]
    orders: int
    refunds: int
    types: dict[str, int]
    quality_share: float
    seconds: float
    pos: int = 0

    def take(self, n: int) -> list[dict[str, Any]]:
        chunk = self.rest[self.pos : self.pos + n]
        self.pos += len(chunk)
        return chunk

    @property
    def left(self) -> int:
        return len(self.rest) - self.pos


def generate_stream(total: int, small: int, seed: int, now: datetime) -> Stream:
    """About ``total`` events of a 50-store cluster over the last 30 days.

    Orders are drawn with probability ~small/total into ``sample`` (all of an order's
    events together, so the 10k-event database also spans the whole window); the
    others go to ``rest``, sorted by arrival (occurred_at plus up to 2 minutes of
    delivery jitter, so a few events arrive out of order, as they do in life).
    """
    t0 = time.perf_counter()
    rng = random.Random(seed)
    stores = [f"s{i:03d}" for i in range(1, N_STORES + 1)]
    store_cum = _cum([1.0 / (i**0.6) for i in range(1, N_STORES + 1)])  # a few big stores
    product_cum = _cum([1.0 / (k**0.9) for k in range(1, N_PRODUCTS + 1)])  # bestsellers
    reason_cum = _cum([w for _, w, _ in REASONS])
    kind_cum = _cum([w for _, w in KINDS])
    now_ts = now.timestamp()
    horizon = now_ts - 60.0  # nothing in the last minute: every event is in the past
    start_ts = now_ts - 29 * DAY
    per_order = 3.05  # events per order, measured on this generator
    n_orders = int(total / per_order) + 500
    p_sample = min(1.0, small / (n_orders * per_order))

    sample: list[dict[str, Any]] = []
    keyed: list[tuple[float, dict[str, Any]]] = []
    types: Counter[str] = Counter()
    refunds = 0
    quality = 0
    seq = 0

    def ts(t: float) -> str:
        return datetime.fromtimestamp(t, CST).isoformat(timespec="seconds")

    def event_id() -> str:
        return str(uuid.UUID(int=rng.getrandbits(128), version=4))

    def reason_value(code: str) -> str:
        if rng.random() < 0.3:
            return next(label for c, _, label in REASONS if c == code)
        return code

    for n in range(n_orders):
        store = stores[_pick(rng, store_cum)]
        product = f"{store}-p{_pick(rng, product_cum) + 1:03d}"
        order_id = f"o{n + 1:09d}"
        amount = f"{rng.randint(5, 399)}.{rng.choice(('00', '90', '99', '50', '80'))}"
        paid = start_ts + rng.random() * (horizon - 300.0 - start_ts)
        evs: list[tuple[float, dict[str, Any]]] = []

        def add(
            _t: float,
            _type: str,
            _evs: list[tuple[float, dict[str, Any]]] = evs,
            _store: str = store,
            **fields: Any,
        ) -> bool:
            if _t > horizon:
                return False
            _evs.append(
                (
                    _t,
                    {
                        "event_id": event_id(),
                        "type": _type,
                        "store_id": _store,
                        "occurred_at": ts(_t),
                        **fields,
                    },
                )
            )
            return True

        add(
            paid,
            "order.paid",
            order_id=order_id,
            product_id=product,
            sku_id=f"{product}-k{rng.randint(1, 4)}",
            amount=amount,
        )
        refund = rng.random() < 0.08
        kind = KINDS[_pick(rng, kind_cum)][0] if refund else None
        shipped = paid + rng.uniform(2 * HOUR, 48 * HOUR)
        delivered = shipped + rng.uniform(1 * DAY, 4 * DAY)
        outcome = rng.choices(
            ("succeeded", "withdrawn", "rejected", "open"), weights=(74, 13, 8, 5)
        )[0]
        ships = not (kind == "refund_only_unshipped" and outcome == "succeeded")
        delivers = ships and not (kind == "intercept" and outcome == "succeeded")
        if ships:
            add(shipped, "order.shipped", order_id=order_id, courier=rng.choice(COURIERS))
        if delivers:
            add(delivered, "order.delivered", order_id=order_id)
        if refund:
            refunds += 1
            refund_id = f"r{n + 1:09d}"
            code = REASONS[_pick(rng, reason_cum)][0]
            quality += code in QUALITY_REASONS
            if kind == "refund_only_unshipped":
                t = paid + rng.uniform(0.2 * HOUR, 20 * HOUR)
            elif kind == "intercept":
                t = shipped + rng.uniform(2 * HOUR, 30 * HOUR)
            else:
                t = delivered + rng.uniform(1 * HOUR, 5 * DAY)
            fields: dict[str, Any] = {
                "refund_id": refund_id,
                "order_id": order_id,
                "kind": kind,
                "reason": reason_value(code),
                "amount": amount,
            }
            if rng.random() < 0.7:
                fields["product_id"] = product
            ok = add(t, "refund.requested", **fields)
            if ok and rng.random() < 0.04:  # the buyer changes the reason
                new = "changed_mind" if code in QUALITY_REASONS else "quality_issue"
                add(
                    t + rng.uniform(1 * HOUR, 24 * HOUR),
                    "refund.reason_changed",
                    refund_id=refund_id,
                    reason=reason_value(new),
                )
            if ok and outcome == "succeeded":
                t = t + rng.uniform(0.1 * HOUR, 24 * HOUR)
                if rng.random() < 0.9:
                    ok = add(t, "refund.approved", refund_id=refund_id)
                if ok and kind == "return_refund":
                    t += rng.uniform(4 * HOUR, 48 * HOUR)
                    ok = add(
                        t,
                        "refund.return_shipped",
                        refund_id=refund_id,
                        courier=rng.choice(COURIERS),
                    )
                    t += rng.uniform(1 * DAY, 4 * DAY)
                    ok = ok and add(t, "refund.return_received", refund_id=refund_id)
                    t += rng.uniform(1 * HOUR, 24 * HOUR)
                ok = ok and add(t, "refund.succeeded", refund_id=refund_id)
                if ok and code in QUALITY_REASONS and rng.random() < 0.03:  # seller appeals
                    add(
                        t + rng.uniform(1 * DAY, 5 * DAY),
                        rng.choices(
                            ("refund.appeal_upheld", "refund.appeal_rejected"), weights=(40, 60)
                        )[0],
                        refund_id=refund_id,
                    )
            elif ok and outcome == "withdrawn":
                add(t + rng.uniform(2 * HOUR, 72 * HOUR), "refund.withdrawn", refund_id=refund_id)
            elif ok and outcome == "rejected":
                add(t + rng.uniform(12 * HOUR, 72 * HOUR), "refund.rejected", refund_id=refund_id)
        for _, e in evs:
            types[e["type"]] += 1
        seq += len(evs)
        if rng.random() < p_sample:
            sample.extend(e for _, e in sorted(evs, key=lambda p: p[0]))
        else:
            keyed.extend((t + rng.uniform(0.0, 120.0), e) for t, e in evs)
    keyed.sort(key=lambda p: p[0])
    rest = [e for _, e in keyed]
    return Stream(
        sample=sample,
        rest=rest,
        stores=stores,
        orders=n_orders,
        refunds=refunds,
        types=dict(types),
        quality_share=quality / max(refunds, 1),
        seconds=time.perf_counter() - t0,
    )


def _pick(rng: random.Random, cum: list[float]) -> int:
    import bisect

    return bisect.bisect_right(cum, rng.random() * cum[-1])


def batch_bodies(events: Sequence[dict[str, Any]], size: int) -> list[tuple[bytes, int]]:
    return [
        (orjson.dumps({"events": events[i : i + size]}), len(events[i : i + size]))
        for i in range(0, len(events), size)
    ]


# --------------------------------------------------------------------------- CPU accounting


def _proc_cpu(pid: int) -> float | None:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
    except OSError:
        return None
    fields_ = data[data.rindex(b")") + 2 :].split()
    return (int(fields_[11]) + int(fields_[12])) / CLK_TCK  # utime + stime


def _all_procs() -> dict[int, tuple[int, str]]:
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


def _tree(root: int, procs: dict[int, tuple[int, str]]) -> list[int]:
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


def cpu_snapshot(server_pid: int | None) -> CpuSnapshot:
    procs = _all_procs()
    ru = resource.getrusage(resource.RUSAGE_SELF)
    server: dict[int, float] = {}
    if server_pid is not None:
        for pid in _tree(server_pid, procs):
            v = _proc_cpu(pid)
            if v is not None:
                server[pid] = v
    postgres: dict[int, float] = {}
    for pid, (_, comm) in procs.items():
        if comm.startswith("postgres"):
            v = _proc_cpu(pid)
            if v is not None:
                postgres[pid] = v
    return CpuSnapshot(
        time.perf_counter(), ru.ru_utime + ru.ru_stime, server, postgres, _system_busy()
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
    }
    # Whatever else ran on the machine meanwhile (other jobs share these cores).
    out["other_cores"] = round(
        max(
            0.0,
            out["machine_busy_cores"]
            - out["client_cores"]
            - out["server_cores"]
            - out["postgres_cores"],
        ),
        3,
    )
    return out


# --------------------------------------------------------------------------- servers


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    """A server subprocess in its own process group; stop() always kills the whole group."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], port: int, log: Path):
        self.name, self.argv, self.env, self.port, self.log_path = name, argv, env, port, log
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
            cwd=ROOT,
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
        return _tree(self.pid, _all_procs())

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


# --------------------------------------------------------------------------- database


async def pg_admin(base_url: str, sql: str) -> None:
    conn = await asyncpg.connect(base_url + "/postgres")
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


async def pg_fetchval(url: str, sql: str) -> Any:
    conn = await asyncpg.connect(url)
    try:
        return await conn.fetchval(sql)
    finally:
        await conn.close()


async def pg_sessions(url: str) -> int:
    """Sessions ever opened to this database (pg_stat_database, PostgreSQL 14+)."""
    conn = await asyncpg.connect(url)
    try:
        await conn.execute("SELECT pg_stat_clear_snapshot()")
        return int(
            await conn.fetchval(
                "SELECT sessions FROM pg_stat_database WHERE datname = current_database()"
            )
            or 0
        )
    finally:
        await conn.close()


async def pg_execute(url: str, sql: str) -> None:
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


# --------------------------------------------------------------------------- load drivers


def pct(values: Sequence[float], p: float) -> float:
    """Nearest-rank percentile."""
    if not values:
        return float("nan")
    s = sorted(values)
    k = max(0, min(len(s) - 1, math.ceil(p / 100.0 * len(s)) - 1))
    return s[k]


class LoadError(Exception):
    """A load-generator connection failed (refused, reset, timed out, bad answer)."""


@dataclass
class Answer:
    status_code: int
    content: bytes


class RawClient:
    """One keep-alive HTTP/1.1 connection that sends pre-built requests (wrk's role).

    httpx costs ~1 ms of client CPU per request here; on two shared cores that
    starved the server it was measuring (the client took 0.7 core at 500 req/s).
    This client writes the request bytes and reads a Content-Length answer: tens
    of µs per request, so the figures are the server's.
    """

    def __init__(self, base_url: str, headers: dict[str, str], timeout: float) -> None:
        parts = urlsplit(base_url)
        self._host = parts.hostname or "127.0.0.1"
        self._port = parts.port or 80
        self._timeout = timeout
        fixed = {"Host": f"{self._host}:{self._port}", **headers}
        self._head = "".join(f"{k}: {v}\r\n" for k, v in fixed.items()).encode()
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            with contextlib.suppress(OSError):
                await self._writer.wait_closed()
            self._reader = self._writer = None

    async def get(self, path: str) -> Answer:
        return await self._send(b"GET " + path.encode() + b" HTTP/1.1\r\n" + self._head + b"\r\n")

    async def post(self, path: str, content: bytes) -> Answer:
        return await self._send(
            b"POST "
            + path.encode()
            + b" HTTP/1.1\r\n"
            + self._head
            + b"Content-Type: application/json\r\nContent-Length: "
            + str(len(content)).encode()
            + b"\r\n\r\n"
            + content
        )

    async def _send(self, request: bytes) -> Answer:
        try:
            async with asyncio.timeout(self._timeout):
                return await self._exchange(request)
        except (TimeoutError, OSError, asyncio.IncompleteReadError, ValueError) as exc:
            await self.close()
            raise LoadError(type(exc).__name__) from exc

    async def _exchange(self, request: bytes) -> Answer:
        if self._writer is None:
            self._reader, self._writer = await asyncio.open_connection(self._host, self._port)
        assert self._reader is not None
        self._writer.write(request)
        head = await self._reader.readuntil(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        status = int(lines[0].split(b" ", 2)[1])
        length = None
        close = False
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"transfer-encoding":
                raise ValueError("chunked answers are not expected here")
            elif name == b"connection" and value.strip().lower() == b"close":
                close = True
        content = await self._reader.readexactly(length) if length else b""
        if close:
            await self.close()
        return Answer(status, content)


def request_path(url: str) -> str:
    parts = urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "") if parts.scheme else url


@contextlib.asynccontextmanager
async def client_pool(
    n: int, headers: dict[str, str], request_timeout: float, base_url: str
) -> AsyncIterator[list[RawClient]]:
    """``n`` keep-alive connections, one per worker."""
    clients = [RawClient(base_url, headers, request_timeout) for _ in range(n)]
    try:
        yield clients
    finally:
        for client in clients:
            await client.close()


@dataclass
class IngestRun:
    label: str
    concurrency: int
    requests: int = 0
    events_sent: int = 0
    accepted: int = 0
    duplicates: int = 0
    rejected: int = 0
    statuses: dict[str, int] = field(default_factory=dict)
    exceptions: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    ev_per_s: float = 0.0
    req_p50_ms: float = 0.0
    req_p99_ms: float = 0.0
    cpu: dict[str, float] = field(default_factory=dict)
    stored_before: int = 0
    reject_codes: dict[str, int] = field(default_factory=dict)
    server_cpu_us_per_event: float = 0.0
    db_connections_opened: int = 0


async def drive_ingest(
    label: str,
    url: str,
    headers: dict[str, str],
    bodies: Sequence[tuple[bytes, int]],
    concurrency: int,
    *,
    duration: float | None,
    max_seconds: float,
    server_pid: int | None,
) -> IngestRun:
    """Send pre-serialized bodies from ``concurrency`` clients until done or the duration ends."""
    run = IngestRun(label=label, concurrency=concurrency)
    statuses: Counter[str] = Counter()
    exceptions: Counter[str] = Counter()
    reject_codes: Counter[str] = Counter()
    latencies: list[float] = []
    source: Iterator[tuple[bytes, int]] = iter(bodies)
    path = request_path(url)
    async with client_pool(concurrency, headers, 120.0, url) as pool:
        start = time.perf_counter()
        stop_at = start + (duration if duration is not None else max_seconds)
        hard_stop = start + max_seconds

        async def worker(client: RawClient) -> None:
            consecutive_errors = 0
            for body, n in source:  # bounded: the bodies are finite
                now = time.perf_counter()
                if now >= stop_at or now >= hard_stop or consecutive_errors > 20:
                    return
                t = time.perf_counter()
                try:
                    r = await client.post(path, content=body)
                except LoadError as exc:
                    exceptions[str(exc)] += 1
                    consecutive_errors += 1
                    continue
                latencies.append(time.perf_counter() - t)
                run.requests += 1
                run.events_sent += n
                statuses[str(r.status_code)] += 1
                if r.status_code != 200:
                    consecutive_errors += 1
                    continue
                consecutive_errors = 0
                doc = orjson.loads(r.content)
                run.accepted += doc.get("accepted", 0)
                run.duplicates += doc.get("duplicates", 0)
                rejected = doc.get("rejected", 0)
                run.rejected += rejected
                if rejected:
                    for res in doc.get("results", ()):
                        if res.get("status") == "rejected":
                            reject_codes[(res.get("error") or {}).get("code", "?")] += 1

        before = cpu_snapshot(server_pid)
        await asyncio.gather(*(worker(c) for c in pool))
        after = cpu_snapshot(server_pid)
        run.seconds = time.perf_counter() - start
    run.statuses = dict(statuses)
    run.exceptions = dict(exceptions)
    run.reject_codes = dict(reject_codes)
    run.ev_per_s = run.accepted / run.seconds if run.seconds > 0 else 0.0
    run.req_p50_ms = pct(latencies, 50) * 1000
    run.req_p99_ms = pct(latencies, 99) * 1000
    run.cpu = cpu_delta(before, after)
    return run


@dataclass
class ReadRun:
    label: str
    concurrency: int
    requests: int = 0
    statuses: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    p50_ms: float = 0.0
    p99_ms: float = 0.0
    mean_ms: float = 0.0
    req_per_s: float = 0.0
    cpu: dict[str, float] = field(default_factory=dict)


async def drive_reads(
    label: str,
    base: str,
    headers: dict[str, str],
    stores: Sequence[str],
    n: int,
    concurrency: int,
    *,
    max_seconds: float,
    server_pid: int | None,
) -> ReadRun:
    run = ReadRun(label=label, concurrency=concurrency)
    statuses: Counter[str] = Counter()
    latencies: list[float] = []
    paths = [f"/v1/stores/{stores[i % len(stores)]}/metrics" for i in range(n)]
    source = iter(paths)
    async with client_pool(concurrency, headers, 30.0, base) as pool:
        start = time.perf_counter()
        hard_stop = start + max_seconds

        async def worker(client: RawClient) -> None:
            for path in source:
                if time.perf_counter() >= hard_stop:
                    return
                t = time.perf_counter()
                try:
                    r = await client.get(path)
                except LoadError as exc:
                    statuses[str(exc)] += 1
                    continue
                latencies.append(time.perf_counter() - t)
                statuses[str(r.status_code)] += 1

        before = cpu_snapshot(server_pid)
        await asyncio.gather(*(worker(c) for c in pool))
        after = cpu_snapshot(server_pid)
        run.seconds = time.perf_counter() - start
    run.requests = len(latencies)
    run.statuses = dict(statuses)
    run.p50_ms = pct(latencies, 50) * 1000
    run.p99_ms = pct(latencies, 99) * 1000
    run.mean_ms = statistics.fmean(latencies) * 1000 if latencies else float("nan")
    run.req_per_s = run.requests / run.seconds if run.seconds else 0.0
    run.cpu = cpu_delta(before, after)
    return run


# --------------------------------------------------------------------------- profiling


IDLE_LEAVES = {
    "threading.py:Condition.wait",
    "threading.py:Event.wait",
    "queue.py:Queue.get",
    "selectors.py:EpollSelector.select",
}


def parse_collapsed(path: Path, top: int = 25) -> dict[str, Any]:
    """Self and inclusive shares per function from py-spy's raw (collapsed-stack) output.

    Percentages are of the busy samples: stacks of idle thread-pool threads are dropped.
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
        frames = [_short_frame(f) for f in stack.split(";")]
        # The leading frames are "process ..." / "thread ..." labels.
        frames = [f for f in frames if f]
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


def _short_frame(frame: str) -> str:
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
    if str(ROOT) in file:
        file = file.split(str(ROOT) + "/", 1)[1]
    return f"{file}:{name}"


async def profile_run(
    pyspy: str,
    server: Server,
    label: str,
    seconds: float,
    drive: Callable[[], Any],
) -> dict[str, Any]:
    RESULTS.mkdir(exist_ok=True)
    out = Path(ARTIFACT_PREFIX + f"profile-{label}.txt")
    argv = [
        pyspy,
        "record",
        "--pid",
        str(server.pid),
        "--duration",
        str(int(seconds)),
        "--rate",
        "100",
        "--format",
        "raw",
        "--output",
        str(out),
        "--subprocesses",
    ]
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
    result = parse_collapsed(out)
    result["file"] = str(out.relative_to(ROOT)) if out.is_relative_to(ROOT) else str(out)
    result["pyspy_output"] = output.decode(errors="replace")[-500:]
    result["run"] = asdict(run)
    return result


# --------------------------------------------------------------------------- machine


def cpu_calibration_us() -> float:
    """µs for ``sum(range(1000))``, best of 5: how fast this (shared) CPU is right now.

    A quiet modern x86 core does it in about 8–12 µs; when other jobs share the
    cores the figure rises, and every CPU-bound figure of this run falls with it.
    """
    import timeit

    return round(min(timeit.repeat("sum(range(1000))", number=2000, repeat=5)) / 2000 * 1e6, 1)


def code_fingerprint() -> dict[str, Any]:
    """Which app code was measured (others edit app/ while benchmarks run; no git here)."""
    import hashlib

    digest = hashlib.sha256()
    newest = 0.0
    files = sorted((ROOT / "app").rglob("*.py")) + sorted((ROOT / "migrations").rglob("*.py"))
    for path in files:
        digest.update(str(path.relative_to(ROOT)).encode() + b"\0" + path.read_bytes())
        newest = max(newest, path.stat().st_mtime)
    return {
        "app_sha256": digest.hexdigest()[:16],
        "files": len(files),
        "newest_change": datetime.fromtimestamp(newest, UTC).isoformat(timespec="seconds"),
    }


def machine_info(pg_version: str, pg_settings: dict[str, str]) -> dict[str, Any]:
    mem_kib = 0
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                mem_kib = int(line.split()[1])
    model = ""
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    import fastapi
    import sqlalchemy
    import uvicorn

    return {
        "nproc": os.cpu_count(),
        "cpu_model": model,
        "memory_gib": round(mem_kib / 1024 / 1024, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "postgresql": pg_version,
        "postgresql_settings": pg_settings,
        "fastapi": fastapi.__version__,
        "sqlalchemy": sqlalchemy.__version__,
        "uvicorn": uvicorn.__version__,
        "asyncpg": asyncpg.__version__,
        "httpx": httpx.__version__,
    }


# --------------------------------------------------------------------------- main


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--quick",
        action="store_true",
        help="fast check: 200k large size, 25k events per batch run, 5 s single runs",
    )
    p.add_argument(
        "--events-large",
        type=int,
        default=None,
        help="events stored for the second metrics-read measurement (default 1,000,000)",
    )
    p.add_argument(
        "--events-small",
        type=int,
        default=10_000,
        help="events stored for the first metrics-read measurement",
    )
    p.add_argument(
        "--batch-events",
        type=int,
        default=None,
        help="events per batch-ingest run (default 100,000; quick 25,000)",
    )
    p.add_argument("--concurrency", default="4,8", help="batch-ingest client counts")
    p.add_argument("--single-clients", type=int, default=32)
    p.add_argument("--single-seconds", type=float, default=None, help="default 10 (quick 5)")
    p.add_argument("--reads", type=int, default=None, help="metrics reads per run (default 2000)")
    p.add_argument("--read-clients", type=int, default=8)
    p.add_argument("--runs", type=int, default=3)
    p.add_argument(
        "--server-workers", type=int, default=1, help="uvicorn workers (app and baseline)"
    )
    p.add_argument(
        "--pg",
        default="postgresql://postgres@127.0.0.1:5432",
        help="PostgreSQL server URL (no database)",
    )
    p.add_argument("--no-baseline", action="store_true")
    p.add_argument(
        "--app-pool-size",
        type=int,
        default=None,
        help="set REFUNDWATCH_DB_POOL_SIZE for refundwatch (default: the app's own default)",
    )
    p.add_argument("--no-profile", action="store_true")
    p.add_argument("--profile-seconds", type=float, default=15.0)
    p.add_argument(
        "--max-run-seconds", type=float, default=300.0, help="hard limit of any single measured run"
    )
    p.add_argument(
        "--batch-max-seconds",
        type=float,
        default=None,
        help="cut a batch-ingest run after this long (default 60, quick 30): keeps a full run "
        "under ~15 minutes when the service is slow; the JSON tells how many events were sent",
    )
    p.add_argument(
        "--read-max-seconds",
        type=float,
        default=25.0,
        help="cut a metrics-read run after this long",
    )
    p.add_argument(
        "--load-max-seconds",
        type=float,
        default=None,
        help="cut the load to --events-large after this long (default 240, quick 90)",
    )
    p.add_argument("--seed", type=int, default=20261126)
    p.add_argument(
        "--wait-quiet",
        type=float,
        default=0.0,
        help="wait up to this many seconds for other jobs to leave the CPU before starting",
    )
    p.add_argument("--output", default=str(RESULTS / "latest.json"))
    args = p.parse_args(argv)
    q = args.quick
    if args.events_large is None:
        args.events_large = 200_000 if q else 1_000_000
    if args.batch_events is None:
        args.batch_events = 25_000 if q else 100_000
    if args.single_seconds is None:
        args.single_seconds = 5.0 if q else 10.0
    if args.batch_max_seconds is None:
        args.batch_max_seconds = 30.0 if q else 60.0
    if args.load_max_seconds is None:
        args.load_max_seconds = 90.0 if q else 240.0
    if args.reads is None:
        args.reads = 500 if q else 2000
    args.concurrency = [int(c) for c in str(args.concurrency).split(",") if c.strip()]
    return args


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


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


async def run_bench(args: argparse.Namespace, result: dict[str, Any]) -> dict[str, Any]:
    RESULTS.mkdir(exist_ok=True)
    tag = secrets.token_hex(4)
    app_db = f"rw_bench_{tag}"
    base_db = f"rw_bench_base_{tag}"
    admin_key = "rw_bench_" + secrets.token_urlsafe(24)
    headers = {"Authorization": f"Bearer {admin_key}", "Content-Type": "application/json"}
    pyspy = shutil.which("py-spy", path=str(BIN)) or shutil.which("py-spy")
    servers: list[Server] = []
    created: list[str] = []
    result["started_at"] = datetime.now(UTC).isoformat(timespec="seconds")

    pg_version = await pg_fetchval(args.pg + "/postgres", "SHOW server_version")
    pg_settings = {}
    for name in ("shared_buffers", "fsync", "synchronous_commit", "max_connections", "work_mem"):
        pg_settings[name] = await pg_fetchval(args.pg + "/postgres", f"SHOW {name}")
    result["machine"] = machine_info(pg_version, pg_settings)
    result["config"] = {k: v for k, v in vars(args).items()}
    log(f"machine: {json.dumps(result['machine'])}")
    result["machine"]["loadavg_at_start"] = os.getloadavg()
    result["code"] = code_fingerprint()
    result["calibration_us"] = {"start": cpu_calibration_us()}
    log(f"code: {result['code']}")
    result["machine"]["quiet"] = await wait_quiet(args.wait_quiet)

    # How many events the phases will consume, so that one stream serves them all.
    n_runs = args.runs
    single_cap = int(args.single_seconds * 4000)  # bodies prepared per single run (a ceiling)
    consumed = (
        2 * BATCH_SIZE * max(args.concurrency)  # warm-up
        + n_runs * len(args.concurrency) * args.batch_events
        + n_runs * single_cap
    )
    # Profiled runs take what they need from a reserve and give back what they did not send.
    reserve = 0 if args.no_profile else PROFILE_BATCH_EVENTS + PROFILE_SINGLE_EVENTS
    total = max(args.events_large, args.events_small + consumed) + reserve + 20_000
    now = datetime.now(UTC)
    log(f"generating ~{total:,} events …")
    stream = generate_stream(total, args.events_small, args.seed, now)
    result["stream"] = {
        "stores": N_STORES,
        "products_per_store": N_PRODUCTS,
        "orders": stream.orders,
        "refunds": stream.refunds,
        "refund_share": round(stream.refunds / stream.orders, 4),
        "quality_share_of_refunds": round(stream.quality_share, 3),
        "events": len(stream.sample) + len(stream.rest),
        "sample_events": len(stream.sample),
        "types": stream.types,
        "generation_seconds": round(stream.seconds, 1),
    }
    log(f"stream: {json.dumps(result['stream'])}")

    try:
        # --- databases and servers
        for db in (app_db, base_db):
            await pg_admin(args.pg, f'CREATE DATABASE "{db}"')
            created.append(db)
        app_url = f"{args.pg}/{app_db}"
        env = {
            **os.environ,
            "REFUNDWATCH_DATABASE_URL": app_url,
            "REFUNDWATCH_BOOTSTRAP_ADMIN_KEY": admin_key,
            "REFUNDWATCH_LOG_LEVEL": "warning",
        }
        if args.app_pool_size:
            env["REFUNDWATCH_DB_POOL_SIZE"] = str(args.app_pool_size)
        refundwatch = str(BIN / "refundwatch")
        t = time.perf_counter()
        await asyncio.to_thread(
            subprocess.run,
            [refundwatch, "migrate"],
            env=env,
            check=True,
            cwd=ROOT,
            capture_output=True,
            timeout=120,
        )
        log(f"migrated {app_db} in {time.perf_counter() - t:.1f} s")
        app_port = free_port()
        app = Server(
            "refundwatch",
            [
                refundwatch,
                "serve",
                "--no-worker",
                "--host",
                "127.0.0.1",
                "--port",
                str(app_port),
                "--workers",
                str(args.server_workers),
            ],
            env,
            app_port,
            Path(ARTIFACT_PREFIX + "server-refundwatch.log"),
        )
        servers.append(app)
        app.start()
        baseline: Server | None = None
        if not args.no_baseline:
            from bench_baseline import TABLE_DDL  # scripts/ is on sys.path

            await pg_execute(f"{args.pg}/{base_db}", TABLE_DDL)
            base_port = free_port()
            base_env = {
                **os.environ,
                "BENCH_BASELINE_DATABASE_URL": f"{args.pg}/{base_db}",
                # The bare baseline gets the pool PERFORMANCE.md recommends: one connection
                # per concurrent request, so it never reconnects.
                "BENCH_BASELINE_POOL_SIZE": str(max(args.single_clients, *args.concurrency) + 8),
            }
            baseline = Server(
                "baseline",
                [
                    str(BIN / "uvicorn"),
                    "bench_baseline:app",
                    "--app-dir",
                    str(ROOT / "scripts"),
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(base_port),
                    "--workers",
                    str(args.server_workers),
                    "--log-level",
                    "warning",
                    "--no-access-log",
                ],
                base_env,
                base_port,
                Path(ARTIFACT_PREFIX + "server-baseline.log"),
            )
            servers.append(baseline)
            baseline.start()
        await app.wait_ready()
        if baseline:
            await baseline.wait_ready()
        log(
            f"servers ready: refundwatch pid {app.pid} :{app_port}"
            + (f", baseline pid {baseline.pid} :{baseline.port}" if baseline else "")
        )

        stored = 0

        async def ingest(
            label: str,
            events: Sequence[dict[str, Any]],
            conc: int,
            target: Server,
            *,
            size: int = BATCH_SIZE,
            duration: float | None = None,
            max_seconds: float | None = None,
        ) -> IngestRun:
            nonlocal stored
            bodies = batch_bodies(events, size)
            db_url = app_url if target is app else f"{args.pg}/{base_db}"
            sessions_before = await pg_sessions(db_url)
            run = await drive_ingest(
                label,
                target.base + "/v1/events",
                headers,
                bodies,
                conc,
                duration=duration,
                max_seconds=max_seconds or args.max_run_seconds,
                server_pid=target.pid,
            )
            run.db_connections_opened = max(0, await pg_sessions(db_url) - sessions_before - 1)
            if run.accepted:
                run.server_cpu_us_per_event = round(
                    run.cpu["server_cores"] * run.seconds / run.accepted * 1e6, 1
                )
            if target is app:
                run.stored_before = stored
                stored += run.accepted
            bad = {k: v for k, v in run.statuses.items() if k != "200"}
            log(
                f"{label}: {run.ev_per_s:,.0f} ev/s ({run.accepted:,} accepted in "
                f"{run.seconds:.1f} s, {run.requests} req, p50 {run.req_p50_ms:.1f} ms, "
                f"p99 {run.req_p99_ms:.1f} ms) server {run.server_cpu_us_per_event:.0f} µs CPU/ev, "
                f"{run.db_connections_opened} new DB connections, cpu {run.cpu}"
                + (f" NON-200 {bad}" if bad else "")
                + (f" EXC {run.exceptions}" if run.exceptions else "")
                + (f" rejected {run.rejected} {run.reject_codes}" if run.rejected else "")
                + (f" duplicates {run.duplicates}" if run.duplicates else "")
            )
            return run

        async def reads(label: str, conc: int) -> ReadRun:
            run = await drive_reads(
                label,
                app.base,
                headers,
                stream.stores,
                args.reads,
                conc,
                max_seconds=args.read_max_seconds,
                server_pid=app.pid,
            )
            bad = {k: v for k, v in run.statuses.items() if k != "200"}
            log(
                f"{label}: p50 {run.p50_ms:.2f} ms, p99 {run.p99_ms:.2f} ms, "
                f"{run.req_per_s:,.0f} req/s cpu {run.cpu}" + (f" NON-200 {bad}" if bad else "")
            )
            return run

        async def read_phase(tag_: str) -> dict[str, Any]:
            # Reads are measured on a settled database, as autovacuum keeps one in
            # production: right after a bulk load the visibility map is empty (index-only
            # scans visit the heap), first reads set hint bits, and the checkpointer is
            # still writing the load out; that is the load's cost, not the read's.
            await pg_execute(app_url, "VACUUM (ANALYZE)")
            await pg_execute(app_url, "CHECKPOINT")
            await drive_reads(
                "warmup", app.base, headers, stream.stores, 200, 4, max_seconds=60, server_pid=None
            )
            out: dict[str, Any] = {"events_stored": stored, "runs": []}
            seq_runs, conc_runs = [], []
            for r in range(n_runs):
                seq_runs.append(await reads(f"metrics@{tag_} seq #{r + 1}", 1))
                conc_runs.append(
                    await reads(f"metrics@{tag_} c{args.read_clients} #{r + 1}", args.read_clients)
                )
            for name, runs in (("sequential", seq_runs), (f"c{args.read_clients}", conc_runs)):
                out[name] = {
                    "p50_ms": round(median([x.p50_ms for x in runs]), 2),
                    "p99_ms": round(median([x.p99_ms for x in runs]), 2),
                    "req_per_s": round(median([x.req_per_s for x in runs]), 0),
                    "runs": [asdict(x) for x in runs],
                }
            return out

        # --- phase 1: ~10k events (a sample of whole orders over the 30 days), reads
        warm = stream.take(BATCH_SIZE * 2)
        await ingest("warmup refundwatch", warm, 2, app)
        if baseline:
            await ingest("warmup baseline", warm, 2, baseline)
        small_need = max(0, args.events_small - stored)
        await ingest("load sample", stream.sample[:small_need] if small_need else [], 4, app)
        result["reads_small"] = await read_phase("small")

        result["calibration_us"]["before_batch"] = cpu_calibration_us()
        # --- phase 2: batch ingest, interleaved with the baseline
        batch: dict[str, list[IngestRun]] = defaultdict(list)
        for r in range(n_runs):
            for conc in args.concurrency:
                events = stream.take(args.batch_events)
                run = await ingest(
                    f"batch c{conc} #{r + 1}",
                    events,
                    conc,
                    app,
                    max_seconds=args.batch_max_seconds,
                )
                batch[f"app_c{conc}"].append(run)
                sent = run.events_sent
                if sent < len(events):
                    log(f"  (cut at {args.batch_max_seconds:.0f} s: {sent:,} of {len(events):,})")
                    stream.pos -= len(events) - sent  # give back what was not sent
                if baseline:
                    batch[f"base_c{conc}"].append(  # the same events, to its own database
                        await ingest(
                            f"baseline batch c{conc} #{r + 1}", events[:sent], conc, baseline
                        )
                    )

        # --- phase 3: single-event ingest, interleaved with the baseline
        single: dict[str, list[IngestRun]] = defaultdict(list)
        sc = args.single_clients
        for r in range(n_runs):
            events = stream.take(single_cap)
            run = await ingest(
                f"single c{sc} #{r + 1}", events, sc, app, size=1, duration=args.single_seconds
            )
            single["app"].append(run)
            stream.pos -= len(events) - run.events_sent  # give back what was not sent
            if baseline:
                single["base"].append(
                    await ingest(
                        f"baseline single c{sc} #{r + 1}",
                        events,
                        sc,
                        baseline,
                        size=1,
                        duration=args.single_seconds,
                    )
                )

        # --- phase 4: profile the server under batch and single-event load
        profiles: dict[str, Any] = {}
        if pyspy and not args.no_profile:
            conc = max(args.concurrency)
            events = stream.take(PROFILE_BATCH_EVENTS)
            log(f"profiling batch c{conc} with py-spy for {args.profile_seconds:.0f} s …")
            profiles["batch"] = await profile_run(
                pyspy,
                app,
                f"batch-c{conc}",
                args.profile_seconds,
                lambda: ingest(
                    f"profiled batch c{conc}", events, conc, app, duration=args.profile_seconds
                ),
            )
            stream.pos -= len(events) - profiles["batch"]["run"]["events_sent"]
            events = stream.take(PROFILE_SINGLE_EVENTS)
            log(f"profiling single c{sc} with py-spy for {args.profile_seconds:.0f} s …")
            profiles["single"] = await profile_run(
                pyspy,
                app,
                f"single-c{sc}",
                args.profile_seconds,
                lambda: ingest(
                    f"profiled single c{sc}", events, sc, app, size=1, duration=args.profile_seconds
                ),
            )
            stream.pos -= len(events) - profiles["single"]["run"]["events_sent"]
            for k, prof in profiles.items():
                log(
                    f"profile {k}: {prof['samples']} samples; top self: "
                    + ", ".join(
                        f"{x['function']} {x['percent']}%" for x in prof.get("self", [])[:8]
                    )
                )
        elif not pyspy:
            log("py-spy not found: no profile")
        result["profiles"] = profiles

        result["calibration_us"]["before_load"] = cpu_calibration_us()
        # --- phase 5: load up to --events-large, then reads again
        need = args.events_large - stored
        if need > 0:
            if need > stream.left:
                log(f"only {stream.left:,} events left in the stream (wanted {need:,})")
            conc = max(args.concurrency)
            load = await ingest(
                f"load to {args.events_large:,}",
                stream.take(need),
                conc,
                app,
                max_seconds=args.load_max_seconds,
            )
            result["load_large"] = asdict(load)
        result["reads_large"] = await read_phase("large")
        if pyspy and not args.no_profile:
            rc = args.read_clients
            log(f"profiling metrics reads c{rc} with py-spy for {args.profile_seconds:.0f} s …")
            profiles["reads"] = await profile_run(
                pyspy,
                app,
                f"reads-c{rc}",
                args.profile_seconds,
                lambda: drive_reads(
                    f"profiled reads c{rc}",
                    app.base,
                    headers,
                    stream.stores,
                    1_000_000,
                    rc,
                    max_seconds=args.profile_seconds,
                    server_pid=app.pid,
                ),
            )
            prof = profiles["reads"]
            log(
                f"profile reads: {prof['samples']} samples; top self: "
                + ", ".join(f"{x['function']} {x['percent']}%" for x in prof.get("self", [])[:8])
            )

        result["calibration_us"]["end"] = cpu_calibration_us()
        log(f"CPU calibration, µs per sum(range(1000)): {result['calibration_us']}")
        # --- checks
        in_db = await pg_fetchval(app_url, "SELECT count(*) FROM events")
        result["checks"] = {
            "accepted_total": stored,
            "events_in_db": in_db,
            "consistent": in_db == stored,
            "daily_figures_rows": await pg_fetchval(app_url, "SELECT count(*) FROM daily_figures"),
            "orders_rows": await pg_fetchval(app_url, "SELECT count(*) FROM orders"),
            "refunds_rows": await pg_fetchval(app_url, "SELECT count(*) FROM refunds"),
            "alerts_rows": await pg_fetchval(app_url, "SELECT count(*) FROM alerts"),
            "app_db_size": await pg_fetchval(
                app_url, "SELECT pg_size_pretty(pg_database_size(current_database()))"
            ),
        }
        log(f"checks: {result['checks']}")

        def summarize(runs: list[IngestRun]) -> dict[str, Any]:
            non_200 = Counter()
            for x in runs:
                non_200.update({k: v for k, v in x.statuses.items() if k != "200"})
                non_200.update(x.exceptions)
            return {
                "ev_per_s": round(median([x.ev_per_s for x in runs]), 0),
                "events_per_run": [x.accepted for x in runs],
                "server_cpu_us_per_event": round(
                    median([x.server_cpu_us_per_event for x in runs]), 1
                ),
                "db_connections_opened_per_s": round(
                    median([x.db_connections_opened / x.seconds for x in runs]), 1
                ),
                "req_p50_ms": round(median([x.req_p50_ms for x in runs]), 1),
                "req_p99_ms": round(median([x.req_p99_ms for x in runs]), 1),
                "client_cores": round(median([x.cpu["client_cores"] for x in runs]), 2),
                "server_cores": round(median([x.cpu["server_cores"] for x in runs]), 2),
                "postgres_cores": round(median([x.cpu["postgres_cores"] for x in runs]), 2),
                "other_cores": round(median([x.cpu["other_cores"] for x in runs]), 2),
                "non_200": dict(non_200),
                "rejected": sum(x.rejected for x in runs),
                "duplicates": sum(x.duplicates for x in runs),
                "runs": [asdict(x) for x in runs],
            }

        result["batch"] = {k: summarize(v) for k, v in batch.items()}
        result["single"] = {k: summarize(v) for k, v in single.items()}
    finally:
        for s in servers:
            s.stop()
        for db in created:
            try:
                await pg_admin(args.pg, f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
            except Exception as exc:  # report, keep cleaning
                log(f"could not drop {db}: {exc}")
        log("servers stopped, databases dropped")
        result["server_logs"] = {s.name: scan_log(s.log_path) for s in servers}
    result["finished_at"] = datetime.now(UTC).isoformat(timespec="seconds")
    return result


# --------------------------------------------------------------------------- report


def _verdict_min(value: float, target: float) -> str:
    if value >= target:
        return f"met (+{100 * (value / target - 1):.0f}%)"
    return f"**missed** by {100 * (1 - value / target):.0f}% ({value / target:.2f}× target)"


def _verdict_max(value: float, target: float, unit: str = "") -> str:
    if value <= target:
        return "met"
    return f"**missed** by {value - target:.2f}{unit} ({value / target:.2f}× target)"


def markdown(result: dict[str, Any]) -> str:
    m = result["machine"]
    cfg = result["config"]
    out = []
    out.append(
        f"Machine: {m['nproc']} vCPU ({m['cpu_model']}), {m['memory_gib']} GiB, "
        f"Python {m['python']}, PostgreSQL {m['postgresql']} "
        f"(shared_buffers {m['postgresql_settings']['shared_buffers']}, fsync "
        f"{m['postgresql_settings']['fsync']}, synchronous_commit "
        f"{m['postgresql_settings']['synchronous_commit']}); uvicorn workers: "
        f"{cfg['server_workers']}; client, server and PostgreSQL on the same cores."
    )
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
    batch = result.get("batch", {})
    for conc in cfg["concurrency"]:
        a = batch.get(f"app_c{conc}")
        b = batch.get(f"base_c{conc}")
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
    rs, rl = result.get("reads_small"), result.get("reads_large")
    ck = f"c{cfg['read_clients']}"
    for phase in (rs, rl):
        if not phase:
            continue
        n = phase["events_stored"]
        for mode, label in (("sequential", "sequential"), (ck, f"{cfg['read_clients']} clients")):
            x = phase[mode]
            out.append(
                f"| metrics read p50 / p99, {label}, {n:,} events stored | "
                f"{x['p50_ms']:.2f} / {x['p99_ms']:.2f} ms | — "
                f"| p99 ≤ {TARGET_READ_P99_MS:.0f} ms | "
                f"{_verdict_max(x['p99_ms'], TARGET_READ_P99_MS, ' ms')} |"
            )
    if rs and rl:
        for mode, label in (("sequential", "sequential"), (ck, f"{cfg['read_clients']} clients")):
            ratio = rl[mode]["p99_ms"] / rs[mode]["p99_ms"]
            r50 = rl[mode]["p50_ms"] / rs[mode]["p50_ms"]
            out.append(
                f"| metrics read growth {rs['events_stored']:,} → {rl['events_stored']:,} "
                f"events, {label} (p50 / p99) | {r50:.2f}× / {ratio:.2f}× | — | p99 ≤ "
                f"{TARGET_READ_GROWTH:.2f}× | "
                + (
                    "met"
                    if ratio <= TARGET_READ_GROWTH
                    else f"**missed** (p99 +{100 * (ratio - 1):.0f}%, allowed +20%)"
                )
                + " |"
            )
    out.append("")
    out.append(
        "| ingest run (medians) | request p50 / p99 | server CPU per event | client cores | "
        "server cores | PostgreSQL cores | other jobs' cores | new DB conn/s | non-200 |"
    )
    out.append("|---|---:|---:|---:|---:|---:|---:|---:|---|")
    for key, x in list(batch.items()) + [(f"single_{k}", v) for k, v in s.items()]:
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
    if result.get("load_large"):
        ld = result["load_large"]
        out.append("")
        out.append(
            f"Loading to {result['config']['events_large']:,} events: {ld['accepted']:,} events in "
            f"{ld['seconds']:.0f} s = {ld['ev_per_s']:,.0f} ev/s at {ld['concurrency']} clients "
            f"(from {ld['stored_before']:,} stored)."
        )
    return "\n".join(out)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    sys.path.insert(0, str(ROOT / "scripts"))

    def on_term(signum: int, _frame: Any) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, on_term)
    t0 = time.perf_counter()
    out = Path(args.output)
    out.parent.mkdir(parents=True, exist_ok=True)
    global ARTIFACT_PREFIX
    ARTIFACT_PREFIX = str(out.with_name(out.stem + "-"))
    result: dict[str, Any] = {}
    try:
        asyncio.run(run_bench(args, result))
    except BaseException:
        result["failed"] = True
        partial = out.with_name(out.stem + "-failed.json")
        partial.write_bytes(
            orjson.dumps(result, option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS, default=str)
        )
        log(f"FAILED; partial results in {partial}")
        raise
    result["total_seconds"] = round(time.perf_counter() - t0, 1)
    result["markdown"] = markdown(result)
    out.write_bytes(orjson.dumps(result, option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS))
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
    logs = result.get("server_logs", {})
    for name, info in logs.items():
        if info.get("tracebacks") or info.get("sample"):
            print(
                f"\n{name} log: {info['tracebacks']} tracebacks, {info['deadlocks']} deadlocks; "
                f"first lines: {info['sample'][:5]}"
            )
    print(f"\nresults: {out} ({result['total_seconds']:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
