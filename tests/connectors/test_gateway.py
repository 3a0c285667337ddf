"""The gateway client against the fake router on loopback: the form it posts,
paging from the last page back, every error class, throttling with backoff,
the rate limiter, clock skew, and secrets kept out of messages, logs and reprs.

No test sleeps: the gateway's ``sleep`` is a recorder that moves both clocks.
"""

from __future__ import annotations

import logging
import random
import socket
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from app.clock import FrozenClock
from app.connectors.pdd.gateway import (
    InvalidWindow,
    PddApiError,
    PddAuthError,
    PddCredentials,
    PddGateway,
    PddGatewayError,
    PddMalformedAnswer,
    PddNetworkError,
    PddThrottled,
    RateLimiter,
    backoff_delay,
)
from app.connectors.pdd.mapping import map_orders, map_refunds
from app.connectors.pdd.windows import (
    SETTLE_DELAY,
    Window,
    advance_synced_through,
    plan_windows,
    settled_horizon,
    settled_windows,
)
from tests.fakes.pdd_gateway import (
    FakePddGateway,
    FakeStore,
    platform_time,
    populate,
    running_fake_gateway,
)

NOW = datetime(2026, 11, 26, 4, 0, tzinfo=UTC)  # 12:00 in Shanghai
CLIENT_ID = "app-7f3e"
SECRET = "client-secret-9d2b7a61"
TOKEN = "access-token-51c0e4f2"
WINDOW = Window(NOW - timedelta(minutes=33), NOW - timedelta(minutes=3), settled=True)


class Sleeps:
    """An injected ``sleep``: records each wait and moves the given clocks by it."""

    def __init__(self, *clocks: FrozenClock) -> None:
        self.clocks = clocks
        self.delays: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)
        for clock in self.clocks:
            clock.advance(timedelta(seconds=seconds))


@pytest.fixture
def platform_clock() -> FrozenClock:
    return FrozenClock(NOW)


@pytest.fixture
def our_clock() -> FrozenClock:
    return FrozenClock(NOW)


@pytest.fixture
def sleeps(our_clock: FrozenClock, platform_clock: FrozenClock) -> Sleeps:
    return Sleeps(our_clock, platform_clock)


@pytest.fixture
async def fake(platform_clock: FrozenClock) -> AsyncIterator[FakePddGateway]:
    async with running_fake_gateway(platform_clock) as fake:
        fake.add_app(CLIENT_ID, SECRET)
        fake.add_store(TOKEN, client_id=CLIENT_ID, mall_id="m1")
        yield fake


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=5.0, trust_env=False) as client:
        yield client


def make_gateway(
    http: httpx.AsyncClient,
    url: str,
    clock: FrozenClock,
    sleeps: Sleeps,
    *,
    secret: str = SECRET,
    token: str = TOKEN,
    **options: object,
) -> PddGateway:
    return PddGateway(
        http,
        PddCredentials(CLIENT_ID, secret, token),
        clock=clock,
        url=url,
        sleep=sleeps,
        rng=random.Random(7),
        **options,  # type: ignore[arg-type]
    )


@pytest.fixture
def gateway(
    http: httpx.AsyncClient, fake: FakePddGateway, our_clock: FrozenClock, sleeps: Sleeps
) -> PddGateway:
    return make_gateway(http, fake.url, our_clock, sleeps)


def closed_port_url() -> str:
    """A loopback URL where nothing listens: connections are refused at once."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}/api/router"


def store(fake: FakePddGateway) -> FakeStore:
    return fake.stores[TOKEN]


def add_orders(fake: FakePddGateway, n: int, *, start: datetime = WINDOW.start) -> list[str]:
    """``n`` orders updated one second apart from ``start + 1 s``."""
    numbers = []
    for i in range(n):
        at = start + timedelta(seconds=1 + i)
        number = f"261126-{i:06d}"
        store(fake).add_order(number, confirm_time=at, goods_id=5000 + i)
        numbers.append(number)
    return numbers


# --------------------------------------------------------------------------- the calls


async def test_an_order_page_comes_back_as_total_and_records(
    fake: FakePddGateway, gateway: PddGateway
) -> None:
    add_orders(fake, 3)
    total, records, request_id = await gateway.order_increment(WINDOW.start, WINDOW.end, 1)
    assert total == 3
    assert [r["order_sn"] for r in records] == ["261126-000000", "261126-000001", "261126-000002"]
    assert records[0]["item_list"][0]["goods_id"] == 5000
    assert request_id

    (call,) = fake.calls
    assert call.signature_ok and call.outcome == "ok"
    assert call.span_seconds == 1800
    assert {k: call.params[k] for k in ("type", "client_id", "data_type", "version")} == {
        "type": "pdd.order.number.list.increment.get",
        "client_id": CLIENT_ID,
        "data_type": "JSON",
        "version": "V1",
    }
    assert {k: call.params[k] for k in ("is_lucky_flag", "order_status", "refund_status")} == {
        "is_lucky_flag": "0",
        "order_status": "5",
        "refund_status": "5",
    }
    assert call.params["start_updated_at"] == str(WINDOW.start_timestamp)
    assert call.params["end_updated_at"] == str(WINDOW.end_timestamp)
    assert call.params["timestamp"] == str(int(NOW.timestamp()))
    assert (call.params["page"], call.params["page_size"]) == ("1", "100")
    assert SECRET not in call.params.values()


async def test_a_refund_page_asks_for_every_type_and_status(
    fake: FakePddGateway, gateway: PddGateway
) -> None:
    store(fake).add_refund(9001, "261126-1", created_time=WINDOW.start + timedelta(minutes=1))
    store(fake).add_refund(
        9002, "261126-2", after_sales_type=4, created_time=WINDOW.start + timedelta(minutes=2)
    )
    page = await gateway.refund_increment(WINDOW.start, WINDOW.end, 1)
    assert page.total_count == 2
    assert [r["id"] for r in page.records] == [9001, 9002]
    (call,) = fake.calls
    assert call.api == "pdd.refund.list.increment.get"
    assert (call.params["after_sales_status"], call.params["after_sales_type"]) == ("1", "1")
    assert call.signature_ok


async def test_a_window_is_read_from_the_last_page_back_to_the_first(
    fake: FakePddGateway, gateway: PddGateway
) -> None:
    numbers = add_orders(fake, 250)
    read = await gateway.read_orders(WINDOW)
    assert sorted(r["order_sn"] for r in read.records) == numbers
    assert read.stable and read.total_count == 250 and read.calls == 4
    assert [c.page for c in fake.calls] == [1, 3, 2, 1]
    assert all(c.signature_ok and c.span_seconds == 1800 for c in fake.calls)


async def test_a_small_window_takes_one_call(fake: FakePddGateway, gateway: PddGateway) -> None:
    add_orders(fake, 100)
    read = await gateway.read_orders(WINDOW)
    assert len(read.records) == 100 and read.calls == 1


async def test_an_empty_window_takes_one_call(fake: FakePddGateway, gateway: PddGateway) -> None:
    read = await gateway.read_refunds(WINDOW)
    assert read.records == [] and read.total_count == 0 and read.calls == 1


async def test_a_record_updated_while_paging_is_not_lost_reading_backwards(
    fake: FakePddGateway, gateway: PddGateway, platform_clock: FrozenClock
) -> None:
    numbers = add_orders(fake, 250)

    def update_the_tenth_before_page_2(call: object) -> None:
        if getattr(call, "page", None) == 2:
            store(fake).update_order(numbers[10], at=platform_clock.now(), receive_time=NOW)

    fake.on_call = update_the_tenth_before_page_2
    read = await gateway.read_orders(WINDOW)
    # Everything behind the moved order shifted one place towards page 1, onto
    # pages not read yet; the moved order itself was seen by the first look at
    # page 1 and shows up again in the window it moved to.
    assert sorted(r["order_sn"] for r in read.records) == numbers
    fake.on_call = None
    later = await gateway.read_orders(Window(WINDOW.end - timedelta(seconds=1), NOW, settled=False))
    assert [r["order_sn"] for r in later.records] == [numbers[10]]
    assert later.records[0]["receive_time"] == platform_time(NOW)


async def test_reading_forwards_would_lose_the_shifted_record(
    fake: FakePddGateway, gateway: PddGateway, platform_clock: FrozenClock
) -> None:
    """Why the page order matters: the fake reproduces the platform's shift."""
    numbers = add_orders(fake, 250)
    seen: set[str] = set()
    for page in (1, 2, 3):
        if page == 2:
            store(fake).update_order(numbers[10], at=platform_clock.now(), receive_time=NOW)
        answer = await gateway.order_increment(WINDOW.start, WINDOW.end, page)
        seen.update(r["order_sn"] for r in answer.records)
    assert numbers[100] not in seen  # it slid from page 2 onto page 1, already read


async def test_a_window_that_grows_while_paged_is_swept_again(
    fake: FakePddGateway, gateway: PddGateway
) -> None:
    numbers = add_orders(fake, 150)
    grown: list[str] = []

    def add_early_records_once(call: object) -> None:
        if getattr(call, "page", None) == 2 and not grown:
            for i in range(60):  # late-indexed updates near the start of the window
                number = f"late-{i:03d}"
                store(fake).add_order(number, confirm_time=WINDOW.start + timedelta(seconds=1))
                grown.append(number)

    fake.on_call = add_early_records_once
    read = await gateway.read_orders(WINDOW)
    assert read.stable and read.total_count == 210
    assert sorted(r["order_sn"] for r in read.records) == sorted(numbers + grown)
    assert [c.page for c in fake.calls] == [1, 2, 1, 3, 2, 1]


async def test_a_window_that_keeps_growing_is_reported_unstable(
    fake: FakePddGateway, gateway: PddGateway
) -> None:
    add_orders(fake, 150)
    counter = iter(range(10_000))

    def always_one_more(call: object) -> None:
        n = next(counter)
        store(fake).add_order(f"more-{n:05d}", confirm_time=WINDOW.start + timedelta(seconds=1))

    fake.on_call = always_one_more
    read = await gateway.read_orders(WINDOW, max_sweeps=2)
    assert not read.stable


async def test_a_refund_seen_in_several_windows_gives_each_outcome_once(
    fake: FakePddGateway,
    gateway: PddGateway,
    our_clock: FrozenClock,
    platform_clock: FrozenClock,
) -> None:
    created = WINDOW.start + timedelta(minutes=5)
    store(fake).add_refund(9001, "261126-1", created_time=created, after_sales_status=3)
    first = await gateway.read_refunds(WINDOW)
    assert [r["after_sales_status"] for r in first.records] == [3]

    for clock in (our_clock, platform_clock):
        clock.advance(timedelta(hours=1))
    store(fake).update_refund(9001, after_sales_status=10)
    assert (await gateway.read_refunds(WINDOW)).records == []  # it moved on
    later_window = Window(NOW + timedelta(minutes=40), NOW + timedelta(minutes=70), settled=True)
    later = await gateway.read_refunds(later_window)
    assert [r["after_sales_status"] for r in later.records] == [10]

    events = map_refunds("s1", first.records).events + map_refunds("s1", later.records).events
    assert [e["event_id"] for e in events] == [
        "pdd:s1:refund:9001:requested",
        "pdd:s1:refund:9001:requested",
        "pdd:s1:refund:9001:succeeded",
    ]
    assert events[0] == events[1]  # the same content: a duplicate at ingest
    assert events[2]["occurred_at"] == "2026-11-26T13:00:00+08:00"


async def test_a_generated_day_reads_and_maps_whole(
    fake: FakePddGateway, gateway: PddGateway
) -> None:
    orders, refunds = populate(store(fake), until=NOW, days=1, orders_per_day=300, seed=4)
    assert orders == 300 and refunds > 0
    order_numbers: set[str] = set()
    refund_ids: set[str] = set()
    # Every record's update time is within the generated day.
    for window in settled_windows(NOW - timedelta(days=1), NOW + SETTLE_DELAY):
        read_orders = await gateway.read_orders(window)
        read_refunds = await gateway.read_refunds(window)
        mapped_orders = map_orders("s1", read_orders.records)
        mapped_refunds = map_refunds("s1", read_refunds.records)
        assert mapped_orders.malformed == [] and mapped_refunds.malformed == []
        order_numbers.update(e["order_id"] for e in mapped_orders.events)
        refund_ids.update(r["refund_id"] for r in mapped_refunds.events)
        refund_ids.update(s.key for s in mapped_refunds.skipped)
    assert len(order_numbers) == orders
    assert len(refund_ids) == refunds
    assert all(c.outcome == "ok" and c.signature_ok for c in fake.calls)


# --------------------------------------------------------------------------- refused locally


@pytest.mark.parametrize(
    ("start", "end", "page", "page_size", "message"),
    [
        (NOW - timedelta(minutes=30, seconds=1), NOW, 1, 100, "at most"),
        (NOW, NOW, 1, 100, "before"),
        (NOW, NOW - timedelta(minutes=1), 1, 100, "before"),
        (NOW - timedelta(minutes=5), NOW, 0, 100, "from 1"),
        (NOW - timedelta(minutes=5), NOW, 1, 101, "page_size"),
        (datetime(2026, 11, 26, 11), datetime(2026, 11, 26, 12), 1, 100, "aware"),
    ],
)
async def test_calls_the_platform_would_refuse_are_stopped_before_sending(
    fake: FakePddGateway,
    gateway: PddGateway,
    start: datetime,
    end: datetime,
    page: int,
    page_size: int,
    message: str,
) -> None:
    with pytest.raises(InvalidWindow, match=message):
        await gateway.order_increment(start, end, page, page_size)
    assert fake.calls == []


# --------------------------------------------------------------------------- errors


async def test_a_wrong_secret_is_an_auth_failure_with_the_platforms_words(
    http: httpx.AsyncClient, fake: FakePddGateway, our_clock: FrozenClock, sleeps: Sleeps
) -> None:
    gateway = make_gateway(http, fake.url, our_clock, sleeps, secret="not-the-secret-0000")
    with pytest.raises(PddAuthError) as caught:
        await gateway.order_increment(WINDOW.start, WINDOW.end, 1)
    error = caught.value
    assert error.error_code == 20004 and not error.retryable
    assert error.error_msg == "签名验证失败"
    assert error.sub_msg and error.request_id
    assert error.request_id in str(error) and error.error_msg in str(error)
    (call,) = fake.calls  # not retried
    assert call.signature_ok is False and call.error_code == 20004
    assert sleeps.delays == []


async def test_an_unknown_token_is_an_auth_failure(
    http: httpx.AsyncClient, fake: FakePddGateway, our_clock: FrozenClock, sleeps: Sleeps
) -> None:
    gateway = make_gateway(http, fake.url, our_clock, sleeps, token="someone-elses-token")
    with pytest.raises(PddAuthError) as caught:
        await gateway.refund_increment(WINDOW.start, WINDOW.end, 1)
    assert caught.value.error_code == 10019
    assert len(fake.calls) == 1


async def test_an_expired_token_is_an_auth_failure(
    fake: FakePddGateway, gateway: PddGateway
) -> None:
    store(fake).expire_token()
    with pytest.raises(PddAuthError) as caught:
        await gateway.order_increment(WINDOW.start, WINDOW.end, 1)
    assert caught.value.error_code == 10019
    assert caught.value.error_msg == "access_token已过期"


async def test_a_refused_parameter_is_an_api_error_not_retried(
    fake: FakePddGateway, gateway: PddGateway, platform_clock: FrozenClock
) -> None:
    platform_clock.advance(timedelta(minutes=20))  # beyond the fake's timestamp tolerance
    with pytest.raises(PddApiError) as caught:
        await gateway.order_increment(WINDOW.start, WINDOW.end, 1)
    error = caught.value
    assert type(error) is PddApiError and not error.retryable
    assert error.error_code == 10000 and error.sub_msg and "timestamp" in error.sub_msg
    assert len(fake.calls) == 1


@pytest.mark.parametrize(
    ("kind", "request_id"),
    [
        ("not_json", False),
        ("wrong_shape", True),
        ("missing_total_count", True),
        ("bad_list", True),
        ("error_without_code", True),
    ],
)
async def test_a_malformed_answer_is_its_own_error(
    fake: FakePddGateway, gateway: PddGateway, kind: str, request_id: bool
) -> None:
    fake.malform_next(1, kind)  # type: ignore[arg-type]
    with pytest.raises(PddMalformedAnswer) as caught:
        await gateway.order_increment(WINDOW.start, WINDOW.end, 1)
    assert not caught.value.retryable
    assert (caught.value.request_id is not None) is request_id
    if request_id:
        assert str(caught.value.request_id) in str(caught.value)
    assert len(fake.calls) == 1


async def test_a_5xx_without_an_answer_is_retried_like_a_network_error(
    fake: FakePddGateway, gateway: PddGateway, sleeps: Sleeps
) -> None:
    add_orders(fake, 2)
    fake.malform_next(1, "http_502")
    page = await gateway.order_increment(WINDOW.start, WINDOW.end, 1)
    assert page.total_count == 2
    assert [c.outcome for c in fake.calls] == ["malformed", "ok"]
    assert len(sleeps.delays) == 1


async def test_a_network_error_is_retried_then_raised(
    http: httpx.AsyncClient, our_clock: FrozenClock, sleeps: Sleeps
) -> None:
    gateway = make_gateway(http, closed_port_url(), our_clock, sleeps, max_attempts=3)
    with pytest.raises(PddNetworkError) as caught:
        await gateway.order_increment(WINDOW.start, WINDOW.end, 1)
    assert caught.value.retryable
    assert len(sleeps.delays) == 2
    assert caught.value.__cause__ is None and caught.value.__suppress_context__


async def test_throttling_backs_off_and_retries(
    fake: FakePddGateway, gateway: PddGateway, sleeps: Sleeps
) -> None:
    add_orders(fake, 2)
    fake.throttle_next(2, code=52101)
    page = await gateway.order_increment(WINDOW.start, WINDOW.end, 1)
    assert page.total_count == 2
    assert [c.outcome for c in fake.calls] == ["throttled", "throttled", "ok"]
    first, second = sleeps.delays
    assert 0.5 <= first <= 1.0 and 1.0 <= second <= 2.0


@pytest.mark.parametrize("code", [52101, 52102, 52103, 70031])
async def test_persistent_throttling_is_raised_after_the_last_attempt(
    http: httpx.AsyncClient,
    fake: FakePddGateway,
    our_clock: FrozenClock,
    sleeps: Sleeps,
    code: int,
) -> None:
    gateway = make_gateway(http, fake.url, our_clock, sleeps, max_attempts=3)
    fake.throttle_next(5, code=code)
    with pytest.raises(PddThrottled) as caught:
        await gateway.refund_increment(WINDOW.start, WINDOW.end, 1)
    assert caught.value.error_code == code and caught.value.retryable
    assert len(fake.calls) == 3 and len(sleeps.delays) == 2


async def test_a_window_is_read_whole_through_intermittent_throttling(
    fake: FakePddGateway, gateway: PddGateway
) -> None:
    numbers = add_orders(fake, 450)
    fake.throttle_every(3)
    read = await gateway.read_orders(WINDOW)
    assert sorted(r["order_sn"] for r in read.records) == numbers
    assert [c.page for c in fake.calls if c.outcome == "ok"] == [1, 5, 4, 3, 2, 1]


async def test_the_rate_limiter_paces_the_calls_without_a_real_wait(
    http: httpx.AsyncClient, fake: FakePddGateway, our_clock: FrozenClock, sleeps: Sleeps
) -> None:
    limiter = RateLimiter(calls=2, period=timedelta(minutes=1))
    gateway = make_gateway(http, fake.url, our_clock, sleeps, limiter=limiter)
    for _ in range(3):
        await gateway.order_increment(WINDOW.start, WINDOW.end, 1)
    assert sleeps.delays == [60.0]
    assert [c.at - NOW for c in fake.calls] == [timedelta(0), timedelta(0), timedelta(minutes=1)]


# --------------------------------------------------------------------------- clock skew


async def test_the_platforms_clock_is_learnt_and_corrects_the_timestamp(
    fake: FakePddGateway, gateway: PddGateway, platform_clock: FrozenClock
) -> None:
    platform_clock.set(NOW - timedelta(minutes=15))  # our clock runs 15 minutes ahead
    with pytest.raises(PddApiError):
        await gateway.order_increment(WINDOW.start, WINDOW.end, 1)
    assert gateway.clock_offset == timedelta(minutes=-15)
    assert gateway.platform_now() == platform_clock.now()

    page = await gateway.order_increment(
        WINDOW.start - timedelta(minutes=15), WINDOW.end - timedelta(minutes=15), 1
    )
    assert page.total_count == 0
    assert fake.calls[-1].params["timestamp"] == str(int(platform_clock.now().timestamp()))


async def test_windows_planned_on_the_platforms_clock_settle_nothing_it_has_not_finished(
    fake: FakePddGateway,
    gateway: PddGateway,
    our_clock: FrozenClock,
    platform_clock: FrozenClock,
) -> None:
    platform_clock.set(NOW - timedelta(minutes=2))  # within tolerance, but behind us
    await gateway.order_increment(WINDOW.start, WINDOW.end, 1)
    now = gateway.platform_now()
    assert now == platform_clock.now()
    synced = NOW - timedelta(hours=1)
    for window in plan_windows(synced, now):
        synced = advance_synced_through(synced, window, now)
    assert synced == settled_horizon(platform_clock.now())
    assert synced <= platform_clock.now() - SETTLE_DELAY < our_clock.now() - SETTLE_DELAY


# --------------------------------------------------------------------------- secrets


def test_credentials_never_show_their_secrets() -> None:
    credentials = PddCredentials(CLIENT_ID, SECRET, TOKEN)
    for text in (repr(credentials), str(credentials), f"{credentials}", repr([credentials])):
        assert SECRET not in text and TOKEN not in text
        assert CLIENT_ID in text


async def test_no_error_message_or_repr_or_log_line_holds_a_secret(
    http: httpx.AsyncClient,
    fake: FakePddGateway,
    our_clock: FrozenClock,
    sleeps: Sleeps,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="app.connectors")
    errors: list[PddGatewayError] = []
    gateway = make_gateway(http, fake.url, our_clock, sleeps, max_attempts=2)
    bad_secret = make_gateway(http, fake.url, our_clock, sleeps, secret="wrong-secret-x1")
    dead = make_gateway(http, closed_port_url(), our_clock, sleeps, max_attempts=2)
    fake.throttle_next(2)
    for failing in (gateway, bad_secret, dead):  # throttled twice, 20004, refused
        with pytest.raises(PddGatewayError) as caught:
            await failing.order_increment(WINDOW.start, WINDOW.end, 1)
        errors.append(caught.value)
    fake.malform_next(1, "wrong_shape")
    with pytest.raises(PddGatewayError) as malformed:
        await gateway.order_increment(WINDOW.start, WINDOW.end, 1)
    errors.append(malformed.value)
    await gateway.order_increment(WINDOW.start, WINDOW.end, 1)  # a success logs too

    texts = [str(e) for e in errors] + [repr(e) for e in errors] + [repr(gateway)]
    texts += [f"{r.getMessage()} {r.__dict__}" for r in caplog.records]
    assert caplog.records  # the retries were logged
    for text in texts:
        assert SECRET not in text and TOKEN not in text, text


async def test_a_platform_message_echoing_the_token_is_scrubbed(our_clock: FrozenClock) -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            200,
            json={
                "error_response": {
                    "error_code": 10019,
                    "error_msg": f"access_token {TOKEN} 已过期",
                    "sub_code": "isv.token",
                    "sub_msg": f"token={TOKEN} secret={SECRET}",
                    "request_id": "17641296001234",
                }
            },
        )

    async with httpx.AsyncClient(transport=httpx.MockTransport(answer)) as client:
        gateway = PddGateway(
            client, PddCredentials(CLIENT_ID, SECRET, TOKEN), clock=our_clock, url="http://gw/"
        )
        with pytest.raises(PddAuthError) as caught:
            await gateway.order_increment(WINDOW.start, WINDOW.end, 1)
    error = caught.value
    for text in (str(error), repr(error), error.error_msg, error.sub_msg or ""):
        assert TOKEN not in text and SECRET not in text
    assert error.request_id == "17641296001234" and error.sub_code == "isv.token"


# --------------------------------------------------------------------------- pure pacing


def test_the_limiter_allows_the_budget_then_waits_for_the_oldest_call() -> None:
    limiter = RateLimiter(calls=3, period=timedelta(seconds=60))
    assert [limiter.reserve(NOW) for _ in range(3)] == [timedelta(0)] * 3
    assert limiter.reserve(NOW) == timedelta(seconds=60)
    # The 5th call must come a minute after the 2nd (at NOW), and after the 4th.
    assert limiter.reserve(NOW + timedelta(seconds=30)) == timedelta(seconds=30)
    assert limiter.reserve(NOW + timedelta(seconds=200)) == timedelta(0)


def test_the_limiter_keeps_any_minute_within_600_calls() -> None:
    rng = random.Random(3)
    limiter = RateLimiter()
    now = NOW
    slots = []
    for _ in range(3000):
        now += timedelta(milliseconds=rng.randint(0, 150))
        slots.append(now + limiter.reserve(now))
    assert slots == sorted(slots)
    for i in range(len(slots) - 600):
        assert slots[i + 600] - slots[i] >= timedelta(minutes=1)


def test_the_limiter_does_not_double_book_when_the_clock_steps_back() -> None:
    limiter = RateLimiter(calls=1, period=timedelta(seconds=10))
    assert limiter.reserve(NOW) == timedelta(0)
    assert limiter.reserve(NOW - timedelta(seconds=5)) == timedelta(seconds=15)


def test_backoff_grows_with_jitter_and_stops_at_the_cap() -> None:
    rng = random.Random(1)
    for attempt, low, high in [(1, 0.5, 1), (2, 1, 2), (3, 2, 4), (7, 30, 60), (40, 30, 60)]:
        for _ in range(50):
            delay = backoff_delay(attempt, rng=rng).total_seconds()
            assert low <= delay <= high
    assert backoff_delay(3, rng=random.Random(5)) == backoff_delay(3, rng=random.Random(5))
    with pytest.raises(ValueError):
        backoff_delay(0)


REFRESH = "refresh-token-7a0c33e1"


def refresh_gateway(
    http: httpx.AsyncClient, url: str, clock: FrozenClock, sleeps: Sleeps
) -> PddGateway:
    return PddGateway(
        http,
        PddCredentials(CLIENT_ID, SECRET, TOKEN, refresh_token=REFRESH),
        clock=clock,
        url=url,
        sleep=sleeps,
        rng=random.Random(7),
    )


async def test_a_token_refresh_trades_the_refresh_token_for_a_new_pair_and_uses_it(
    fake: FakePddGateway, http: httpx.AsyncClient, our_clock: FrozenClock, sleeps: Sleeps
) -> None:
    shop = store(fake)
    shop.give_refresh_token(REFRESH)
    shop.expire_token()
    gateway = refresh_gateway(http, fake.url, our_clock, sleeps)
    with pytest.raises(PddAuthError) as expired:
        await gateway.read_orders(WINDOW)
    assert expired.value.error_code == 10019 and gateway.can_refresh
    grant = await gateway.refresh_access_token()
    assert grant.access_token == shop.access_token != TOKEN
    assert TOKEN not in fake.stores  # the expired token is retired
    assert grant.refresh_token == shop.refresh_token != REFRESH
    assert grant.expires_at is not None and grant.expires_at > NOW
    assert TOKEN not in repr(grant) and grant.access_token not in repr(grant)
    for i in range(3):
        shop.add_order(f"261126-70000{i}", confirm_time=WINDOW.start + timedelta(seconds=1 + i))
    assert len((await gateway.read_orders(WINDOW)).records) == 3  # on the new token
    # The old refresh token is spent: a second trade of it is refused.
    stale = refresh_gateway(http, fake.url, our_clock, sleeps)
    with pytest.raises(PddAuthError) as refused:
        await stale.refresh_access_token()
    assert refused.value.error_code == 10019 and REFRESH not in str(refused.value)


async def test_a_refresh_answer_without_a_token_is_malformed_and_keeps_the_old_pair(
    http: httpx.AsyncClient, our_clock: FrozenClock, sleeps: Sleeps
) -> None:
    bodies = iter(
        [
            b'{"pop_auth_token_refresh_response": {"expires_in": 86400}}',
            b'{"unexpected": {}}',
        ]
    )
    transport = httpx.MockTransport(lambda _request: httpx.Response(200, content=next(bodies)))
    async with httpx.AsyncClient(transport=transport) as client:
        gateway = refresh_gateway(client, "http://pdd.test/api/router", our_clock, sleeps)
        for _ in range(2):
            with pytest.raises(PddMalformedAnswer):
                await gateway.refresh_access_token()
    assert gateway.can_refresh


def test_credentials_hide_the_refresh_token_in_reprs_and_scrubbed_text() -> None:
    credentials = PddCredentials(CLIENT_ID, SECRET, TOKEN, refresh_token=REFRESH)
    assert REFRESH not in repr(credentials) and REFRESH not in str(credentials)
    assert credentials.scrub(f"refresh_token={REFRESH}&x=1") == "refresh_token=***&x=1"
