"""The bare baseline for scripts/bench (PERFORMANCE.md: "quote figures beside a bare
baseline measured in the same run").

A minimal FastAPI app on the same stack as refundwatch (uvicorn + uvloop + httptools,
SQLAlchemy Core async + asyncpg, orjson) whose POST /v1/events does only this: read the
body, parse the JSON envelope, insert one row per event into a one-table database with
one executemany (INSERT … ON CONFLICT DO NOTHING), commit, answer a count. No validation, no folding, no buckets, no auth
lookup. Whatever refundwatch costs above it is the price of its own work.

Run (the bench does it):
    BENCH_BASELINE_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/db \
        uvicorn bench_baseline:app --app-dir scripts --port 8001

The table must exist first (the bench creates it with ``TABLE_DDL``).
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any

import orjson
from fastapi import FastAPI, Request, Response
from sqlalchemy import Column, DateTime, MetaData, String, Table, Text
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

TABLE_DDL = """
CREATE TABLE IF NOT EXISTS bench_events (
    event_id    varchar(128) PRIMARY KEY,
    store_id    varchar(64)  NOT NULL,
    type        varchar(40)  NOT NULL,
    occurred_at timestamptz  NOT NULL,
    payload     text         NOT NULL
)
"""

metadata = MetaData()
events = Table(
    "bench_events",
    metadata,
    Column("event_id", String(128), primary_key=True),
    Column("store_id", String(64), nullable=False),
    Column("type", String(40), nullable=False),
    Column("occurred_at", DateTime(timezone=True), nullable=False),
    Column("payload", Text, nullable=False),
)
# Idempotent like refundwatch's own insert (a resend is not an error); costs nothing here.
INSERT = postgresql.insert(events).on_conflict_do_nothing(index_elements=["event_id"])


def _async_url(url: str) -> str:
    if url.startswith("postgresql://"):
        return "postgresql+asyncpg://" + url.removeprefix("postgresql://")
    return url


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    pool = int(os.environ.get("BENCH_BASELINE_POOL_SIZE", "20"))
    engine = create_async_engine(
        _async_url(os.environ["BENCH_BASELINE_DATABASE_URL"]),
        pool_size=pool,
        max_overflow=10,
    )
    app.state.engine = engine
    try:
        yield
    finally:
        await engine.dispose()


app = FastAPI(lifespan=lifespan)


@app.get("/readyz")
async def readyz() -> dict[str, str]:
    return {"status": "ready"}


@app.post("/v1/events")
async def ingest(request: Request) -> Response:
    document = orjson.loads(await request.body())
    rows: list[dict[str, Any]] = [
        {
            "event_id": e["event_id"],
            "store_id": e["store_id"],
            "type": e["type"],
            "occurred_at": datetime.fromisoformat(e["occurred_at"]),
            "payload": orjson.dumps(e).decode(),
        }
        for e in document["events"]
    ]
    engine: AsyncEngine = request.app.state.engine
    async with engine.begin() as conn:
        await conn.execute(INSERT, rows)
    return Response(orjson.dumps({"accepted": len(rows)}), media_type="application/json")
