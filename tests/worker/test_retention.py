"""Raw payload retention: old payloads go, ids and content hashes stay, figures stay exact."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text

from app.clock import FrozenClock
from app.events import retention
from app.worker.jobs import drop_old_payloads, run_raw_retention
from tests.support import metrics, orders, paid, post_events, quality_refunds


async def _payloads(app: FastAPI) -> dict[str, bool]:
    """Each stored event id → whether its payload is still there (hash always is)."""
    async with app.state.db.read() as session:
        rows = await session.execute(
            text("SELECT event_id, payload IS NOT NULL, content_hash FROM events")
        )
        kept = {}
        for event_id, has_payload, content_hash in rows:
            assert content_hash is not None and len(bytes(content_hash)) == 16
            kept[event_id] = bool(has_payload)
        return kept


@pytest.fixture
def small_ranges(monkeypatch: pytest.MonkeyPatch) -> None:
    """Ranges of a page / a few rows, so a pass over a small table takes many transactions."""
    monkeypatch.setattr(retention, "PG_PAGES_PER_RANGE", 1)
    monkeypatch.setattr(retention, "SQLITE_ROWS_PER_RANGE", 7)


@pytest.mark.usefixtures("small_ranges")
async def test_old_payloads_go_and_a_resend_is_still_a_duplicate_or_a_conflict(
    app: FastAPI, client: httpx.AsyncClient, clock: FrozenClock
) -> None:
    old: list[dict[str, Any]] = orders("s1", 60, products=3) + quality_refunds("s1", range(4))
    await post_events(client, old)
    clock.advance(timedelta(days=31))
    young = [paid("young-1", at="2026-12-26T10:00:00+08:00")]
    await post_events(client, young)
    as_of = {"as_of": "2026-11-26"}
    before = await metrics(client, "s1", **as_of)

    dropped = await drop_old_payloads(app.state.db, clock.now(), retention_days=30)

    assert dropped == len(old)
    kept = await _payloads(app)
    assert {e["event_id"] for e in old} == {i for i, has in kept.items() if not has}
    assert kept[young[0]["event_id"]] is True
    assert await metrics(client, "s1", **as_of) == before  # folded state, not payloads

    resent = await post_events(client, [old[0], {**old[1], "amount": "9.90"}])
    assert [r["status"] for r in resent["results"]] == ["duplicate", "rejected"]
    assert resent["results"][1]["error"]["code"] == "event_id_conflict"
    assert await metrics(client, "s1", **as_of) == before

    assert await drop_old_payloads(app.state.db, clock.now(), retention_days=30) == 0


async def test_payloads_younger_than_the_horizon_stay(
    app: FastAPI, client: httpx.AsyncClient, clock: FrozenClock
) -> None:
    await post_events(client, orders("s1", 5))
    clock.advance(timedelta(days=29, hours=23))
    await run_raw_retention(app.state.db, clock.now(), retention_days=30)
    assert all((await _payloads(app)).values())
