"""Bytes per stored event on PostgreSQL: tables and indexes after a demo cluster's history.

    python scripts/storage_per_event.py [--stores 50] [--days 30] [--pg URL]

Creates a throwaway database, migrates it, loads ``refundwatch demo``'s cluster
(50 stores × 30 days ≈ 100k events) through the ingest road, then prints
``pg_total_relation_size`` per table (heap + TOAST + indexes) divided by the
stored events — after ``VACUUM``, then after the raw payloads are dropped
(``REFUNDWATCH_RAW_RETENTION_DAYS``) and ``VACUUM FULL`` gave the space back.
The database is dropped at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import asyncpg

from app.config import Settings
from app.db.engine import Database, create_engine
from app.db.migrate import upgrade_to_head
from app.ingest.road import ingest
from app.ops.demo import load_demo
from app.worker.jobs import drop_old_payloads

SIZES = """
SELECT c.relname AS name,
       pg_relation_size(c.oid) AS heap,
       coalesce(pg_total_relation_size(c.reltoastrelid), 0) AS toast,
       pg_indexes_size(c.oid) AS indexes,
       pg_total_relation_size(c.oid) AS total
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = 'public' AND c.relkind = 'r'
ORDER BY total DESC
"""


async def sizes(url: str) -> tuple[int, list[asyncpg.Record]]:
    conn = await asyncpg.connect(url)
    try:
        events = int(await conn.fetchval("SELECT count(*) FROM events"))
        return events, list(await conn.fetch(SIZES))
    finally:
        await conn.close()


async def vacuum(url: str, full: bool = False) -> None:
    conn = await asyncpg.connect(url)
    try:
        await conn.execute("VACUUM (FULL, ANALYZE)" if full else "VACUUM ANALYZE")
    finally:
        await conn.close()


def table(title: str, events: int, rows: list[asyncpg.Record]) -> str:
    out = [
        f"{title} — {events:,} events",
        "",
        "| table | heap | TOAST | indexes | total | bytes / event |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    grand = 0
    for r in rows:
        grand += r["total"]
        if r["total"] >= 64 * 1024:
            out.append(
                f"| `{r['name']}` | {r['heap'] / 1024:,.0f} KiB | {r['toast'] / 1024:,.0f} KiB "
                f"| {r['indexes'] / 1024:,.0f} KiB | {r['total'] / 1024:,.0f} KiB "
                f"| {r['total'] / events:,.0f} |"
            )
    out.append(f"| **all tables** | | | | {grand / 1024:,.0f} KiB | **{grand / events:,.0f}** |")
    return "\n".join(out)


async def run(args: argparse.Namespace) -> None:
    name = f"rw_storage_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(f"{args.pg}/postgres")
    await admin.execute(f'CREATE DATABASE "{name}"')
    url = f"{args.pg}/{name}"
    try:
        upgrade_to_head(url)
        db = Database(create_engine(Settings(database_url=url, environment="test")))
        now = datetime.now(UTC)
        started = time.perf_counter()
        try:
            summary = await load_demo(
                db,
                ingest,
                now=now,
                timezone="Asia/Shanghai",
                max_future=timedelta(minutes=5),
                stores=args.stores,
                days=args.days,
            )
            print(
                f"loaded {summary.accepted:,} events in {time.perf_counter() - started:.1f} s",
                file=sys.stderr,
            )
            await vacuum(url)
            print(table("After loading and VACUUM", *await sizes(url)))
            dropped = await drop_old_payloads(db, now + timedelta(days=1), retention_days=0)
            print(f"\n(dropped {dropped:,} payloads)\n", file=sys.stderr)
        finally:
            await db.dispose()
        await vacuum(url)
        print("\n" + table("Payloads dropped, then VACUUM", *await sizes(url)))
        await vacuum(url, full=True)
        print("\n" + table("Payloads dropped, then VACUUM FULL", *await sizes(url)))
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--stores", type=int, default=50)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432")
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
