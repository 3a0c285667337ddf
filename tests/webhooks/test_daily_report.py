"""The daily report (日报): once a day per subscription, through the outbox, never twice."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta
from typing import Any

import httpx
from fastapi import FastAPI

from app.clock import FrozenClock
from app.webhooks import formats
from app.webhooks.relay import Relay
from app.worker.jobs import send_daily_reports
from tests.fakes.receiver import Receiver
from tests.support import build_store, subscribe, verify_standard


async def _reports(receiver: Receiver) -> list[dict[str, Any]]:
    return [r.json() for r in receiver.requests if r.json()["type"] == "report.daily"]


async def test_a_report_goes_out_once_a_day_at_its_time_with_every_store(
    app: FastAPI,
    client: httpx.AsyncClient,
    clock: FrozenClock,
    receiver: Receiver,
    relay: Relay,
) -> None:
    await build_store(client, "s1", 400, 5, products=2)  # breached
    await build_store(client, "s2", 400, 1)  # fine
    hook = await subscribe(client, receiver.url, daily_report_at="13:00")
    assert hook["daily_report_at"] == "13:00" and hook["timezone"] == "Asia/Shanghai"
    db = app.state.db

    # 12:00 in Shanghai: not yet.
    assert await send_daily_reports(db, clock.now()) == 0
    clock.advance(timedelta(hours=1))
    assert await send_daily_reports(db, clock.now()) == 1
    assert await send_daily_reports(db, clock.now()) == 0  # once a day
    await relay.run_once()
    (report,) = await _reports(receiver)
    verify_standard(hook["secret"], receiver.requests[-1], clock.now())
    data = report["data"]
    assert data["date"] == "2026-11-26"
    assert [s["store_id"] for s in data["stores"]] == ["s1", "s2"]  # worst first
    s1 = data["stores"][0]
    assert s1["worst_state"] == "breached"
    assert s1["figures"]["quality_refunds"] == 5
    assert data["summary"] == {"stores": 2, "breached": 1, "approaching": 0}

    # The next day, with two more quality refunds: the change since the last report.
    clock.advance(timedelta(days=1))
    posted = await client.post(
        "/v1/events",
        json={
            "events": [
                {
                    "event_id": f"late-{i}",
                    "type": "refund.requested",
                    "store_id": "s1",
                    "occurred_at": "2026-11-27T10:00:00+08:00",
                    "refund_id": f"late-{i}",
                    "order_id": f"o{100 + i}",
                    "kind": "refund_only",
                    "reason": "quality_issue",
                }
                for i in range(2)
            ]
        },
    )
    assert posted.json()["accepted"] == 2
    assert await send_daily_reports(db, clock.now()) == 1
    await relay.run_once()
    latest = (await _reports(receiver))[-1]["data"]
    assert latest["date"] == "2026-11-27" and latest["previous_date"] == "2026-11-26"
    assert latest["stores"][0]["change"]["quality_refunds"] == 2


async def test_days_missed_while_no_worker_ran_are_sent_and_none_twice(
    app: FastAPI, client: httpx.AsyncClient, clock: FrozenClock, receiver: Receiver, relay: Relay
) -> None:
    await build_store(client, "s1", 100, 1)
    await subscribe(client, receiver.url, daily_report_at="09:00", store_ids=["s1"])
    db = app.state.db
    assert await send_daily_reports(db, clock.now()) == 1  # today, 11-26
    clock.advance(timedelta(days=3))
    # Two replicas (or a restart) at the same moment: the days are sent once.
    sent = await asyncio.gather(*(send_daily_reports(db, clock.now()) for _ in range(2)))
    assert sum(sent) == 3
    while await relay.run_once():
        pass
    dates = [r["data"]["date"] for r in await _reports(receiver)]
    assert dates == ["2026-11-26", "2026-11-27", "2026-11-28", "2026-11-29"]


async def test_a_robot_report_fits_its_limit_and_says_what_it_left_out() -> None:
    stores = [
        {
            "store_id": f"店铺-{i:03d}",
            "store_name": "旗舰店" * 5,
            "worst_state": "breached" if i % 3 == 0 else "ok",
            "figures": {"quality_refunds": i, "orders": 400, "quality_refund_rate": "0.012500"},
            "change": {"quality_refunds": 1, "orders": 3, "quality_refund_rate": "+0.000100"},
            "products_at_risk": [
                {
                    "product_id": f"商品{i}",
                    "quality_refunds": 3,
                    "state": "breached",
                    "tier": "delisting",
                }
            ],
        }
        for i in range(200)
    ]
    data = {"date": "2026-11-26", "summary": {"stores": 200, "breached": 67}, "stores": stores}
    for name, limit, key in (
        ("wecom", formats.WECOM_MAX_CONTENT_BYTES, ("markdown", "content")),
        ("dingtalk", formats.DINGTALK_MAX_TEXT_BYTES, ("markdown", "text")),
        ("feishu", formats.FEISHU_MAX_CONTENT_BYTES, ("card", "elements")),
    ):
        body = json.loads(formats.render_notice(name, "report.daily", data))
        text = body[key[0]][key[1]]
        if name == "feishu":
            text = text[0]["content"]
        assert len(text.encode("utf-8")) <= limit, name
        assert "品质退款日报 2026-11-26" in json.dumps(body, ensure_ascii=False)
        assert "refundwatch" in text and "另有" in text  # the rest is counted, not dropped
        text.encode("utf-8").decode("utf-8")  # never cut mid-character
