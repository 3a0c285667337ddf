"""Console phases: the operator's pages, rendered server side, with ``--console-stores`` stores.

``ConsoleStores`` (``result["console_stores"]``) brings refundwatch's database
up to ``--console-stores`` stores: ``--console-events`` events of a stream of
their own, spread over new stores ``s001-v0`` … (``stream.spread_stores``),
posted over HTTP. ``ConsoleLogin`` signs in the way a browser does (``GET
/console/login`` for the form's token and cookie, ``POST /console/login`` with
``api_key``, same origin) and keeps the session cookie; when the tree has no
``/console`` routes, the console reads are skipped and say so. The read
phases time ``GET /console`` (the overview of every store) and
``GET /console/stores/{id}`` (the big store, the cluster's biggest and a few
small ones), sequentially.
"""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime

import httpx

from bench.context import Bench
from bench.database import pg_fetchval
from bench.phases import Phase
from bench.phases.reads import ReadLatency
from bench.progress import log
from bench.stream import generate_stream, spread_stores

SESSION_COOKIE = "rw_console"
TOKEN_FIELD = re.compile(r'name="login_token"\s+value="([^"]+)"')


class ConsoleStores(Phase):
    """Refundwatch's database up to ``--console-stores`` stores: ``console_stores``."""

    group = "console"

    async def run(self, bench: Bench) -> None:
        args = bench.args
        existing = int(await pg_fetchval(bench.app.db_url, "SELECT count(*) FROM stores"))
        extra = args.console_stores - existing
        out = {"stores_before": existing, "stores_wanted": args.console_stores}
        if extra > 0:
            base = bench.stream.stores
            variants = math.ceil(extra / len(base))
            names = [f"{s}-v{v}" for v in range(variants) for s in base][:extra]
            stream = generate_stream(
                args.console_events + 2000, 0, args.seed + 3, datetime.now(UTC)
            )
            events = spread_stores(stream.rest[: args.console_events], names, variants)
            run = await bench.ingest("console stores", events, 4, max_seconds=args.max_run_seconds)
            out.update(events=len(events), accepted=run.accepted, ev_per_s=round(run.ev_per_s))
        out["stores_after"] = int(
            await pg_fetchval(bench.app.db_url, "SELECT count(*) FROM stores")
        )
        bench.result["console_stores"] = out
        log(f"console: {out['stores_after']} stores")


class ConsoleLogin(Phase):
    """Sign in to the console with the admin key; the cookie goes to ``notes``."""

    group = "console"

    async def run(self, bench: Bench) -> None:
        key = bench.headers["Authorization"].removeprefix("Bearer ")
        base = bench.app.base
        async with httpx.AsyncClient(base_url=base, timeout=30) as c:
            form = await c.get("/console/login")
            match = TOKEN_FIELD.search(form.text) if form.status_code == 200 else None
            if match is None:
                why = f"GET /console/login answered {form.status_code}: no console to time"
                bench.notes["skip:console"] = why
                log(why)
                return
            r = await c.post(
                "/console/login",
                data={"api_key": key, "login_token": match.group(1), "next": "/console"},
                headers={"Origin": base},
            )
            token = r.cookies.get(SESSION_COOKIE)
        if r.status_code != 303 or not token:
            why = f"POST /console/login answered {r.status_code} without a session"
            bench.notes["skip:console"] = why
            log(why)
            return
        bench.notes["console_headers"] = {"Cookie": f"{SESSION_COOKIE}={token}"}
        log("console: signed in")


def _console_headers(bench: Bench) -> dict[str, str] | None:
    headers = bench.notes.get("console_headers")
    return dict(headers) if headers else None


def _store_pages(bench: Bench) -> list[str]:
    stores = []
    data = bench.notes.get("big_store")
    if data is not None:
        stores.append(data.store_id)
    cluster = bench.stream.stores
    stores += cluster[:4] + cluster[-2:]  # the biggest and two of the smallest
    return [f"/console/stores/{s}" for s in stores]


def console_reads() -> list[ReadLatency]:
    def seq(key: str, endpoint: str, paths: object) -> ReadLatency:
        return ReadLatency(
            key,
            endpoint,
            "console",
            paths,  # type: ignore[arg-type]
            group="console",
            concurrent=False,
            reads_flag="console_reads",
            headers=_console_headers,
        )

    return [
        seq("reads_console_overview", "console overview", lambda _b: ["/console"]),
        seq("reads_console_store", "console store page", _store_pages),
    ]
