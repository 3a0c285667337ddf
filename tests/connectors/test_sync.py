"""The connector end to end: connections through the API, the worker's sync against the
loopback fake gateway, figures compared with the oracle, faults and secrets.

The fake and the service share one frozen clock; the sync's waits (rate limiter,
backoff) advance it instead of sleeping.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text

from app.clock import FrozenClock
from app.config import Settings
from app.connectors.pdd.sync import Syncer
from app.main import create_app
from app.webhooks.relay import Relay
from tests import oracle
from tests.conftest import ADMIN_KEY, NOW
from tests.connectors.conftest import SECRET, TOKEN
from tests.fakes.pdd_gateway import FakePddGateway, FakeStore
from tests.fakes.receiver import running_receiver


def at(days_ago: float, hour: int = 10) -> datetime:
    """A time ``days_ago`` days before the test's now, at ``hour`` o'clock UTC."""
    return (NOW - timedelta(days=days_ago)).replace(hour=hour, minute=0, second=0)


def _world(store: FakeStore) -> list[dict[str, Any]]:
    """A few days of a store, and the events the connector rules expect from it."""
    expected: list[dict[str, Any]] = []
    for i in range(30):
        paid_at = at(3 - i % 3, 8 + i % 10)
        shipped = paid_at + timedelta(hours=14) if i % 2 else None
        if shipped is not None and shipped > NOW - timedelta(hours=1):
            shipped = None  # not shipped yet
        store.add_order(
            f"2611{i:02d}-00000000{i:04d}",
            goods_id=700 + i % 3,
            confirm_time=paid_at,
            shipping_time=shipped,
        )
        sn = f"2611{i:02d}-00000000{i:04d}"
        expected.append(
            {
                "event_id": f"paid-{i}",
                "type": "order.paid",
                "store_id": "s1",
                "occurred_at": paid_at.isoformat(),
                "order_id": sn,
                "product_id": str(700 + i % 3),
            }
        )
        if shipped is not None:
            expected.append(
                {
                    "event_id": f"shipped-{i}",
                    "type": "order.shipped",
                    "store_id": "s1",
                    "occurred_at": shipped.isoformat(),
                    "order_id": sn,
                }
            )
    for j, (i, status, reason) in enumerate(
        [
            (0, 10, "质量问题"),
            (1, 2, "描述不符"),
            (2, 11, "质量问题"),
            (4, 2, "做工粗糙"),
            (5, 12, "质量问题"),
            (7, 2, "不想要了"),
        ]
    ):
        created = at(3 - i % 3, 8 + i % 10) + timedelta(hours=6)
        sn = f"2611{i:02d}-00000000{i:04d}"
        updated = created + timedelta(hours=3) if status != 2 else created
        store.add_refund(
            9000 + j,
            sn,
            goods_id=700 + i % 3,
            after_sales_status=status,
            after_sale_reason=reason,
            created_time=created,
            updated_time=updated,
        )
        expected.append(
            {
                "event_id": f"req-{j}",
                "type": "refund.requested",
                "store_id": "s1",
                "occurred_at": created.isoformat(),
                "refund_id": str(9000 + j),
                "order_id": sn,
                "kind": "refund_only",
                "reason": {
                    "质量问题": "quality_issue",
                    "描述不符": "not_as_described",
                    "做工粗糙": "quality_issue",
                    "不想要了": "changed_mind",
                }[reason],
            }
        )
        outcome = {10: "succeeded", 11: "withdrawn", 12: "rejected"}.get(status)
        if outcome:
            expected.append(
                {
                    "event_id": f"out-{j}",
                    "type": f"refund.{outcome}",
                    "store_id": "s1",
                    "occurred_at": updated.isoformat(),
                    "refund_id": str(9000 + j),
                }
            )
    return expected


async def _sync(syncer: Syncer) -> None:
    """Sync rounds until nothing is due (a backfill takes several rounds)."""
    for _ in range(50):
        if not await syncer.run_once():
            return
    raise AssertionError("the sync never caught up")


async def _connect(api: httpx.AsyncClient, store: str = "s1", **fields: Any) -> dict[str, Any]:
    body = {
        "platform": "pdd",
        "store_id": store,
        "client_id": "app-1",
        "client_secret": SECRET,
        "access_token": TOKEN if store == "s1" else f"{TOKEN}-{store}",
        "sync_from": at(5, 0).isoformat(),
        **fields,
    }
    response = await api.post("/v1/connections", json=body)
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


async def _figures_match(api: httpx.AsyncClient, events: list[dict[str, Any]]) -> None:
    for day in (NOW.date(), NOW.date() - timedelta(days=1)):
        body = (await api.get("/v1/stores/s1/metrics", params={"as_of": str(day)})).json()
        want = oracle.figures(events, store_id="s1", as_of=day)
        assert (body["orders"], body["quality_refunds"], body["pending_quality_refunds"]) == (
            want.orders,
            want.quality_refunds,
            want.pending_quality_refunds,
        ), day


async def test_a_connection_backfills_goes_live_and_its_figures_follow_the_platform(
    api: httpx.AsyncClient, fake: FakePddGateway, syncer: Syncer, clock: FrozenClock
) -> None:
    expected = _world(fake.add_store(TOKEN, client_id="app-1"))
    created = await _connect(api)
    assert created["status"] == "backfilling"
    assert SECRET not in str(created) and TOKEN not in str(created)

    assert await syncer.run_once() == 1
    await _sync(syncer)  # a backfill continues round after round until caught up
    got = (await api.get(f"/v1/connections/{created['id']}")).json()
    assert got["status"] == "live", (got["last_error"], got["counts"], got["synced_through"])
    assert got["last_error"] is None
    assert got["lag_seconds"] <= 5 * 60
    assert got["counts"]["events_accepted"] == len(expected), (
        got["counts"],
        got["synced_through"],
        sorted(e["event_id"] for e in expected),
    )
    await _figures_match(api, expected)
    # Every call was signed right and asked for at most 30 minutes.
    assert fake.calls and all(c.signature_ok for c in fake.calls)
    assert all(0 < (c.span_seconds or 0) <= 1800 for c in fake.calls)
    # synced_through never passes the platform's now − 3 minutes.
    assert datetime.fromisoformat(got["synced_through"]) <= clock.now() - timedelta(minutes=3)


async def test_a_status_change_at_the_platform_reaches_the_figures_at_the_next_sync(
    api: httpx.AsyncClient, fake: FakePddGateway, syncer: Syncer, clock: FrozenClock
) -> None:
    store = fake.add_store(TOKEN, client_id="app-1")
    expected = _world(store)
    await _connect(api)
    await _sync(syncer)
    before = (await api.get("/v1/stores/s1/metrics")).json()
    clock.advance(timedelta(minutes=2))
    store.update_refund(9001, after_sales_status=11)  # the buyer withdrew the 描述不符 refund
    clock.advance(timedelta(minutes=2))
    await _sync(syncer)
    after = (await api.get("/v1/stores/s1/metrics")).json()
    withdrawn_at = clock.now() - timedelta(minutes=2)
    expected.append(
        {
            "event_id": "late",
            "type": "refund.withdrawn",
            "store_id": "s1",
            "occurred_at": withdrawn_at.isoformat(),
            "refund_id": "9001",
        }
    )
    assert after["quality_refunds"] == before["quality_refunds"] - 1
    await _figures_match(api, expected)


async def test_a_wrong_secret_fails_its_connection_alone_and_says_so(
    api: httpx.AsyncClient, fake: FakePddGateway, syncer: Syncer, connector_app: FastAPI
) -> None:
    _world(fake.add_store(TOKEN, client_id="app-1"))
    fake.add_store(f"{TOKEN}-s2", client_id="app-1")
    async with running_receiver() as receiver:
        hook = await api.post("/v1/webhooks", json={"url": receiver.url, "format": "standard"})
        assert hook.status_code == 201
        good = await _connect(api)
        bad = await _connect(api, "s2", client_secret="not-the-secret-of-this-app")
        await _sync(syncer)
        failing = (await api.get(f"/v1/connections/{bad['id']}")).json()
        assert failing["status"] == "failing"
        assert failing["last_error"]["code"] == "20004"
        assert failing["last_error"]["message"]
        assert (await api.get(f"/v1/connections/{good['id']}")).json()["status"] == "live"
        await Relay(connector_app.state.db, connector_app.state.settings, syncer.clock).run_once()
        notices = [r.json() for r in receiver.requests if r.json()["type"] == "connection.failing"]
        assert [n["data"]["store_id"] for n in notices] == ["s2"]
        assert "not-the-secret" not in str(notices)

        # A second round neither calls for it again nor notifies twice.
        calls = len(fake.calls)
        await syncer.run_once()
        assert all(c.store != f"{TOKEN}-s2" for c in fake.calls[calls:])

        # The right secret, re-entered, brings it back.
        patched = await api.patch(f"/v1/connections/{bad['id']}", json={"client_secret": SECRET})
        assert patched.status_code == 200 and patched.json()["last_error"] is None
        await _sync(syncer)
        assert (await api.get(f"/v1/connections/{bad['id']}")).json()["status"] == "live"


async def test_throttling_and_a_malformed_answer_are_retried_not_half_applied(
    api: httpx.AsyncClient, fake: FakePddGateway, syncer: Syncer, clock: FrozenClock
) -> None:
    expected = _world(fake.add_store(TOKEN, client_id="app-1"))
    created = await _connect(api)
    fake.throttle_next(3)
    fake.malform_next(6, "wrong_shape")  # more than one call's 4 attempts: the round ends
    await syncer.run_once()
    stalled = (await api.get(f"/v1/connections/{created['id']}")).json()
    assert stalled["last_error"]["code"] == "malformedanswer"
    assert stalled["status"] == "backfilling"
    assert stalled["synced_through"] == created["synced_through"]  # nothing half-applied
    assert stalled["counts"]["events_accepted"] == 0
    fake.throttle_every(7)  # throttled now and then all along: the gateway retries
    for _ in range(10):  # each failed round backs off; the clock moves to its next turn
        current = (await api.get(f"/v1/connections/{created['id']}")).json()
        if current["status"] == "live":
            break
        clock.set(max(clock.now(), datetime.fromisoformat(current["next_sync_at"])))
        await _sync(syncer)
    done = (await api.get(f"/v1/connections/{created['id']}")).json()
    assert done["status"] == "live" and done["last_error"] is None
    assert any(c.outcome == "throttled" for c in fake.calls)
    await _figures_match(api, expected)


async def test_pausing_a_connection_stops_its_sync_and_resuming_restarts_it(
    api: httpx.AsyncClient, fake: FakePddGateway, syncer: Syncer
) -> None:
    _world(fake.add_store(TOKEN, client_id="app-1"))
    created = await _connect(api)
    paused = await api.patch(f"/v1/connections/{created['id']}", json={"enabled": False})
    assert paused.json()["status"] == "disabled"
    assert await syncer.run_once() == 0 and fake.calls == []
    resumed = await api.patch(f"/v1/connections/{created['id']}", json={"enabled": True})
    assert resumed.json()["status"] in ("backfilling", "live")
    assert await syncer.run_once() == 1


async def test_secrets_are_never_returned_and_stored_encrypted(
    api: httpx.AsyncClient, fake: FakePddGateway, connector_app: FastAPI
) -> None:
    created = await _connect(api)
    texts = [
        (await api.get("/v1/connections")).text,
        (await api.get(f"/v1/connections/{created['id']}")).text,
        (await api.patch(f"/v1/connections/{created['id']}", json={"access_token": TOKEN})).text,
    ]
    assert not any(SECRET in t or TOKEN in t for t in texts)
    async with connector_app.state.db.read() as session:
        row = (await session.execute(text("SELECT * FROM connections"))).mappings().one()
    assert SECRET not in str(dict(row)) and TOKEN not in str(dict(row))


async def test_a_second_connection_for_a_store_is_a_conflict(
    api: httpx.AsyncClient, fake: FakePddGateway
) -> None:
    await _connect(api)
    again = await api.post(
        "/v1/connections",
        json={
            "platform": "pdd",
            "store_id": "s1",
            "client_id": "x",
            "client_secret": "y",
            "access_token": "z",
        },
    )
    assert again.status_code == 409


async def test_production_refuses_a_connection_without_the_secret_key(
    connector_settings: Settings, clock: FrozenClock
) -> None:
    settings = connector_settings.model_copy(
        update={"environment": "production", "secret_key": None}
    )
    application = create_app(settings, clock=clock)
    async with (
        application.router.lifespan_context(application),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=application),
            base_url="http://test",
            headers={"Authorization": f"Bearer {ADMIN_KEY}"},
        ) as client,
    ):
        response = await client.post(
            "/v1/connections",
            json={
                "platform": "pdd",
                "store_id": "s1",
                "client_id": "a",
                "client_secret": "b",
                "access_token": "c",
            },
        )
    assert response.status_code == 503
    assert response.json()["code"] == "secret_key_missing"
    assert "REFUNDWATCH_SECRET_KEY" in response.json()["detail"]


async def test_development_creates_a_key_file_once(
    api: httpx.AsyncClient, connector_settings: Settings
) -> None:
    await _connect(api)
    key_file = connector_settings.data_dir / "secret.key"
    assert key_file.exists() and oct(key_file.stat().st_mode & 0o777) == "0o600"
    first = key_file.read_text()
    await _connect(api, "s2")
    assert key_file.read_text() == first


async def test_two_replicas_sync_each_connection_once(
    api: httpx.AsyncClient,
    fake: FakePddGateway,
    connector_app: FastAPI,
    connector_settings: Settings,
    clock: FrozenClock,
) -> None:
    for n in range(6):
        fake.add_store(f"{TOKEN}-r{n}", client_id="app-1")
        await _connect(api, f"r{n}")
    replicas = [Syncer(connector_app.state.db, connector_settings, clock) for _ in range(2)]
    synced: list[list[int]] = [[], []]
    for replica, seen in zip(replicas, synced, strict=True):
        real = replica.sync

        async def recording(connection_id: int, real: Any = real, seen: list[int] = seen) -> None:
            seen.append(connection_id)
            await real(connection_id)

        replica.sync = recording  # type: ignore[method-assign]
    await asyncio.gather(*(r.run_once() for r in replicas))
    assert not set(synced[0]) & set(synced[1])
    assert sorted(synced[0] + synced[1]) == list(range(1, 7))
    for replica in replicas:
        await replica.close()


async def test_the_sync_counts_what_each_window_committed_and_its_lag_shows(
    connector_app: FastAPI, api: httpx.AsyncClient, fake: FakePddGateway, syncer: Syncer
) -> None:
    from app.ops.metrics import DatabaseFacts
    from tests.ops.scrape import scrape, value

    connector_app.state.database_facts = DatabaseFacts(
        connector_app.state.db, connector_app.state.clock, ttl=0
    )
    expected = _world(fake.add_store(TOKEN, client_id="app-1"))
    created = await _connect(api)
    _, before = await scrape(api)
    await _sync(syncer)
    _, after = await scrape(api)

    got = (await api.get(f"/v1/connections/{created['id']}")).json()
    assert got["counts"]["events_accepted"] == len(expected)
    name = "refundwatch_events_total"
    accepted = value(after, name, status="accepted") - value(before, name, status="accepted")
    assert accepted == len(expected)
    count = "refundwatch_ingest_seconds_count"
    assert value(after, count, door="connector") - value(before, count, door="connector") >= 1
    lag = value(after, "refundwatch_connection_lag_seconds", store_id="s1")
    assert 0 < lag == pytest.approx(got["lag_seconds"], abs=1)


REFRESH = "store-refresh-token-0123456789"


async def test_an_expired_token_is_renewed_with_the_refresh_token_and_the_sync_goes_on(
    api: httpx.AsyncClient,
    fake: FakePddGateway,
    syncer: Syncer,
    clock: FrozenClock,
    connector_app: FastAPI,
) -> None:
    store = fake.add_store(TOKEN, client_id="app-1")
    store.give_refresh_token(REFRESH)
    expected = _world(store)
    created = await _connect(api, refresh_token=REFRESH)
    assert created["has_refresh_token"] is True and created["token_refreshed_at"] is None
    assert REFRESH not in str(created)
    await syncer.run_once()  # the first round of the backfill, on the first token
    store.expire_token()  # mid-backfill, the platform says 10019
    await _sync(syncer)

    got = (await api.get(f"/v1/connections/{created['id']}")).json()
    assert got["status"] == "live", got["last_error"]
    assert got["last_error"] is None
    assert got["token_refreshed_at"] is not None
    assert got["counts"]["events_accepted"] == len(expected)
    await _figures_match(api, expected)
    assert store.refreshes == 1
    refresh_calls = [c for c in fake.calls if c.api == "pdd.pop.auth.token.refresh"]
    assert len(refresh_calls) == 1 and refresh_calls[0].signature_ok
    assert "access_token" not in refresh_calls[0].params  # the expired one is not sent
    assert refresh_calls[0].params["refresh_token"] == REFRESH
    # After the renewal every call carries the new token; the old pair is gone.
    later = fake.calls[fake.calls.index(refresh_calls[0]) + 1 :]
    assert later and {c.params["access_token"] for c in later} == {store.access_token}
    assert store.access_token != TOKEN and store.refresh_token != REFRESH
    # The new pair is stored encrypted and shown nowhere.
    texts = [(await api.get("/v1/connections")).text, str(got)]
    assert not any(
        secret in t for t in texts for secret in (store.access_token, store.refresh_token)
    )
    async with connector_app.state.db.read() as session:
        row = (await session.execute(text("SELECT * FROM connections"))).mappings().one()
    stored = str(dict(row))
    assert all(s not in stored for s in (REFRESH, store.access_token, store.refresh_token or "?"))

    # It expires again a day later: renewed again, with the refresh token the platform gave.
    clock.advance(timedelta(days=1))
    store.expire_token()
    await _sync(syncer)
    assert store.refreshes == 2
    assert (await api.get(f"/v1/connections/{created['id']}")).json()["status"] == "live"


async def test_a_refused_refresh_token_fails_the_connection_in_the_platforms_words(
    api: httpx.AsyncClient, fake: FakePddGateway, syncer: Syncer
) -> None:
    store = fake.add_store(TOKEN, client_id="app-1")
    store.give_refresh_token(REFRESH)
    _world(store)
    created = await _connect(api, refresh_token="a-refresh-token-the-platform-never-gave")
    store.expire_token()
    await _sync(syncer)
    got = (await api.get(f"/v1/connections/{created['id']}")).json()
    assert got["status"] == "failing"
    assert got["last_error"]["code"] == "10019"
    assert "refresh_token" in got["last_error"]["message"]  # the refresh call's refusal
    assert "never-gave" not in str(got)
    assert store.refreshes == 0
    # Without a refresh token, an expired token fails as it always did.
    other = fake.add_store(f"{TOKEN}-s2", client_id="app-1")
    other.expire_token()
    plain = await _connect(api, "s2")
    assert plain["has_refresh_token"] is False
    await _sync(syncer)
    failing = (await api.get(f"/v1/connections/{plain['id']}")).json()
    assert failing["status"] == "failing" and failing["last_error"]["code"] == "10019"
    assert not any(
        c.api == "pdd.pop.auth.token.refresh" and c.store == other.mall_id for c in fake.calls
    )
