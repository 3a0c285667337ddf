"""Where one ingest transaction's time goes, statement by statement (PostgreSQL).

Runs the ingest path in process (no HTTP) on a fresh database: the bench's
stream in 1000-event transactions through ``IngestCommitter``, with a
SQLAlchemy hook timing every statement (driver and server time). Prints the
time per transaction of each statement shape, the statements' total and the
wall time: the rest of the wall time is Python.

    .venv/bin/python scripts/bench_statements.py [--events 30000] [--batch 1000]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
import uuid
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
from sqlalchemy import event

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

from bench.stream import generate_stream  # noqa: E402

from app.config import Settings  # noqa: E402
from app.db.engine import Database, create_engine  # noqa: E402
from app.db.migrate import upgrade_to_head  # noqa: E402
from app.ingest.group_commit import IngestCommitter  # noqa: E402


async def measure(pg: str, n_events: int, batch: int) -> None:
    name = f"rw_statements_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(pg.rstrip("/") + "/postgres")
    await admin.execute(f'CREATE DATABASE "{name}"')
    url = pg.rstrip("/") + f"/{name}"
    try:
        await asyncio.to_thread(upgrade_to_head, url)
        settings = Settings(database_url=url, environment="test")
        db = Database(create_engine(settings))
        now = datetime.now(UTC)
        stream = generate_stream(n_events + 2 * batch, batch, 7, now).rest
        stats: dict[str, list[float]] = defaultdict(lambda: [0, 0.0])
        started: dict[int, float] = {}

        @event.listens_for(db.engine.sync_engine, "before_cursor_execute")
        def before(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
            started[id(args[-2])] = time.perf_counter()

        @event.listens_for(db.engine.sync_engine, "after_cursor_execute")
        def after(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
            entry = stats[" ".join(statement.split())[:70]]
            entry[0] += 1
            entry[1] += time.perf_counter() - started.pop(id(args[-2]))

        committer = IngestCommitter(db, settings)
        await committer.ingest(stream[:batch], now)  # warm-up: prepared statements, caches
        stats.clear()
        transactions = 0
        start, cpu = time.perf_counter(), time.process_time()
        for i in range(batch, batch + n_events, batch):
            await committer.ingest(stream[i : i + batch], now)
            transactions += 1
        wall, cpu = time.perf_counter() - start, time.process_time() - cpu
        events = transactions * batch
        print(
            f"{events:,} events in {transactions} transactions of {batch}: "
            f"{events / wall:,.0f} ev/s, this process {cpu / events * 1e6:.0f} µs CPU/event"
        )
        total = 0.0
        for shape, (count, seconds) in sorted(stats.items(), key=lambda kv: -kv[1][1]):
            total += seconds
            print(f"{seconds * 1000 / transactions:8.1f} ms {count / transactions:5.1f}×  {shape}")
        print(
            f"statements {total * 1000 / transactions:.1f} ms of "
            f"{wall * 1000 / transactions:.1f} ms wall per transaction"
        )
        await db.dispose()
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432")
    parser.add_argument("--events", type=int, default=30_000)
    parser.add_argument("--batch", type=int, default=1000)
    args = parser.parse_args()
    asyncio.run(measure(args.pg, args.events, args.batch))


if __name__ == "__main__":
    main()
