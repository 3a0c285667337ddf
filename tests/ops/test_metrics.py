"""GET /metrics, parsed with prometheus-client's parser: counters move by what committed."""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import AsyncIterator
from pathlib import Path
from types import SimpleNamespace

import httpx
import orjson
import pytest
from fastapi import FastAPI

from app.clock import FrozenClock
from app.config import Settings
from app.main import create_app
from app.ops.metrics import DatabaseFacts, count_alerts_on_commit
from app.webhooks.relay import Relay
from tests.conftest import ADMIN_KEY
from tests.fakes.receiver import running_receiver
from tests.ops.scrape import scrape, total, value
from tests.support import breach_demotion, paid, post_events, requested, subscribe

DASHBOARD = Path(__file__).resolve().parents[2] / "docs" / "grafana-dashboard.json"
FAMILIES = {
    "refundwatch_events",
    "refundwatch_ingest_seconds",
    "refundwatch_alerts",
    "refundwatch_scopes",
    "refundwatch_outbox_pending",
    "refundwatch_deliveries",
    "refundwatch_delivery_seconds",
    "refundwatch_connection_lag_seconds",
    "refundwatch_http_requests",
    "refundwatch_http_request_seconds",
    "refundwatch_database_up",
}


@pytest.fixture
def fresh_facts(app: FastAPI) -> None:
    """Database facts read at every scrape (production reuses them for a few seconds)."""
    app.state.database_facts = DatabaseFacts(app.state.db, app.state.clock, ttl=0)


async def test_every_named_family_is_exposed(client: httpx.AsyncClient) -> None:
    families, samples = await scrape(client)
    assert families >= FAMILIES
    assert value(samples, "refundwatch_database_up") == 1
    for status in ("accepted", "duplicate", "rejected"):
        assert ("refundwatch_events_total", frozenset({("status", status)})) in samples


async def test_accepted_moves_by_exactly_what_was_accepted(client: httpx.AsyncClient) -> None:
    await post_events(client, [paid("o1", event_id="first")])
    _, before = await scrape(client)

    body = await post_events(
        client,
        [
            paid("o2"),
            paid("o3"),
            requested("r1", "o2"),
            paid("o1", event_id="first"),  # a resend: duplicate
            paid("o9", event_id="first", product="other"),  # same id, other content
            {"event_id": "bad", "type": "order.paid", "store_id": "s1"},  # invalid
        ],
    )
    _, after = await scrape(client)

    assert (body["accepted"], body["duplicates"], body["rejected"]) == (3, 1, 2)

    def moved(status: str) -> float:
        name = "refundwatch_events_total"
        return value(after, name, status=status) - value(before, name, status=status)

    assert (moved("accepted"), moved("duplicate"), moved("rejected")) == (3, 1, 2)
    count = "refundwatch_ingest_seconds_count"
    assert value(after, count, door="http") == value(before, count, door="http") + 1


async def test_merged_requests_count_each_of_their_events_once(client: httpx.AsyncClient) -> None:
    _, before = await scrape(client)
    answers = await asyncio.gather(
        *(post_events(client, [paid(f"g{i}-{j}") for j in range(5)]) for i in range(12))
    )
    _, after = await scrape(client)
    accepted = sum(a["accepted"] for a in answers)
    assert accepted == 60
    name = "refundwatch_events_total"
    assert value(after, name, status="accepted") - value(before, name, status="accepted") == 60


async def test_metrics_need_a_read_key(app: FastAPI, client: httpx.AsyncClient) -> None:
    created = await client.post("/v1/api-keys", json={"name": "feeder", "scopes": ["ingest"]})
    assert created.status_code == 201, created.text
    ingest_key = created.json()["key"]
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://test"
    ) as anonymous:
        assert (await anonymous.get("/metrics")).status_code == 401
        denied = await anonymous.get("/metrics", headers={"Authorization": f"Bearer {ingest_key}"})
        assert denied.status_code == 403


async def test_metrics_are_open_when_made_public(
    app_settings: Settings, clock: FrozenClock
) -> None:
    public = create_app(app_settings.model_copy(update={"metrics_public": True}), clock=clock)
    async with (
        public.router.lifespan_context(public),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=public), base_url="http://t") as c,
    ):
        families, _ = await scrape(c)
    assert "refundwatch_events" in families


@pytest.mark.usefixtures("fresh_facts")
async def test_alerts_and_scopes_follow_a_breach(client: httpx.AsyncClient) -> None:
    _, before = await scrape(client)
    assert value(before, "refundwatch_scopes", state="breached") == 0

    await breach_demotion(client, "s1")
    _, after = await scrape(client)

    name = "refundwatch_alerts_total"
    labels = {"type": "alert.breached", "tier": "demotion"}
    assert value(after, name, **labels) - value(before, name, **labels) == 1
    assert value(after, "refundwatch_scopes", state="breached") == 1
    assert value(after, "refundwatch_scopes", state="approaching") == 0


async def test_alerts_of_a_rolled_back_transaction_are_not_counted(app: FastAPI) -> None:
    from app.ops.metrics import ALERTS

    alert = SimpleNamespace(alert_id="a-x", type="alert.breached", tier="listing_ban")
    child = ALERTS.labels(type="alert.breached", tier="listing_ban")
    start = child._value.get()
    with pytest.raises(RuntimeError):
        async with app.state.db.transaction() as session:
            count_alerts_on_commit(session, [alert])
            raise RuntimeError("rolled back")
    assert child._value.get() == start
    async with app.state.db.transaction() as session:
        count_alerts_on_commit(session, [alert, alert])
    assert child._value.get() == start + 2


@pytest.fixture
async def relay(app: FastAPI, clock: FrozenClock) -> Relay:
    return Relay(app.state.db, app.state.settings, clock)


@pytest.mark.usefixtures("fresh_facts")
async def test_a_delivery_is_counted_by_format_and_outcome_and_leaves_the_outbox(
    client: httpx.AsyncClient, relay: Relay
) -> None:
    async with running_receiver() as receiver:
        await subscribe(client, receiver.url)
        await breach_demotion(client, "s1")
        _, queued = await scrape(client)
        assert value(queued, "refundwatch_outbox_pending") == 1

        assert await relay.run_once() == 1
        _, sent = await scrape(client)

    name = "refundwatch_deliveries_total"
    labels = {"format": "standard", "outcome": "delivered"}
    assert value(sent, name, **labels) - value(queued, name, **labels) == 1
    seconds = "refundwatch_delivery_seconds_count"
    assert value(sent, seconds, format="standard") - value(queued, seconds, format="standard") == 1
    assert value(sent, "refundwatch_outbox_pending") == 0


async def test_requests_are_counted_by_route_template(client: httpx.AsyncClient) -> None:
    await post_events(client, [paid("o1")])
    assert (await client.get("/v1/stores/s1/metrics")).status_code == 200
    assert (await client.get("/v1/stores/s1/metrics")).status_code == 200
    _, samples = await scrape(client)
    name = "refundwatch_http_requests_total"
    route = "/v1/stores/{store_id}/metrics"
    assert total(samples, name, route=route, status="200") >= 2
    assert not any(dict(labels).get("route") == "/v1/stores/s1/metrics" for (_, labels) in samples)


async def test_a_database_that_does_not_answer_is_said_not_hidden(
    app_settings: Settings, clock: FrozenClock
) -> None:
    application = create_app(app_settings, clock=clock)
    async with application.router.lifespan_context(application):
        facts = DatabaseFacts(application.state.db, clock, ttl=0)

        @contextlib.asynccontextmanager
        async def broken() -> AsyncIterator[None]:
            raise OSError("database gone")
            yield

        application.state.db.read = broken  # type: ignore[method-assign]
        application.state.database_facts = facts
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=application),
            base_url="http://t",
            headers={"Authorization": f"Bearer {ADMIN_KEY}"},
        ) as c:
            families, samples = await scrape(c)
    assert value(samples, "refundwatch_database_up") == 0
    assert "refundwatch_events" in families


async def test_the_grafana_dashboard_uses_only_exposed_series(client: httpx.AsyncClient) -> None:
    used = set(re.findall(r"refundwatch_[a-z_]+", DASHBOARD.read_text()))
    await post_events(client, [paid("o1")])  # so every histogram has a series
    families, samples = await scrape(client)
    exposed = families | {name for name, _ in samples}  # lag: a family with no connection yet
    assert used and used <= exposed, used - exposed


async def test_a_file_import_counts_what_its_transactions_committed(
    client: httpx.AsyncClient, app_settings: Settings, tmp_path: Path
) -> None:
    from app.imports.cli import import_files

    rows = [paid("f1"), paid("f2"), requested("fr1", "f1"), {"event_id": "f-bad", "type": "?"}]
    path = tmp_path / "events.jsonl"
    path.write_bytes(b"\n".join(orjson.dumps(row) for row in rows) + b"\n")
    _, before = await scrape(client)

    exit_code = await import_files(
        app_settings,
        [path],
        store_id=None,
        format="events-jsonl",
        dry_run=False,
        errors_path=None,
        reason_map_path=None,
    )
    _, after = await scrape(client)

    assert exit_code == 1  # a row was refused
    name = "refundwatch_events_total"
    assert value(after, name, status="accepted") - value(before, name, status="accepted") == 3
    assert value(after, name, status="rejected") - value(before, name, status="rejected") == 1
    count = "refundwatch_ingest_seconds_count"
    assert value(after, count, door="import") - value(before, count, door="import") == 1
