"""POST /v1/events: per-event results, idempotency, validation codes, envelopes."""

from __future__ import annotations

import httpx

from tests.conftest import post_events
from tests.factories import paid, refund_event, requested


async def test_three_events_are_accepted_and_counted(client: httpx.AsyncClient) -> None:
    body = await post_events(
        client, [paid("o1"), requested("r1", "o1"), refund_event("succeeded", "r1")]
    )
    assert body["accepted"] == 3 and body["duplicates"] == 0 and body["rejected"] == 0
    metrics = (await client.get("/v1/stores/s1/metrics")).json()
    assert metrics["orders"] == 1
    assert metrics["quality_refunds"] == 1
    assert metrics["applied_quality_refunds"] == 1
    assert metrics["pending_quality_refunds"] == 0
    assert metrics["quality_refund_rate"] == "1.000000"
    assert metrics["as_of"] == "2026-11-26"
    assert [t["tier"] for t in metrics["tiers"]] == ["demotion", "listing_ban"]
