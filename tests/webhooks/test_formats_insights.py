"""Robot messages carry when a breach clears by itself and which way the rate moves."""

from __future__ import annotations

import json
from typing import Any

from app.webhooks import formats

ALERT: dict[str, Any] = {
    "type": "alert.breached",
    "store_id": "s1",
    "product_id": None,
    "tier": "demotion",
    "state": "breached",
    "previous_state": "approaching",
    "figures": {"orders": 400, "quality_refunds": 6, "quality_refund_rate": "0.015000"},
    "rate_threshold": "0.01",
    "min_count": 5,
    "refunds_until_breach": 0,
    "orders_to_recover": 201,
    "count_clears_on": "2026-12-08",
    "trend": "rising",
}


def test_a_breached_alert_says_when_it_falls_back_under_the_line() -> None:
    for name in ("dingtalk", "wecom", "feishu"):
        body = json.dumps(json.loads(formats.render_robot(name, [ALERT])), ensure_ascii=False)
        assert "无新增品质退款时，将于 12月8日 回落到线下" in body, name
        assert "上升（与 7 天前相比）" in body, name


def test_without_those_facts_no_line_is_added() -> None:
    quiet = {**ALERT, "count_clears_on": None, "trend": None}
    body = json.dumps(json.loads(formats.render_robot("wecom", [quiet])), ensure_ascii=False)
    assert "回落" not in body and "趋势" not in body


def test_a_digest_names_the_day_too() -> None:
    other = {**ALERT, "store_id": "s2", "count_clears_on": "2026-12-10"}
    body = json.dumps(
        json.loads(formats.render_robot("dingtalk", [ALERT, other])), ensure_ascii=False
    )
    assert "12月8日" in body and "12月10日" in body
