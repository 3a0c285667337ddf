"""Connector phase: a PDD backfill against the loopback fake gateway, then the steady state.

``ConnectorBackfill`` (``result["connector"]``) runs the fake gateway of
``tests/fakes/pdd_gateway.py`` in the bench's process on a free loopback port,
filled by its ``populate`` with ``--connector-stores`` stores ×
``--connector-orders-per-day`` orders a day over ``--connector-days`` days, each
store authorised through an app (``client_id``) of its own. For each of
``--connector-rates`` (``published``: ``REFUNDWATCH_PDD_CALLS_PER_MINUTE=600``,
the platform's rate; ``unthrottled``: 100,000, never reached):

1. a fresh database, a refundwatch API server of the tree on it and a
   ``refundwatch worker`` of the tree pointed at the fake
   (``REFUNDWATCH_PDD_GATEWAY_URL``, ``REFUNDWATCH_SECRET_KEY``);
2. the worker's idle CPU for a few seconds, before any connection exists;
3. the connections created with ``POST /v1/connections`` (``sync_from`` = the
   start of the fake's history) and ``GET /v1/connections`` polled until every
   one is ``live``: wall time, calls (the fake's log and the connections'
   counts), calls/s per 10 s, the worker's, the API server's and PostgreSQL's
   cores, CPU per call and per event, and the lower bound the rate puts on
   the wall time;
4. (first rate only, ``--connector-steady-seconds`` > 0) the steady state at
   ``--connector-interval`` (default 60, the app's default), with a trickle of
   new orders at the fake's pace (``orders_per_day`` per store): the worker's
   CPU per live connection, as a share of a core;
5. (first rate only) freshness with the message push on (the worker runs with
   ``REFUNDWATCH_PDD_MESSAGES=true`` against the loopback fake message service of
   ``tests/fakes/pdd_messages.py``): a quality refund appears at the fake on an
   order without one, its ``pdd_refund_RefundCreated`` is pushed two seconds
   later (the platform pushes after the change), and ``/v1/stores/{id}/metrics``
   is polled until the store's count moves — seconds from the change, per
   trial; then one trial with no push (the next interval sync).

The bench process's own cores in these runs are the fake gateway's.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import secrets
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from bench.context import Bench, Target
from bench.cpu import cpu_delta, cpu_snapshot
from bench.paths import ROOT, use_tests
from bench.phases import Phase
from bench.phases.profile import parse_collapsed
from bench.progress import log
from bench.server import Server, scan_log

PUBLISHED_CALLS_PER_MINUTE = 600
UNTHROTTLED_CALLS_PER_MINUTE = 100_000  # the setting's ceiling; a backfill never reaches it
RATES = {"published": PUBLISHED_CALLS_PER_MINUTE, "unthrottled": UNTHROTTLED_CALLS_PER_MINUTE}
TARGET_BACKFILL_SECONDS = 120.0
TARGET_STEADY_CORE_SHARE = 0.02
IDLE_SECONDS = 8.0
DEFAULT_INTERVAL = 60.0  # REFUNDWATCH_SYNC_INTERVAL_SECONDS's default


class ConnectorBackfill(Phase):
    """Backfill at each rate until every connection is live; then the steady state."""

    group = "connector"

    async def run(self, bench: Bench) -> None:
        use_tests()
        from app.clock import SystemClock
        from tests.fakes.pdd_gateway import FakePddGateway, populate
        from tests.fakes.pdd_messages import FakeMessageService

        args = bench.args
        fake = FakePddGateway(SystemClock())
        until = datetime.now(UTC).replace(microsecond=0)
        stores = []
        t = time.perf_counter()
        world = {"orders": 0, "after_sales": 0}
        for i in range(1, args.connector_stores + 1):
            client_id, secret = f"bench-app-{i}", secrets.token_hex(16)
            fake.add_app(client_id, secret)
            token = secrets.token_hex(16)
            store = fake.add_store(token, client_id=client_id, mall_id=str(900_000 + i))
            orders, after_sales = populate(
                store,
                until=until,
                days=args.connector_days,
                orders_per_day=args.connector_orders_per_day,
                seed=i,
            )
            world["orders"] += orders
            world["after_sales"] += after_sales
            stores.append(
                {
                    "store_id": f"pdd-s{i}",
                    "client_id": client_id,
                    "client_secret": secret,
                    "access_token": token,
                    "mall_id": store.mall_id,
                    "fake": store,
                }
            )
        windows = math.ceil(args.connector_days * 86400 / 1800)
        out: dict[str, Any] = {
            "stores": args.connector_stores,
            "orders_per_day": args.connector_orders_per_day,
            "days": args.connector_days,
            "world": world,
            "populate_seconds": round(time.perf_counter() - t, 1),
            "windows_per_store": windows,
            "expected_calls": 2 * windows * args.connector_stores,
            "interval_seconds": args.connector_interval,
            "runs": {},
        }
        log(
            f"connector: fake gateway with {world['orders']:,} orders and "
            f"{world['after_sales']:,} after-sales in {out['populate_seconds']} s; "
            f"≥ {out['expected_calls']:,} calls to backfill"
        )
        pushes = FakeMessageService(SystemClock())
        for s in stores:
            pushes.add_app(s["client_id"], s["client_secret"])
        await fake.start()
        await pushes.start()
        try:
            for n, rate in enumerate(args.connector_rates):
                steady = n == 0 and args.connector_steady_seconds > 0
                out["runs"][rate] = await self._one_rate(
                    bench, fake, pushes if n == 0 else None, stores, until, rate, steady
                )
        finally:
            await pushes.stop()
            await fake.stop()
        bench.result["connector"] = out

    async def _one_rate(
        self,
        bench: Bench,
        fake: Any,
        pushes: Any,
        stores: list[dict[str, Any]],
        until: datetime,
        rate: str,
        steady: bool,
    ) -> dict[str, Any]:
        args = bench.args
        env = {
            "REFUNDWATCH_SECRET_KEY": secrets.token_urlsafe(32),
            "REFUNDWATCH_PDD_GATEWAY_URL": fake.url,
            "REFUNDWATCH_PDD_CALLS_PER_MINUTE": str(RATES[rate]),
            "REFUNDWATCH_SYNC_INTERVAL_SECONDS": str(args.connector_interval),
        }
        if pushes is not None:
            env["REFUNDWATCH_PDD_MESSAGES"] = "true"
            env["REFUNDWATCH_PDD_MESSAGE_URL"] = pushes.url
        url = await bench.fresh_database(f"rw_bench_conn_{rate}")
        result: dict[str, Any] = {"calls_per_minute_setting": RATES[rate]}
        try:
            async with bench.extra_app(f"connector-{rate}", url, **env) as api:
                worker = bench.worker(f"worker-{rate}", url, **env)
                worker.start()
                try:
                    await asyncio.sleep(3.0)  # imports, pool, first scheduler round
                    result["worker_idle"] = await _idle(worker)
                    profiler = _profile(bench, worker, rate)
                    result.update(await self._backfill(bench, fake, api, worker, stores, until))
                    if profiler is not None:
                        result["profile"] = await profiler
                    result["rate_bound"] = rate_bound(result, RATES[rate], len(stores))
                    if steady:
                        result["steady"] = await self._steady(bench, fake, api, worker, stores)
                    if pushes is not None and result.get("all_live"):
                        result["push"] = await _push_freshness(bench, api, pushes, stores)
                finally:
                    worker.stop()
                    bench.result.setdefault("server_logs_extra", {})[worker.name] = _scan(worker)
        finally:
            await bench.drop_database(url)
        return result

    async def _backfill(
        self,
        bench: Bench,
        fake: Any,
        api: Target,
        worker: Server,
        stores: list[dict[str, Any]],
        until: datetime,
    ) -> dict[str, Any]:
        args = bench.args
        sync_from = until - timedelta(days=args.connector_days, minutes=1)
        first_call = len(fake.calls)
        before_w, before_a = cpu_snapshot(worker.pid), cpu_snapshot(api.pid)
        t0 = time.perf_counter()
        started = datetime.now(UTC)
        live_at: dict[str, float] = {}
        async with httpx.AsyncClient(base_url=api.base, headers=bench.headers, timeout=30) as c:
            for s in stores:
                body = {
                    k: s[k]
                    for k in ("store_id", "client_id", "client_secret", "access_token", "mall_id")
                }
                r = await c.post(
                    "/v1/connections",
                    json={"platform": "pdd", "sync_from": sync_from.isoformat(), **body},
                )
                r.raise_for_status()
            last: list[dict[str, Any]] = []
            progress_at = 0.0
            while True:
                elapsed = time.perf_counter() - t0
                r = await c.get("/v1/connections", params={"limit": 100})
                r.raise_for_status()
                last = r.json()["items"]
                for item in last:
                    if item["status"] == "live":
                        live_at.setdefault(item["store_id"], round(elapsed, 1))
                failing = [x for x in last if x["status"] == "failing"]
                if len(live_at) == len(stores) or failing or elapsed > args.connector_max_seconds:
                    break
                if elapsed - progress_at >= 30:
                    progress_at = elapsed
                    done = sum(x["backfill_progress"] for x in last) / max(len(last), 1)
                    log(
                        f"  backfill {100 * done:.0f}% after {elapsed:.0f} s, "
                        f"{len(fake.calls) - first_call:,} calls"
                    )
                await asyncio.sleep(0.5)
        seconds = time.perf_counter() - t0
        after_w, after_a = cpu_snapshot(worker.pid), cpu_snapshot(api.pid)
        cpu = cpu_delta(before_w, after_w)
        api_cores = cpu_delta(before_a, after_a)["server_cores"]
        calls = fake.calls[first_call:]
        outcomes = Counter(c.outcome for c in calls)
        per_10s = Counter(int((c.at - started).total_seconds() // 10) for c in calls)
        events = sum(x["counts"]["events_accepted"] for x in last)
        worker_cpu = cpu["server_cores"] * seconds
        out = {
            "all_live": len(live_at) == len(stores),
            "seconds_to_all_live": round(seconds, 1),
            "live_at_seconds": live_at,
            "failing": [{"store_id": x["store_id"], "error": x["last_error"]} for x in last]
            if any(x["status"] == "failing" for x in last)
            else [],
            "calls": len(calls),
            "call_outcomes": dict(outcomes),
            "calls_counted_by_connections": sum(x["counts"]["calls"] for x in last),
            "windows": sum(x["counts"]["windows"] for x in last),
            "events_accepted": events,
            "calls_per_s": round(len(calls) / seconds, 1),
            "calls_per_10s": [per_10s.get(k, 0) for k in range(max(per_10s, default=-1) + 1)],
            "worker_cores": cpu["server_cores"],
            "api_server_cores": api_cores,
            "postgres_cores": cpu["postgres_cores"],
            "fake_gateway_cores": cpu["client_cores"],
            "other_cores": round(max(0.0, cpu["other_cores"] - api_cores), 3),
            "machine_busy_cores": cpu["machine_busy_cores"],
            "worker_cpu_seconds": round(worker_cpu, 1),
            "worker_cpu_ms_per_call": round(worker_cpu / len(calls) * 1e3, 2) if calls else None,
            "worker_cpu_us_per_event": round(worker_cpu / events * 1e6, 1) if events else None,
            "connections": [
                {k: x[k] for k in ("store_id", "status", "synced_through", "lag_seconds", "counts")}
                for x in last
            ],
        }
        log(
            f"  backfill: {'all live' if out['all_live'] else 'NOT all live'} after "
            f"{seconds:.0f} s, {len(calls):,} calls ({out['calls_per_s']}/s), {events:,} events; "
            f"worker {cpu['server_cores']:.2f} cores ({out['worker_cpu_ms_per_call']} ms/call), "
            f"PostgreSQL {cpu['postgres_cores']:.2f}, fake {cpu['client_cores']:.2f}, "
            f"machine {cpu['machine_busy_cores']:.2f}"
        )
        return out

    async def _steady(
        self, bench: Bench, fake: Any, api: Target, worker: Server, stores: list[dict[str, Any]]
    ) -> dict[str, Any]:
        """Live connections at the interval, with new orders arriving at the fake's pace."""
        seconds = bench.args.connector_steady_seconds
        per_store_gap = 86400 / bench.args.connector_orders_per_day
        log(
            f"  steady state: {seconds:.0f} s at a {bench.args.connector_interval:.0f} s "
            f"interval, a new order per store every {per_store_gap:.0f} s"
        )
        await asyncio.sleep(5.0)
        first_call = len(fake.calls)
        added = [0]

        async def trickle() -> None:
            n = 0
            while True:
                await asyncio.sleep(per_store_gap)
                now = datetime.now(UTC)
                for s in stores:
                    n += 1
                    s["fake"].add_order(
                        f"{now:%y%m%d}-9{n:011d}",
                        goods_id=500001,
                        sku_id=5000011,
                        confirm_time=now,
                        updated_at=now,
                    )
                    added[0] += 1

        feeder = asyncio.create_task(trickle())
        before_w, before_a = cpu_snapshot(worker.pid), cpu_snapshot(api.pid)
        try:
            await asyncio.sleep(seconds)
        finally:
            feeder.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await feeder
        after_w, after_a = cpu_snapshot(worker.pid), cpu_snapshot(api.pid)
        cpu = cpu_delta(before_w, after_w)
        calls = fake.calls[first_call:]
        n = len(stores)
        worker_cpu = cpu["server_cores"] * seconds
        out = {
            "seconds": seconds,
            "interval_seconds": bench.args.connector_interval,
            "orders_added": added[0],
            "calls": len(calls),
            "calls_per_connection_per_minute": round(len(calls) / n / (seconds / 60), 2),
            "worker_cores": cpu["server_cores"],
            "worker_cpu_seconds": round(worker_cpu, 2),
            "worker_core_share_per_connection": round(cpu["server_cores"] / n, 4),
            "worker_cpu_ms_per_connection_minute": round(worker_cpu / n / (seconds / 60) * 1e3, 1),
            "api_server_cores": cpu_delta(before_a, after_a)["server_cores"],
            "postgres_cores": cpu["postgres_cores"],
            "fake_gateway_cores": cpu["client_cores"],
            "machine_busy_cores": cpu["machine_busy_cores"],
        }
        interval = bench.args.connector_interval
        if interval != DEFAULT_INTERVAL:
            # A round costs the same whatever the interval; rounds a minute scale as 1/interval.
            out["scaled_to_default_interval"] = round(
                out["worker_core_share_per_connection"] * interval / DEFAULT_INTERVAL, 4
            )
        log(
            f"  steady: worker {cpu['server_cores']:.3f} cores for {n} live connections = "
            f"{100 * out['worker_core_share_per_connection']:.2f}% of a core each, "
            f"{out['calls_per_connection_per_minute']} calls/connection/min"
        )
        return out


PUSH_TRIALS = 5
PUSH_DELAY_SECONDS = 2.0  # the push follows the change by this much
FRESHNESS_LIMIT_SECONDS = 150.0


async def _push_freshness(
    bench: Bench, api: Target, pushes: Any, stores: list[dict[str, Any]]
) -> dict[str, Any]:
    """Seconds from a change at the fake to the store's figures, pushed and not."""
    async with httpx.AsyncClient(base_url=api.base, headers=bench.headers, timeout=30) as c:
        for s in stores:
            await pushes.wait_listening(s["client_id"], within=30.0)
        pushed = [
            await _one_change(c, pushes, stores[i % len(stores)], 9_900_000 + i, push=True)
            for i in range(PUSH_TRIALS)
        ]
        unpushed = await _one_change(c, pushes, stores[0], 9_999_999, push=False)
    out = {
        "trials": PUSH_TRIALS,
        "push_delay_seconds": PUSH_DELAY_SECONDS,
        "seconds_from_change_pushed": pushed,
        "seconds_from_change_not_pushed": unpushed,
        "median_pushed": sorted(pushed)[len(pushed) // 2],
        "acks": len(pushes.acks),
    }
    log(
        f"  push: a change reaches the figures {out['median_pushed']} s after it happens "
        f"(median of {PUSH_TRIALS}: {pushed}), pushed {PUSH_DELAY_SECONDS:.0f} s after; "
        f"{unpushed} s with no push"
    )
    return out


async def _one_change(
    c: httpx.AsyncClient, pushes: Any, s: dict[str, Any], refund_id: int, *, push: bool
) -> float:
    store = s["fake"]
    refunded = {r["order_sn"] for r in store.refunds.records.values()}
    order_sn = next(sn for sn in reversed(list(store.orders.records)) if sn not in refunded)
    path = f"/v1/stores/{s['store_id']}/metrics"
    before = (await c.get(path)).json()["quality_refunds"]
    changed = time.perf_counter()
    store.add_refund(refund_id, order_sn, after_sales_status=2, after_sale_reason="质量问题")
    if push:
        await asyncio.sleep(PUSH_DELAY_SECONDS)
        mall = int(s["mall_id"])
        content = {"mall_id": mall, "refund_id": refund_id, "tid": order_sn, "bill_type": 1}
        await pushes.push(s["client_id"], "pdd_refund_RefundCreated", mall, content)
    while time.perf_counter() - changed < FRESHNESS_LIMIT_SECONDS:
        if (await c.get(path)).json()["quality_refunds"] > before:
            return round(time.perf_counter() - changed, 2)
        await asyncio.sleep(0.1)
    return float("inf")


def _profile(bench: Bench, worker: Server, rate: str) -> asyncio.Task[dict[str, Any]] | None:
    """``--connector-profile``: py-spy on the worker for the first ``--profile-seconds``."""
    if not bench.args.connector_profile or not bench.pyspy or worker.pid is None:
        return None
    out = bench.artifact(f"profile-worker-{rate}.txt")
    seconds = bench.args.profile_seconds
    argv = [
        bench.pyspy, "record", "--pid", str(worker.pid), "--duration", str(int(seconds)),
        "--rate", "100", "--format", "raw", "--output", str(out),
    ]  # fmt: skip

    async def record() -> dict[str, Any]:
        proc = await asyncio.create_subprocess_exec(
            *argv, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL
        )
        try:
            await asyncio.wait_for(proc.wait(), timeout=seconds + 60)
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
        summary = parse_collapsed(out, roots=(bench.tree.root, ROOT))
        summary["file"] = str(out)
        summary["seconds"] = seconds
        return summary

    log(f"  profiling the worker with py-spy for the first {seconds:.0f} s of the backfill")
    return asyncio.create_task(record())


async def _idle(worker: Server) -> dict[str, Any]:
    """The worker's own cost with no connection: the scheduler and the relay polling."""
    before = cpu_snapshot(worker.pid)
    await asyncio.sleep(IDLE_SECONDS)
    cpu = cpu_delta(before, cpu_snapshot(worker.pid))
    return {"seconds": IDLE_SECONDS, "worker_cores": cpu["server_cores"]}


def rate_bound(run: dict[str, Any], per_minute: int, stores: int) -> dict[str, Any]:
    """The shortest wall time the rate allows for the calls made (one app per store).

    The limiter is a sliding window: call k (0-based) of an app cannot start before
    ``floor(k / rate)`` minutes, so ``c`` calls need at least ``floor((c-1)/rate)``
    minutes plus the last calls' own time.
    """
    per_app = math.ceil(run["calls"] / stores) if stores else 0
    minimum = math.floor(max(per_app - 1, 0) / per_minute) * 60.0
    seconds = run["seconds_to_all_live"]
    worker = run["worker_cores"]
    busy = run["machine_busy_cores"]
    if minimum >= 0.8 * seconds:
        bound = "calls (the rate limit)"
    elif worker >= 0.85 or busy >= 1.85:
        bound = "CPU" + (" (the worker's one core)" if worker >= 0.85 else " (the machine's cores)")
    else:
        bound = "neither clearly (latency of calls and commits)"
    return {
        "calls_per_app": per_app,
        "calls_per_minute_per_app": per_minute,
        "minimum_seconds_from_rate": minimum,
        "bound": bound,
    }


def _scan(worker: Server) -> dict[str, Any]:
    return scan_log(worker.log_path)
