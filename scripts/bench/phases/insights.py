"""The big store and the explaining-figure reads (issue 11's targets).

``LoadBigStore`` (``result["big_store"]``, group "reads") adds one store with
``--big-store-orders`` orders paid over its 30-day window, generated like the
cluster's (SKUs, couriers on ``order.shipped``, refunds with kinds, reasons and
lifecycles, ~40% quality), to refundwatch's database through the tree's
``refundwatch import`` (an events-jsonl file). It runs before the load to
``--events-large``, which then fills the database up to that many events.

``insight_reads`` are the read phases on that store, sequential only, with
``--insight-reads`` requests per run: ``/breakdown`` by each split (and per
product), ``/products/{pid}/skus``, ``/metrics``, ``/products`` and ``/v1/risk``.
``/metrics`` of the big store is in group "reads" (it exists on every tree,
so ``--app-dir`` of an older commit measures it too); the rest are group
"insights".
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

from bench.context import Bench
from bench.phases import Phase
from bench.phases.imports import child_summary, import_record
from bench.phases.reads import ReadLatency
from bench.progress import log
from bench.stream import generate_store_events, write_jsonl

BIG_STORE = "big-s001"
SPLITS = ("courier", "ship_hours", "reason", "kind")
TOP_PRODUCTS = 10  # products cycled through by the per-product reads


class LoadBigStore(Phase):
    """One store with ``--big-store-orders`` orders in its window, imported: ``big_store``."""

    group = "reads"

    async def run(self, bench: Bench) -> None:
        args = bench.args
        if args.big_store_orders <= 0:
            return
        now = datetime.now(UTC)
        data = await asyncio.to_thread(
            generate_store_events, BIG_STORE, args.big_store_orders, args.seed + 5, now
        )
        path = bench.artifact("big-store.jsonl")
        size = await asyncio.to_thread(write_jsonl, path, data.events)
        log(
            f"big store {BIG_STORE}: {data.orders:,} orders, {len(data.events):,} events, "
            f"{data.quality_refunds:,} quality refunds; importing {size:,} bytes …"
        )
        try:
            run = await bench.run_cli(
                "import big store", "import", str(path), limit_s=args.import_max_seconds
            )
        finally:
            path.unlink(missing_ok=True)
        record = await import_record(bench.app.db_url)
        accepted = int(record.get("events_accepted") or 0)
        bench.stored += accepted
        bench.notes["big_store"] = data
        out = data.summary()
        out["import"] = child_summary(run, len(data.events))
        out["import"]["record"] = record
        out["stored_after"] = bench.stored
        bench.result["big_store"] = out


def big_store_paths(build: Any) -> Any:
    """Paths on the big store (none when it was not loaded)."""

    def paths(bench: Bench) -> list[str]:
        data = bench.notes.get("big_store")
        if data is None:
            bench.notes["skip:insights"] = "the big store was not loaded (--big-store-orders 0)"
            return []
        return list(build(data.store_id, data.products))

    return paths


def insight_reads() -> list[ReadLatency]:
    """The explaining-figure reads on the big store, in the order they run."""

    def seq(key: str, endpoint: str, build: Any, group: str = "insights") -> ReadLatency:
        return ReadLatency(
            key,
            endpoint,
            "big store",
            big_store_paths(build),
            group=group,
            concurrent=False,
            reads_flag="insight_reads",
        )

    phases = [
        seq(
            "reads_big_metrics",
            "metrics",
            lambda s, _p: [f"/v1/stores/{s}/metrics"],
            group="reads",
        )
    ]
    for by in SPLITS:
        phases.append(
            seq(
                f"reads_breakdown_{by}",
                f"breakdown by={by}",
                lambda s, _p, by=by: [f"/v1/stores/{s}/breakdown?by={by}"],
            )
        )
    phases += [
        seq(
            "reads_breakdown_product",
            "breakdown by=… &product_id",
            lambda s, p: [
                f"/v1/stores/{s}/breakdown?by={by}&product_id={pid}"
                for pid in p[:TOP_PRODUCTS]
                for by in SPLITS
            ],
        ),
        seq(
            "reads_skus",
            "skus",
            lambda s, p: [f"/v1/stores/{s}/products/{pid}/skus" for pid in p[:TOP_PRODUCTS]],
        ),
        seq("reads_big_products", "products", lambda s, _p: [f"/v1/stores/{s}/products"]),
        seq("reads_risk", "risk", lambda _s, _p: ["/v1/risk"]),
    ]
    return phases
