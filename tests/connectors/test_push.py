"""The message push: its protocol as the platform's clients speak it, and a pushed change
syncing its store at once, against loopback fakes of the message service and the gateway."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any

import httpx
import orjson
import pytest
from fastapi import FastAPI
from hypothesis import given
from hypothesis import strategies as st

from app.clock import FrozenClock
from app.config import Settings
from app.connectors import repository
from app.connectors.pdd import messages
from app.connectors.pdd.push import MessageListener
from app.connectors.pdd.sync import Syncer
from app.main import create_app
from app.worker.scheduler import Worker
from tests.conftest import NOW
from tests.connectors.conftest import SECRET, TOKEN
from tests.connectors.test_sync import _connect, _sync, _world
from tests.fakes.pdd_gateway import FakePddGateway
from tests.fakes.pdd_messages import FakeMessageService, running_message_service

MALL = 171504183

# --------------------------------------------------------------------------- protocol


def test_the_path_is_signed_as_the_platforms_clients_sign_it() -> None:
    # Known answer computed apart (coreutils):
    #   printf %s "app-11764755200000app-secret-of-the-fake-0123456789" | md5sum | cut -c1-32 \
    #     | tr -d '\n' | base64
    assert messages.path_sign("app-1", SECRET, 1764755200000) == (
        "MTAwM2YxYWFhZmQ0ZWMxNDFjMDZlZTVkY2RiZDFjNTY="
    )
    assert messages.connection_path("app-1", SECRET, 1764755200000) == (
        "/message/app-1/1764755200000/MTAwM2YxYWFhZmQ0ZWMxNDFjMDZlZTVkY2RiZDFjNTY%3D"
    )
    with pytest.raises(ValueError):
        messages.connection_path("app-1", "", 1764755200000)


def _common(**overrides: Any) -> dict[str, Any]:
    frame: dict[str, Any] = {
        "id": 7381745730001,
        "commandType": "Common",
        "time": 1625637425016,
        "sendTime": 1625637425000,
        "message": {
            "type": "pdd_refund_RefundCreated",
            "mallID": MALL,
            "content": orjson.dumps(
                {
                    "mall_id": MALL,
                    "refund_fee": 1990,
                    "bill_type": 1,
                    "modified": 1625637425016,
                    "refund_id": 7381745730,
                    "operation": 1000,
                    "tid": "210707-339507978993455",
                }
            ).decode(),
        },
    }
    frame.update(overrides)
    return frame


def test_a_business_message_is_decoded_and_acknowledged_in_the_documented_shape() -> None:
    message = messages.decode(orjson.dumps(_common()))
    assert message is not None
    assert (message.id, message.type, message.mall_id, message.send_time) == (
        7381745730001,
        "pdd_refund_RefundCreated",
        str(MALL),
        1625637425000,
    )
    assert message.content["tid"] == "210707-339507978993455"
    assert messages.wakes_sync(message)
    assert orjson.loads(messages.acknowledge(message, 1625637426000)) == {
        "id": 7381745730001,
        "commandType": "Ack",
        "time": 1625637426000,
        "sendTime": 1625637425000,
        "type": "pdd_refund_RefundCreated",
        "mallID": MALL,
    }
    assert orjson.loads(messages.heartbeat(5)) == {"id": 5, "commandType": "HeartBeat", "time": 5}


def test_heartbeats_and_acks_carry_no_message() -> None:
    assert messages.decode('{"commandType":"HeartBeat","time":1}') is None
    assert messages.decode(b'{"commandType":"Ack","id":3}') is None


def test_a_message_of_no_interest_is_decoded_whatever_its_content() -> None:
    # so it is acknowledged, not sent again forever
    for content in ("not json", '{"mall_id": 1}', "[1]"):
        frame = _common(message={"type": "pdd_chat_X", "mallID": MALL, "content": content})
        message = messages.decode(orjson.dumps(frame))
        assert message is not None and not messages.wakes_sync(message)


def test_only_order_and_after_sale_messages_wake_a_sync() -> None:
    chat = _common()
    chat["message"]["type"] = "pdd_chat_ChatMessage"
    message = messages.decode(orjson.dumps(chat))
    assert message is not None and not messages.wakes_sync(message)
    trade = _common()
    trade["message"]["type"] = "pdd_trade_TradeSellerShip"
    message = messages.decode(orjson.dumps(trade))
    assert message is not None and messages.wakes_sync(message)


@pytest.mark.parametrize(
    "frame",
    [
        b"not json",
        b"[1, 2]",
        b'{"commandType": "Surprise"}',
        orjson.dumps(_common(message=None)),
        orjson.dumps(_common(id=-1)),
        orjson.dumps(_common(id=True)),
        orjson.dumps(_common(id="12x")),
        orjson.dumps(_common(sendTime=0)),
        orjson.dumps(
            _common(message={"type": "pdd_refund_X", "mallID": MALL, "content": {"a": 1}})
        ),
        orjson.dumps(_common(message={"type": "pdd_refund_X", "mallID": MALL, "content": "[1]"})),
        orjson.dumps(_common(message={"type": "pdd_refund_X", "mallID": MALL, "content": "{bad"})),
        orjson.dumps(_common(message={"type": "", "mallID": MALL, "content": "{}"})),
        orjson.dumps(_common(message={"type": "t\x00", "mallID": 0, "content": "{}"})),
        orjson.dumps(
            _common(message={"type": "pdd_refund_X", "mallID": 1, "content": '{"mall_id": 2}'})
        ),
        orjson.dumps(
            _common(
                message={"type": "pdd_refund_X", "mallID": 1, "content": "{}" + " " * (1 << 20)}
            )
        ),
        orjson.dumps(_common(deep=[[[[[[[[[[1]]]]]]]]]])),
    ],
)
def test_a_malformed_frame_is_refused_by_name(frame: bytes) -> None:
    with pytest.raises(messages.MalformedMessage):
        messages.decode(frame)


@given(
    st.one_of(
        st.binary(max_size=300),
        st.recursive(
            st.none()
            | st.booleans()
            | st.integers(min_value=-(2**63), max_value=2**64 - 1)
            | st.text(max_size=20),
            lambda inner: (
                st.lists(inner, max_size=4)
                | st.dictionaries(
                    st.sampled_from(["id", "commandType", "message", "type", "mallID", "content"]),
                    inner,
                    max_size=6,
                )
            ),
            max_leaves=20,
        ).map(orjson.dumps),
    )
)
def test_no_frame_breaks_the_decoder(frame: bytes) -> None:
    with contextlib.suppress(messages.MalformedMessage):
        messages.decode(frame)


# --------------------------------------------------------------------------- end to end


@pytest.fixture
async def message_service(clock: FrozenClock) -> AsyncIterator[FakeMessageService]:
    async with running_message_service(clock) as service:
        service.add_app("app-1", SECRET)
        yield service


@pytest.fixture
async def listener(
    connector_app: FastAPI,
    connector_settings: Settings,
    clock: FrozenClock,
    message_service: FakeMessageService,
    syncer: Syncer,
) -> AsyncIterator[MessageListener]:
    settings = connector_settings.model_copy(update={"pdd_message_url": message_service.url})

    async def no_wait(seconds: float) -> None:
        await asyncio.sleep(0)  # reconnect at once: the fake is on loopback

    running = MessageListener(
        connector_app.state.db, settings, clock, on_poke=syncer.wake, sleep=no_wait
    )
    task = asyncio.create_task(running.run_forever())
    yield running
    await running.close()
    await asyncio.wait_for(task, timeout=10)  # close() ends the loop


async def _live(api: httpx.AsyncClient, fake: FakePddGateway, syncer: Syncer) -> int:
    _world(fake.add_store(TOKEN, client_id="app-1", mall_id=str(MALL)))
    created = await _connect(api, mall_id=str(MALL))
    assert created["mall_id"] == str(MALL)
    await _sync(syncer)
    got = (await api.get(f"/v1/connections/{created['id']}")).json()
    assert got["status"] == "live"
    return int(created["id"])


async def test_a_pushed_refund_syncs_its_store_at_once(
    api: httpx.AsyncClient,
    fake: FakePddGateway,
    syncer: Syncer,
    clock: FrozenClock,
    message_service: FakeMessageService,
    listener: MessageListener,
) -> None:
    await _live(api, fake, syncer)
    listener.wake()
    await message_service.wait_listening("app-1")
    assert message_service.handshakes[-1].accepted
    clock.advance(timedelta(seconds=20))
    before = (await api.get("/v1/stores/s1/metrics")).json()
    store = fake.stores[TOKEN]
    refunded = {r["order_sn"] for r in store.refunds.records.values()}
    sn = next(sn for sn in store.orders.records if sn not in refunded)
    store.add_refund(9555, sn, after_sales_status=2, after_sale_reason="质量问题")
    assert await syncer.run_once() == 0  # 20 s after the last sync: not due for 40 s more

    message_id = await message_service.push(
        "app-1",
        "pdd_refund_RefundCreated",
        MALL,
        {"mall_id": MALL, "refund_id": 9555, "tid": sn, "bill_type": 1, "modified": 1},
    )
    ack = await message_service.wait_ack(message_id)
    assert (ack["type"], ack["mallID"]) == ("pdd_refund_RefundCreated", MALL)
    assert listener.pokes == 1
    assert await syncer.run_once() == 1  # the push made it due now
    after = (await api.get("/v1/stores/s1/metrics")).json()
    assert after["quality_refunds"] == before["quality_refunds"] + 1  # the pushed refund is in
    assert after["pending_quality_refunds"] == before["pending_quality_refunds"] + 1
    assert await syncer.run_once() == 0  # once: the poke came before that sync began


async def test_messages_of_another_mall_or_of_no_interest_are_acknowledged_and_wake_nothing(
    api: httpx.AsyncClient,
    fake: FakePddGateway,
    syncer: Syncer,
    clock: FrozenClock,
    message_service: FakeMessageService,
    listener: MessageListener,
) -> None:
    await _live(api, fake, syncer)
    listener.wake()
    await message_service.wait_listening("app-1")
    other = await message_service.push("app-1", "pdd_refund_RefundCreated", MALL + 1, {})
    chat = await message_service.push("app-1", "pdd_chat_ChatMessage", MALL, {})
    await message_service.wait_ack(other)
    await message_service.wait_ack(chat)
    assert listener.pokes == 0
    assert await syncer.run_once() == 0


async def test_a_malformed_frame_is_not_acknowledged_and_the_socket_goes_on(
    api: httpx.AsyncClient,
    fake: FakePddGateway,
    syncer: Syncer,
    message_service: FakeMessageService,
    listener: MessageListener,
    caplog: pytest.LogCaptureFixture,
) -> None:
    await _live(api, fake, syncer)
    listener.wake()
    await message_service.wait_listening("app-1")
    bad = await message_service.push("app-1", "x", MALL, {}, raw='{"commandType":"Common"}')
    good = await message_service.push("app-1", "pdd_trade_TradeSellerShip", MALL, {})
    await message_service.wait_ack(good)
    assert all(a["id"] != bad for a in message_service.acks)
    assert "malformed frame" in caplog.text
    assert listener.pokes == 1


async def test_a_cut_socket_is_opened_again_and_a_wrong_secret_is_refused_unlogged(
    api: httpx.AsyncClient,
    fake: FakePddGateway,
    syncer: Syncer,
    message_service: FakeMessageService,
    listener: MessageListener,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    await _live(api, fake, syncer)
    listener.wake()
    await message_service.wait_listening("app-1")
    await message_service.drop_all()
    await message_service.wait_listening("app-1")  # the listener opened it again
    message_id = await message_service.push("app-1", "pdd_refund_RefundClosed", MALL, {})
    await message_service.wait_ack(message_id)
    assert [h.accepted for h in message_service.handshakes] == [True, True]

    message_service.secrets["app-1"] = "the-platform-knows-another-secret"
    await message_service.drop_all()
    await message_service.wait_refusals(2)  # the listener retries at once against the fake
    refused = [h for h in message_service.handshakes if not h.accepted]
    assert len(refused) >= 2 and {h.reason for h in refused} == {"bad sign"}
    assert "refused the connection (HTTP 401)" in caplog.text
    assert SECRET not in caplog.text
    assert all(h.path.rsplit("/", 1)[-1] not in caplog.text for h in message_service.handshakes)


async def test_a_push_during_a_sync_makes_the_connection_due_again_when_it_ends(
    api: httpx.AsyncClient,
    fake: FakePddGateway,
    syncer: Syncer,
    clock: FrozenClock,
    connector_app: FastAPI,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    connection_id = await _live(api, fake, syncer)
    clock.advance(timedelta(seconds=61))
    walk = syncer._walk

    async def walk_then_poke(*args: Any) -> bool:
        caught_up = await walk(*args)
        clock.advance(timedelta(seconds=1))  # a change pushed while the sync ran
        async with connector_app.state.db.transaction() as session:
            assert await repository.poke(session, "app-1", str(MALL), clock.now()) == 1
        return caught_up

    monkeypatch.setattr(syncer, "_walk", walk_then_poke)
    assert await syncer.run_once() == 1
    got = (await api.get(f"/v1/connections/{connection_id}")).json()
    assert datetime.fromisoformat(got["next_sync_at"]) == clock.now()  # due at once
    monkeypatch.setattr(syncer, "_walk", walk)
    assert await syncer.run_once() == 1  # due again at once
    assert await syncer.run_once() == 0  # and then not, until the interval


async def test_a_connection_backing_off_is_not_pulled_forward(
    api: httpx.AsyncClient, fake: FakePddGateway, syncer: Syncer, connector_app: FastAPI
) -> None:
    connection_id = await _live(api, fake, syncer)
    async with connector_app.state.db.transaction() as session:
        record = await repository.get_connection(session, connection_id, lock=True)
        assert record is not None
        record.consecutive_failures = 2
        await session.flush()
        assert await repository.poke(session, "app-1", str(MALL), NOW) == 0
        record.consecutive_failures = 0
        await session.flush()
        assert await repository.poke(session, "app-2", str(MALL), NOW) == 0  # another app
        assert await repository.poke(session, "app-1", str(MALL), NOW) == 1


async def test_the_worker_listens_when_message_push_is_on(
    connector_settings: Settings,
    clock: FrozenClock,
    fake: FakePddGateway,
    message_service: FakeMessageService,
) -> None:
    settings = connector_settings.model_copy(
        update={"pdd_messages": True, "pdd_message_url": message_service.url}
    )
    application = create_app(settings, clock=clock, run_worker=True)
    async with application.router.lifespan_context(application):
        worker: Worker = application.state.worker
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=application),
            base_url="http://test",
            headers={"Authorization": f"Bearer {settings.bootstrap_admin_key.get_secret_value()}"}
            if settings.bootstrap_admin_key
            else {},
        ) as client:
            fake.add_store(TOKEN, client_id="app-1", mall_id=str(MALL))
            await _connect(client, mall_id=str(MALL))  # wakes the worker's listener
            await message_service.wait_listening("app-1")
            message_id = await message_service.push("app-1", "pdd_refund_RefundCreated", MALL, {})
            await message_service.wait_ack(message_id)
        assert worker.listener.received == 1


def test_the_message_url_must_be_a_websocket() -> None:
    with pytest.raises(ValueError, match="wss://"):
        Settings(pdd_message_url="https://message-api.pinduoduo.com")


async def test_a_connection_names_its_mall_and_patch_changes_or_forgets_it(
    api: httpx.AsyncClient, fake: FakePddGateway
) -> None:
    fake.add_store(TOKEN, client_id="app-1")
    created = await _connect(api, mall_id="171504183")
    url = f"/v1/connections/{created['id']}"
    assert (await api.patch(url, json={"mall_id": "42"})).json()["mall_id"] == "42"
    assert (await api.patch(url, json={"enabled": True})).json()["mall_id"] == "42"
    assert (await api.patch(url, json={"mall_id": None})).json()["mall_id"] is None
    for bad in ("0", "12a", "1" * 21, "", 5):
        answer = await api.patch(url, json={"mall_id": bad})
        assert answer.status_code == 422, bad
        assert answer.headers["content-type"].startswith("application/problem+json")
        assert "mall_id" in answer.text
    assert (await api.get(url)).json()["mall_id"] is None
