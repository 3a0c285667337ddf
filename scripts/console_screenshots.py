"""Screenshots of the console for docs/console.md, taken in headless Chromium.

    .venv/bin/python scripts/console_screenshots.py [--out docs/console]

It builds a throw-away SQLite database with the test suite's store cluster
(``tests/console/cluster.py``: twelve stores, 120 days of orders and refunds, posted through
``POST /v1/events``), two webhooks (one receiver that answers 200, one that answers 503 until
its deliveries fail), an import of a generated merchant-backend export, and one connection,
then serves the app on 127.0.0.1 and photographs each page at 1366×768 and two at 390 px.
The connection's status is set by hand (no marketplace is reachable from here). Needs
Chromium at /usr/bin/chromium and the dev dependencies (Playwright).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
from datetime import timedelta
from pathlib import Path

import httpx
from sqlalchemy import select

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from app.alerts.models import Alert  # noqa: E402
from app.clock import FrozenClock  # noqa: E402
from app.config import Settings  # noqa: E402
from app.connectors.models import Connection  # noqa: E402
from app.console import service as console_service  # noqa: E402
from app.console.service import Operator  # noqa: E402
from app.db.migrate import upgrade_to_head  # noqa: E402
from app.main import create_app  # noqa: E402
from app.webhooks.relay import Relay  # noqa: E402
from tests.conftest import ADMIN_KEY, NOW  # noqa: E402
from tests.console.browser import CHROMIUM, CHROMIUM_ARGS, serve_in_thread  # noqa: E402
from tests.console.cluster import load_cluster  # noqa: E402
from tests.fakes.receiver import Reply, running_receiver  # noqa: E402
from tests.imports.exports import aftersales, orders, write_aftersales_csv, write_orders_csv  # noqa: E402

WIDE = {"width": 1366, "height": 768}
PHONE = {"width": 390, "height": 844}


async def build(app: object, settings: Settings, clock: FrozenClock, work: Path) -> None:
    """Load the data through the API while the app's lifespan runs in this loop."""
    fastapi_app = app  # typed loosely: this is a script
    async with fastapi_app.router.lifespan_context(fastapi_app):  # type: ignore[attr-defined]
        transport = httpx.ASGITransport(app=fastapi_app)  # type: ignore[arg-type]
        async with (
            httpx.AsyncClient(
                transport=transport,
                base_url="http://console.local",
                headers={"Authorization": f"Bearer {ADMIN_KEY}"},
                timeout=120,
            ) as api,
            running_receiver() as good,
            running_receiver() as bad,
        ):
            bad.default = Reply(503, {}, b"busy")
            for url, description in ((good.url, "运营群"), (bad.url, "ERP 回调")):
                response = await api.post(
                    "/v1/webhooks",
                    json={"url": url, "format": "standard", "description": description},
                )
                assert response.status_code == 201, response.text
            await load_cluster(api)

            # What the merchant backend showed on some days: a little above our figure, as
            # when the platform counts a withdrawn application too.
            history = (
                await api.get(
                    "/v1/stores/pdd-home-01/metrics/history",
                    params={"from": "2026-10-28", "to": "2026-11-25"},
                )
            ).json()["points"]
            for point in history[::4]:
                if point["orders"]:
                    theirs = (point["quality_refunds"] + 3) / point["orders"]
                    response = await api.put(
                        f"/v1/stores/pdd-home-01/platform-figures/{point['day']}",
                        json={
                            "quality_refund_rate": f"{theirs:.4f}",
                            "quality_refunds": point["quality_refunds"] + 3,
                            "orders": point["orders"],
                        },
                    )
                    assert response.status_code == 200, response.text

            records = orders(31, 400)
            orders_file = write_orders_csv(work / "订单导出.csv", records)
            after_file = write_aftersales_csv(
                work / "售后导出.csv", aftersales(31, 40, source=records)
            )
            for path in (orders_file, after_file):
                with path.open("rb") as handle:
                    response = await api.post(
                        "/v1/imports",
                        data={"store_id": "pdd-new-13"},
                        files={"file": (path.name, handle, "text/csv")},
                    )
                assert response.status_code == 202, response.text
                await fastapi_app.state.imports.wait()  # type: ignore[attr-defined]
            response = await api.patch("/v1/stores/pdd-new-13", json={"name": "新开小店"})
            assert response.status_code == 200, response.text

            response = await api.post(
                "/v1/connections",
                json={
                    "platform": "pdd",
                    "store_id": "pdd-home-01",
                    "client_id": "8a1b2c3d4e5f",
                    "client_secret": "app-secret",
                    "access_token": "store-token",
                },
            )
            assert response.status_code == 201, response.text
            response = await api.post(
                "/v1/connections",
                json={
                    "platform": "pdd",
                    "store_id": "pdd-kids-02",
                    "client_id": "8a1b2c3d4e5f",
                    "client_secret": "app-secret",
                    "access_token": "store-token-2",
                },
            )
            assert response.status_code == 201, response.text

            # The deliveries: the good receiver takes them at once, the bad one answers 503
            # at every attempt until the schedule gives up (about 38 hours later).
            relay = Relay(fastapi_app.state.db, settings, clock)  # type: ignore[attr-defined]
            for step in (0, 6, 300, 1800, 7200, 18000, 36000, 36000, 36000):
                clock.advance(timedelta(seconds=step))
                while await relay.run_once():
                    pass

        db = fastapi_app.state.db  # type: ignore[attr-defined]
        async with db.transaction() as session:
            failing, live = (
                await session.scalars(select(Connection).order_by(Connection.id))
            ).all()
            live.status = "live"
            live.synced_through = clock.now() - timedelta(minutes=4)
            live.events_accepted, live.calls, live.windows = 31_842, 1_266, 2_112
            failing.status = "failing"
            failing.synced_through = clock.now() - timedelta(hours=7)
            failing.last_error_code = "10019"
            failing.last_error_message = "access_token已过期"
            failing.last_error_at = clock.now() - timedelta(hours=6, minutes=50)
            failing.events_accepted, failing.calls, failing.windows = 28_410, 1_040, 1_731
            alert_ids = (
                await session.scalars(select(Alert.alert_id).order_by(Alert.id).limit(2))
            ).all()
            operator = Operator(0, None, "值班运营", frozenset({"admin"}), "", clock.now())
            for alert_id in alert_ids:
                await console_service.acknowledge_alert(session, alert_id, operator, clock.now())


def shoot(base_url: str, out: Path) -> None:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            for language in ("en", "zh"):
                context = browser.new_context(
                    viewport=WIDE, locale="en-US" if language == "en" else "zh-CN"
                )
                page = context.new_page()
                page.goto(f"{base_url}/console/language/{language}?next=/console/login")
                if language == "zh":
                    page.screenshot(path=str(out / "login.png"))
                page.fill("#api_key", ADMIN_KEY)
                page.click("button[type=submit]")
                page.wait_for_url(f"{base_url}/console")
                page.screenshot(path=str(out / f"overview-{language}.png"), full_page=True)
                if language == "en":
                    page.goto(f"{base_url}/console/stores/pdd-home-01")
                    page.wait_for_selector('[data-chart="rate-history"][data-drawn="true"]')
                    page.screenshot(path=str(out / "store.png"), full_page=True)
                    for name, path in (
                        ("alerts", "/console/alerts"),
                        ("webhooks", "/console/webhooks"),
                        ("connections", "/console/connections"),
                    ):
                        page.goto(f"{base_url}{path}")
                        page.screenshot(path=str(out / f"{name}.png"), full_page=True)
                cookies = context.cookies()
                context.close()

                phone = browser.new_context(
                    viewport=PHONE,
                    device_scale_factor=2,
                    is_mobile=True,
                    has_touch=True,
                    locale="en-US" if language == "en" else "zh-CN",
                )
                phone.add_cookies(cookies)  # type: ignore[arg-type]
                mobile = phone.new_page()
                if language == "zh":
                    mobile.goto(f"{base_url}/console")
                    mobile.screenshot(path=str(out / "phone-overview.png"))
                else:
                    mobile.goto(f"{base_url}/console/stores/pdd-home-01")
                    mobile.wait_for_selector('[data-chart="rate-history"][data-drawn="true"]')
                    mobile.locator("#tiers-title").scroll_into_view_if_needed()
                    mobile.evaluate("document.getElementById('tiers-title').scrollIntoView()")
                    mobile.screenshot(path=str(out / "phone-store.png"))
                phone.close()
        finally:
            browser.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "console")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        url = f"sqlite:///{work}/console.db"
        upgrade_to_head(url)
        settings = Settings(
            environment="test",
            database_url=url,
            data_dir=work,
            bootstrap_admin_key=ADMIN_KEY,  # type: ignore[arg-type]
            webhook_allowed_networks="127.0.0.0/8",
        )
        clock = FrozenClock(NOW)
        app = create_app(settings, clock=clock)
        asyncio.run(build(app, settings, clock, work))
        with serve_in_thread(app) as server:
            shoot(server.base_url, args.out)
    for png in sorted(args.out.glob("*.png")):
        print(png)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
