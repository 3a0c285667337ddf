"""The console in a real browser (Debian's Chromium through Playwright) against a live server.

Each test signs in through the form, as an operator would, and ends with the loopback guard's
verdict: no request left the machine, none failed, no console or page error. Without Chromium
they skip, saying why.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from fractions import Fraction
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from fastapi import FastAPI

from app.clock import FrozenClock
from app.config import Settings
from app.main import create_app
from tests.conftest import ADMIN_KEY
from tests.console.browser import LiveServer, guarded_context, needs_chromium, serve_in_thread
from tests.console.cluster import cluster_events
from tests.imports import exports

if TYPE_CHECKING:  # Playwright itself is imported only when Chromium is there to drive.
    from playwright.sync_api import Browser, BrowserContext, Page

pytestmark = needs_chromium

STATE_ORDER = {"breached": 0, "approaching": 1}
WORST = ["breached", "approaching", "ok", "unrated"]


class _Refusing(BaseHTTPRequestHandler):
    """A webhook receiver that refuses everything (400: the delivery fails at once)."""

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("content-length", "0")))
        self.send_response(400)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"no")

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def refusing_receiver() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Refusing)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/hook"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def live_app(app_settings: Settings, clock: FrozenClock) -> FastAPI:
    return create_app(app_settings, clock=clock)


@pytest.fixture
def cluster_server(live_app: FastAPI, refusing_receiver: str) -> Iterator[LiveServer]:
    """A live server with six stores of 40 days' history, their alerts, and a webhook whose
    test ping was refused (a failed delivery to retry)."""
    with serve_in_thread(live_app) as server:
        with httpx.Client(
            base_url=server.base_url,
            headers={"Authorization": f"Bearer {ADMIN_KEY}"},
            trust_env=False,
            timeout=60,
        ) as api:
            events = cluster_events(stores=6, days=40, scale=0.4)
            for start in range(0, len(events), 1000):
                answer = api.post("/v1/events", json={"events": events[start : start + 1000]})
                assert answer.status_code == 200 and answer.json()["rejected"] == 0, answer.text
            sub = api.post("/v1/webhooks", json={"url": refusing_receiver, "format": "standard"})
            assert sub.status_code == 201, sub.text
            ping = api.post(f"/v1/webhooks/{sub.json()['id']}/test")
            assert ping.status_code == 200 and ping.json()["delivery"]["status"] == "failed"
        yield server


def expected_order(server: LiveServer) -> list[tuple[str, str]]:
    """Every store with its worst state, worst first, computed from the API's figures."""
    with httpx.Client(
        base_url=server.base_url, headers={"Authorization": f"Bearer {ADMIN_KEY}"}, trust_env=False
    ) as api:
        stores = [
            s["store_id"] for s in api.get("/v1/stores", params={"limit": 500}).json()["items"]
        ]
        lines = []
        for store in stores:
            body = api.get(f"/v1/stores/{store}/metrics").json()
            state = min((t["state"] for t in body["tiers"]), key=WORST.index)
            rate = Fraction(body["quality_refunds"], body["orders"]) if body["orders"] else None
            lines.append((STATE_ORDER.get(state, 2), rate is None, -(rate or 0), store, state))
    return [(line[3], line[4]) for line in sorted(lines)]


def sign_in(page: Page, server: LiveServer, key: str = ADMIN_KEY) -> None:
    page.goto(server.url("/console"))
    page.wait_for_url("**/console/login**")
    page.fill("input[name=api_key]", key)
    page.click("form[action='/console/login'] button[type=submit]")
    page.wait_for_url(server.url("/console"))


def assert_no_key_in_the_browser(context: BrowserContext, page: Page) -> None:
    storage = page.evaluate(
        "() => JSON.stringify([Object.entries(localStorage), Object.entries(sessionStorage)])"
    )
    assert ADMIN_KEY not in storage
    assert all(ADMIN_KEY not in cookie["value"] for cookie in context.cookies())
    assert ADMIN_KEY not in page.url


def test_an_operator_signs_in_reads_the_overview_and_opens_a_breached_store(
    cluster_server: LiveServer, chromium: Browser
) -> None:
    server = cluster_server
    with guarded_context(chromium) as (context, guard):
        page = context.new_page()
        sign_in(page, server)

        (cookie,) = [c for c in context.cookies() if c["name"] == "rw_console"]
        assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
        assert cookie["path"] == "/console" and not cookie["secure"]  # plain http on loopback
        assert_no_key_in_the_browser(context, page)

        rows = page.locator("tr[data-store-id]")
        shown = [
            (rows.nth(i).get_attribute("data-store-id"), rows.nth(i).get_attribute("data-state"))
            for i in range(rows.count())
        ]
        expected = expected_order(server)
        assert shown == expected
        assert expected[0][1] == "breached"

        breached = expected[0][0]
        page.locator(f'tr[data-store-id="{breached}"] th a').click()
        page.wait_for_url(server.url(f"/console/stores/{breached}"))
        chart = page.locator('[data-chart="rate-history"]')
        chart.locator("canvas, svg").first.wait_for()
        box = chart.bounding_box()
        assert box is not None and box["width"] > 300 and box["height"] > 200
        assert chart.get_attribute("data-drawn") == "true"
        assert page.locator("tr[data-refund-id]").count() >= 1  # refunds to turn, listed

        assert_no_key_in_the_browser(context, page)
        guard.assert_clean()
        assert any("/static/vendor/echarts-6.1.0/echarts.min.js" in url for url in guard.requests)


def test_an_admin_silences_and_acknowledges_an_alert(
    cluster_server: LiveServer, chromium: Browser
) -> None:
    server = cluster_server
    with guarded_context(chromium) as (context, guard):
        page = context.new_page()
        sign_in(page, server)
        page.click("nav a[href='/console/alerts']")
        first = (
            page.locator("li.alert-item").filter(has=page.locator("[data-action=silence]")).first
        )
        store = first.get_attribute("data-store-id")
        first.locator("[data-action=silence]").click()
        page.locator(".notice.ok").wait_for()
        assert page.locator("[data-silence-id]").count() == 1
        assert store in page.locator("[data-silence-id]").inner_text()

        item = page.locator("li.alert-item").first
        alert_id = item.get_attribute("data-alert-id")
        item.locator("[data-action=acknowledge]").click()
        page.locator(".notice.ok").wait_for()
        acked = page.locator(f'li[data-alert-id="{alert_id}"] [data-acknowledged]')
        assert acked.count() == 1
        guard.assert_clean()
    with httpx.Client(
        base_url=server.base_url, headers={"Authorization": f"Bearer {ADMIN_KEY}"}, trust_env=False
    ) as api:
        (silence,) = api.get("/v1/silences").json()["items"]
    assert silence["store_id"] == store


def test_an_admin_retries_a_failed_delivery(cluster_server: LiveServer, chromium: Browser) -> None:
    server = cluster_server
    with guarded_context(chromium) as (context, guard):
        page = context.new_page()
        sign_in(page, server)
        page.click("nav a[href='/console/webhooks']")
        failed = page.locator('tr[data-status="failed"]').first
        delivery_id = failed.get_attribute("data-delivery-id")
        assert page.locator('[data-stat="failed"] dd').first.inner_text() == "1"
        failed.locator("summary").click()  # the attempt log
        assert "HTTP 400" in failed.locator(".attempt-log").inner_text()
        failed.locator("[data-action=retry]").click()
        page.locator(".notice.ok").wait_for()
        row = page.locator(f'tr[data-delivery-id="{delivery_id}"]')
        assert row.get_attribute("data-status") == "pending"
        guard.assert_clean()


def test_an_admin_uploads_an_export_and_sees_it_imported(
    cluster_server: LiveServer, chromium: Browser, tmp_path: Path
) -> None:
    server = cluster_server
    path = exports.write_orders_csv(tmp_path / "订单导出.csv", exports.orders(9, 60))
    with guarded_context(chromium) as (context, guard):
        page = context.new_page()
        sign_in(page, server)
        page.click("nav a[href='/console/connections']")
        page.set_input_files("#u-file", str(path))
        page.fill("#u-store", "pdd-upload")
        page.click("form[data-form=upload] button[type=submit]")
        page.locator(".notice.ok").wait_for()
        row = page.locator("tr[data-import-id]").first
        for _ in range(50):
            if row.get_attribute("data-status") == "succeeded":
                break
            page.wait_for_timeout(100)
            page.reload()
            row = page.locator("tr[data-import-id]").first
        assert row.get_attribute("data-status") == "succeeded"
        assert "订单导出.csv" in row.inner_text()
        guard.assert_clean()


@pytest.mark.parametrize("width", [390, 1366])
def test_the_pages_fit_a_phone_and_a_laptop(
    cluster_server: LiveServer, chromium: Browser, width: int
) -> None:
    server = cluster_server
    with guarded_context(chromium) as (context, guard):
        page = context.new_page()
        page.set_viewport_size({"width": width, "height": 768 if width > 1000 else 844})
        sign_in(page, server)
        store = page.locator("tr[data-store-id]").first.get_attribute("data-store-id")
        for path in [
            "/console",
            f"/console/stores/{store}",
            "/console/alerts",
            "/console/webhooks",
            "/console/connections",
        ]:
            page.goto(server.url(path))
            overflow = page.evaluate("() => document.documentElement.scrollWidth")
            assert overflow <= width, (path, overflow)
        guard.assert_clean()


def test_the_overview_works_from_the_keyboard(
    cluster_server: LiveServer, chromium: Browser
) -> None:
    server = cluster_server
    with guarded_context(chromium) as (context, guard):
        page = context.new_page()
        sign_in(page, server)
        first = page.locator("tr[data-store-id]").first.get_attribute("data-store-id")
        page.keyboard.press("Tab")
        assert page.evaluate("() => document.activeElement.className") == "skip"
        for _ in range(40):
            page.keyboard.press("Tab")
            href = page.evaluate("() => document.activeElement.getAttribute('href')")
            if href == f"/console/stores/{first}":
                break
        else:
            pytest.fail("no Tab reached the first store's link")
        page.keyboard.press("Enter")
        page.wait_for_url(server.url(f"/console/stores/{first}"))
        guard.assert_clean()
