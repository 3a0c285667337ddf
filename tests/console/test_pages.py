"""The console's pages over HTTP: what the overview and the store page show, in which order,
with which markers, in which language, and how many statements they cost."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import event

from app.console.i18n import MESSAGES, negotiate
from app.console.rendering import TEMPLATES_DIR
from app.console.static import ECHARTS
from tests.console.helpers import chart_data, signed_in, store_rows
from tests.support import (
    build_store,
    metrics,
    orders,
    paid,
    post_events,
    quality_refunds,
    refund_event,
    requested,
)

# (store, orders, quality refunds) and the worst state each must show, in the order the
# overview must list them: breached, approaching, the rest; each group by rate, highest first.
STORES = [
    ("b-high", 100, 6, "breached"),  # 6.00 %: demotion breached
    ("b-low", 400, 5, "breached"),  # 1.25 %
    ("a-near", 500, 4, "approaching"),  # 0.80 %: one more refund breaches demotion
    ("o-mid", 100, 1, "ok"),  # 1.00 % but a single refund
    ("o-low", 800, 2, "ok"),  # 0.25 %
]


async def build_stores(client: httpx.AsyncClient) -> None:
    for store, n_orders, n_quality, _state in reversed(STORES):  # not already in order
        await build_store(client, store, n_orders, n_quality)
    # Refunds whose orders were paid before any window: no orders, so no rate (listed last).
    answer = await post_events(
        client, [requested(f"z-r{i}", f"z-o{i}", store="z-none") for i in range(2)]
    )
    assert answer["accepted"] == 2


@contextmanager
def counted_statements(app: FastAPI) -> Iterator[list[str]]:
    """Every SQL statement the app's engine sends while the block runs."""
    seen: list[str] = []
    engine = app.state.db.engine.sync_engine

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        seen.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", record)


def queries_only(statements: list[str]) -> list[str]:
    """The statements that read or write rows (not BEGIN/COMMIT/pragmas)."""
    return [
        s
        for s in statements
        if s.lstrip().upper().startswith(("SELECT", "INSERT", "UPDATE", "DELETE", "WITH"))
    ]


# --------------------------------------------------------------------------- overview


async def test_the_overview_lists_every_store_worst_first_with_its_worst_state(
    console: httpx.AsyncClient, client: httpx.AsyncClient
) -> None:
    await build_stores(client)
    await signed_in(console)
    rows = store_rows((await console.get("/console")).text)
    assert rows == [(store, state) for store, _o, _q, state in STORES] + [("z-none", "ok")]
    for store, state in rows:  # the marker is the worst state the API gives the store
        tiers = (await metrics(client, store))["tiers"]
        order = ["breached", "approaching", "ok", "unrated"]
        assert state == min((t["state"] for t in tiers), key=order.index)


async def test_each_row_shows_the_rate_as_a_percentage_with_its_counts_and_headroom(
    console: httpx.AsyncClient, client: httpx.AsyncClient
) -> None:
    await build_stores(client)
    await signed_in(console)
    html = (await console.get("/console")).text
    row = re.search(r'<tr data-store-id="b-low".*?</tr>', html, re.S)
    assert row is not None
    text = row.group(0)
    assert "1.25%" in text and "5 / 400" in text
    # demotion breached: 5 / (400 + m) < 1 % needs m ≥ 101 more clean orders
    assert "再 101 单无退款订单可回到线下" in text
    near = re.search(r'<tr data-store-id="a-near".*?</tr>', html, re.S)
    assert near is not None and "再 1 单品质退款即超线" in near.group(0)
    assert '<svg class="spark"' in text  # the 30-day sparkline, drawn by the server


async def test_the_overview_filters_by_state_and_finds_a_store(
    console: httpx.AsyncClient, client: httpx.AsyncClient
) -> None:
    await build_stores(client)
    await signed_in(console)
    breached = store_rows((await console.get("/console?state=breached")).text)
    assert breached == [("b-high", "breached"), ("b-low", "breached")]
    found = store_rows((await console.get("/console?q=near")).text)
    assert found == [("a-near", "approaching")]
    nothing = (await console.get("/console?state=unrated")).text
    assert store_rows(nothing) == [] and 'href="/console"' in nothing


async def test_with_no_store_the_overview_says_what_to_do_next(console: httpx.AsyncClient) -> None:
    await signed_in(console)
    html = (await console.get("/console")).text
    assert "refundwatch import" in html
    assert "POST /v1/connections" in html
    assert "refundwatch demo" in html
    assert store_rows(html) == []


async def test_the_overview_costs_the_same_statements_for_2_stores_or_40(
    app: FastAPI, console: httpx.AsyncClient, client: httpx.AsyncClient
) -> None:
    await signed_in(console)
    await post_events(client, orders("s0", 20) + quality_refunds("s0", range(3)))
    await post_events(client, orders("s1", 20) + quality_refunds("s1", range(1)))
    with counted_statements(app) as few:
        assert (await console.get("/console")).status_code == 200
    for n in range(2, 40):
        await post_events(client, orders(f"s{n}", 5) + quality_refunds(f"s{n}", range(n % 3)))
    with counted_statements(app) as many:
        html = (await console.get("/console")).text
    assert len(store_rows(html)) == 40
    assert len(queries_only(many)) == len(queries_only(few))
    # the session, the stores with their policies, their daily rows, products at risk
    assert len(queries_only(many)) <= 4, queries_only(many)


# --------------------------------------------------------------------------- languages


async def test_the_language_follows_the_browser_then_the_switch(
    console: httpx.AsyncClient, client: httpx.AsyncClient
) -> None:
    await build_stores(client)
    await signed_in(console)
    english = await console.get("/console", headers={"Accept-Language": "en-US,en;q=0.9"})
    assert '<html lang="en">' in english.text and ">Breached<" in english.text
    chinese = await console.get("/console", headers={"Accept-Language": "zh-CN,zh;q=0.9"})
    assert '<html lang="zh-CN">' in chinese.text and ">已超线<" in chinese.text

    switched = await console.get("/console/language/en", params={"next": "/console?state=ok"})
    assert switched.status_code == 303 and switched.headers["location"] == "/console?state=ok"
    again = await console.get("/console", headers={"Accept-Language": "zh-CN"})
    assert '<html lang="en">' in again.text
    elsewhere = await console.get("/console/language/zh", params={"next": "https://evil.example"})
    assert elsewhere.headers["location"] == "/console"


@pytest.mark.parametrize(
    ("cookie", "header", "language"),
    [
        (None, None, "zh"),
        (None, "en-GB,en;q=0.8", "en"),
        (None, "fr-FR, en;q=0.5, zh;q=0.7", "zh"),
        (None, "de, fr", "zh"),
        (None, "zh;q=0, en", "en"),
        ("en", "zh-CN", "en"),
        ("xx", "en", "en"),
    ],
)
def test_a_request_gets_the_language_it_asks_for(
    cookie: str | None, header: str | None, language: str
) -> None:
    assert negotiate(cookie, header) == language


def test_every_text_the_templates_use_exists_in_both_languages() -> None:
    used: set[str] = set()
    for template in Path(TEMPLATES_DIR).glob("*.html"):
        used |= set(re.findall(r"""\bt\(\s*["']([a-z0-9_.]+)["']""", template.read_text()))
    # A key ending in "." is a prefix the template completes (t("state." ~ state)).
    missing = sorted(
        key
        for key in used
        if (
            key not in MESSAGES
            if not key.endswith(".")
            else not any(k.startswith(key) for k in MESSAGES)
        )
    )
    assert missing == []
    for key, (english, chinese) in MESSAGES.items():
        assert english.strip() and chinese.strip(), key


# --------------------------------------------------------------------------- store page


async def test_the_store_page_embeds_90_days_of_the_rolling_window_and_every_line(
    console: httpx.AsyncClient, client: httpx.AsyncClient
) -> None:
    await build_stores(client)
    await signed_in(console)
    html = (await console.get("/console/stores/b-low")).text
    assert 'data-chart="rate-history"' in html
    assert f'src="/static/{ECHARTS.path("echarts.min.js")}"' in html
    data = chart_data(html)
    assert len(data["days"]) == len(data["rate"]) == len(data["count"]) == 90
    today = (await metrics(client, "b-low"))["as_of"]
    assert data["days"][-1] == today
    assert (data["count"][-1], data["orders"][-1], data["rate"][-1]) == (5, 400, 1.25)
    assert [(line["tier"], line["rate"], line["min_count"]) for line in data["lines"]] == [
        ("demotion", 1.0, 5),
        ("listing_ban", 2.0, 10),
    ]
    assert "fetch(" not in html  # the data is in the page; nothing is fetched with a key


async def test_the_store_page_lists_the_refunds_that_can_still_be_turned_oldest_first(
    console: httpx.AsyncClient, client: httpx.AsyncClient
) -> None:
    events = [paid(f"o{i}", product=f"p{i % 2}") for i in range(4)]
    events += [
        requested("r-late", "o0", at="2026-11-25T16:00:00+08:00", product_id="p0"),
        requested("r-early", "o1", at="2026-11-24T09:30:00+08:00", product_id="p1"),
        requested("r-gone", "o2", at="2026-11-23T10:00:00+08:00"),
        refund_event("withdrawn", "r-gone", at="2026-11-24T10:00:00+08:00"),
        requested("r-paid", "o3", at="2026-11-23T11:00:00+08:00"),
        refund_event("succeeded", "r-paid", at="2026-11-24T11:00:00+08:00"),
    ]
    await post_events(client, events)
    await signed_in(console)
    html = (await console.get("/console/stores/s1")).text
    pending = re.findall(r'<tr data-refund-id="([^"]+)">(.*?)</tr>', html, re.S)
    assert [refund_id for refund_id, _ in pending] == ["r-early", "r-late"]
    early = pending[0][1]
    assert "2026-11-24 09:30" in early and ">o1<" in early and ">p1<" in early


async def test_times_are_shown_in_the_store_time_zone(
    console: httpx.AsyncClient, client: httpx.AsyncClient
) -> None:
    await post_events(client, [paid("o1"), requested("r1", "o1", at="2026-11-25T12:00:00+08:00")])
    response = await client.patch("/v1/stores/s1", json={"timezone": "Europe/Berlin"})
    assert response.status_code == 200, response.text
    await signed_in(console)
    html = (await console.get("/console/stores/s1")).text
    at = datetime(2026, 11, 25, 4, 0, tzinfo=ZoneInfo("UTC"))
    assert (
        f'<time datetime="{at.isoformat()}" title="Europe/Berlin (UTC+01:00)">2026-11-25 05:00</time>'
        in html
    )


async def test_the_products_are_listed_worst_first(
    console: httpx.AsyncClient, client: httpx.AsyncClient
) -> None:
    events = [paid(f"o{i}", product="calm" if i < 100 else "hot") for i in range(200)]
    events += [requested(f"r{i}", f"o{i}") for i in (100, 101, 102, 103, 104, 105, 0)]
    await post_events(client, events)
    await signed_in(console)
    html = (await console.get("/console/stores/s1")).text
    products = re.findall(r'<tr data-product-id="([^"]+)" data-state="([^"]+)"', html)
    assert products == [("hot", "breached"), ("calm", "ok")]


async def test_the_platforms_own_figures_stand_beside_ours_with_the_drift(
    console: httpx.AsyncClient, client: httpx.AsyncClient
) -> None:
    await build_store(client, "s1", 400, 5)
    response = await client.put(
        "/v1/stores/s1/platform-figures/2026-11-26",
        json={"quality_refund_rate": "0.0100", "quality_refunds": 4, "orders": 400},
    )
    assert response.status_code == 200, response.text
    await signed_in(console)
    html = (await console.get("/console/stores/s1")).text
    row = re.search(r'<tr data-day="2026-11-26">(.*?)</tr>', html, re.S)
    assert row is not None
    text = row.group(1)
    assert "1.00%" in text and "4 / 400" in text  # theirs
    assert "1.25%" in text and "5 / 400" in text  # ours
    assert "+0.25 pt" in text and "+1 / ±0" in text  # ours − theirs
    assert ["2026-11-26", 1.0] in chart_data(html)["platform"]


async def test_the_skus_of_a_product_at_risk_are_listed_worst_first(
    console: httpx.AsyncClient, client: httpx.AsyncClient
) -> None:
    events = [
        paid(f"o{i}", product="hot", sku_id="hot-red" if i < 10 else "hot-blue") for i in range(100)
    ]
    events += [requested(f"r{i}", f"o{i}") for i in (0, 1, 2, 3, 4, 50)]
    await post_events(client, events)
    await signed_in(console)
    html = (await console.get("/console/stores/s1")).text
    group = re.search(r'<div class="card sku-group" data-product-id="hot">(.*?)</div>', html, re.S)
    assert group is not None
    assert re.findall(r'<tr data-sku-id="([^"]+)">', group.group(1)) == ["hot-red", "hot-blue"]
    assert "5 / 10" in group.group(1)


async def test_the_breakdowns_split_the_window_by_courier_hours_reason_and_kind(
    console: httpx.AsyncClient, client: httpx.AsyncClient
) -> None:
    shipped = [
        {
            "event_id": f"ship-{i}",
            "type": "order.shipped",
            "store_id": "s1",
            "occurred_at": "2026-11-25T20:00:00+08:00",  # 10 hours after paid
            "order_id": f"o{i}",
            "courier": "中通快递" if i % 2 else "顺丰速运",
        }
        for i in range(10)
    ]
    events = [paid(f"o{i}") for i in range(10)] + shipped
    events += [requested("r1", "o1", kind="return_refund"), requested("r3", "o3")]
    await post_events(client, events)
    await signed_in(console)
    html = (await console.get("/console/stores/s1", headers={"Accept-Language": "en"})).text
    for by in ("courier", "ship_hours", "reason", "kind"):
        assert f'data-breakdown="{by}"' in html
    courier = re.search(r'data-breakdown="courier">(.*?)</table>', html, re.S)
    assert courier is not None
    keys = re.findall(r'<tr data-key="([^"]*)">', courier.group(1))
    assert keys == ["中通快递", "顺丰速运"]  # the two refunds are on 中通's orders
    assert "2 / 5" in courier.group(1)
    hours = re.search(r'data-breakdown="ship_hours">(.*?)</table>', html, re.S)
    assert hours is not None and re.findall(r'<tr data-key="([^"]*)">', hours.group(1)) == ["0-24"]


async def test_an_unknown_store_is_a_page_not_a_json_error(console: httpx.AsyncClient) -> None:
    await signed_in(console)
    response = await console.get("/console/stores/nope")
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("text/html")
    assert "nope" in response.text
    unknown = await console.get("/console/no/such/page")
    assert unknown.status_code == 404 and unknown.headers["content-type"].startswith("text/html")


async def test_the_store_page_costs_a_fixed_number_of_statements(
    app: FastAPI, console: httpx.AsyncClient, client: httpx.AsyncClient
) -> None:
    await signed_in(console)
    await post_events(client, orders("s1", 10, products=2) + quality_refunds("s1", range(2)))
    with counted_statements(app) as few:
        await console.get("/console/stores/s1")
    await post_events(
        client, orders("s1", 300, start=10, products=60) + quality_refunds("s1", range(10, 60))
    )
    with counted_statements(app) as many:
        await console.get("/console/stores/s1")
    assert len(queries_only(many)) == len(queries_only(few))
