"""Rendering of alerts: the standard JSON envelope and the Chinese group-robot messages."""

from __future__ import annotations

import copy
import json
import re
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.webhooks import formats
from app.webhooks.signing import feishu_sign

OCCURRED = datetime(2026, 11, 26, 6, 3, 0, tzinfo=UTC)  # 14:03 in Shanghai


def make_alert(**overrides: Any) -> dict[str, Any]:
    alert: dict[str, Any] = {
        "alert_id": "alr_01",
        "type": "alert.breached",
        "store_id": "s1",
        "product_id": None,
        "tier": "demotion",
        "state": "breached",
        "previous_state": "approaching",
        "figures": {
            "orders": 400,
            "quality_refunds": 5,
            "applied_quality_refunds": 7,
            "pending_quality_refunds": 7,
            "quality_refund_rate": "0.012500",
            "window_days": 30,
            "as_of": date(2026, 11, 26),
        },
        "rate_threshold": "0.01",
        "min_count": 5,
        "refunds_until_breach": 0,
        "orders_to_recover": 101,
        "pending_refunds": [
            {
                "refund_id": f"rf{i}",
                "order_id": f"od{i}",
                "product_id": "p1",
                "requested_on": "2026-11-20",
            }
            for i in range(1, 8)
        ],
        "top_products": [
            {"product_id": "p1", "quality_refunds": 3},
            {"product_id": "p2", "quality_refunds": 2},
        ],
        "top_reasons": [
            {"reason": "quality_issue", "count": 3},
            {"reason": "not_as_described", "count": 2},
        ],
        "advice": {
            "zh": "尽快联系待处理退款的买家协商撤销，并检查 p1 的质量与描述。",
            "en": "Contact the buyers of the pending refunds; check p1.",
        },
        "occurred_at": OCCURRED,
    }
    alert.update(overrides)
    return alert


def approaching_product_alert() -> dict[str, Any]:
    return make_alert(
        alert_id="alr_02",
        type="alert.approaching",
        product_id="p9",
        tier="delisting",
        state="approaching",
        previous_state="ok",
        figures={
            "orders": 150,
            "quality_refunds": 4,
            "applied_quality_refunds": 4,
            "pending_quality_refunds": 1,
            "quality_refund_rate": "0.026667",
            "window_days": 30,
            "as_of": "2026-11-26",
        },
        rate_threshold="0.03",
        refunds_until_breach=1,
        orders_to_recover=None,
        pending_refunds=[
            {"refund_id": "rf9", "order_id": "od9", "product_id": "p9", "requested_on": None}
        ],
        top_products=[],
    )


def dingtalk(alerts: list[dict[str, Any]]) -> dict[str, Any]:
    parsed: dict[str, Any] = json.loads(formats.dingtalk_body(alerts))
    return parsed


def wecom(alerts: list[dict[str, Any]]) -> str:
    parsed = json.loads(formats.wecom_body(alerts))
    assert parsed["msgtype"] == "markdown"
    content: str = parsed["markdown"]["content"]
    return content


def feishu(alerts: list[dict[str, Any]], secret: str | None = None) -> dict[str, Any]:
    parsed: dict[str, Any] = json.loads(
        formats.feishu_body(alerts, secret=secret, timestamp_s=1_764_136_980)
    )
    return parsed


# --------------------------------------------------------------------------- standard


def test_standard_body_envelope() -> None:
    data = make_alert()
    data.pop("occurred_at")
    body = formats.standard_body("alert.breached", OCCURRED, data)
    parsed = json.loads(body)
    assert list(parsed) == ["type", "timestamp", "data"]
    assert parsed["type"] == "alert.breached"
    assert parsed["timestamp"] == "2026-11-26T06:03:00Z"
    assert parsed["data"]["store_id"] == "s1"
    assert parsed["data"]["product_id"] is None
    assert parsed["data"]["figures"]["quality_refund_rate"] == "0.012500"
    assert parsed["data"]["figures"]["as_of"] == "2026-11-26"
    assert parsed["data"]["orders_to_recover"] == 101
    assert parsed["data"]["advice"]["zh"].startswith("尽快联系")
    # Compact and UTF-8 (no \\u escapes): what was signed is what the receiver reads.
    assert b'": ' not in body and b", " not in body.split(b'"advice"')[0]
    assert "尽快联系".encode() in body


def test_standard_body_normalises_times_and_decimals() -> None:
    shanghai = timezone(timedelta(hours=8))
    body = formats.standard_body(
        "alert.resolved",
        datetime(2026, 11, 26, 14, 3, 0, 123000, tzinfo=shanghai),
        {"occurred_at": datetime(2026, 11, 26, 14, 3, tzinfo=shanghai), "rate": Decimal("0.0125")},
    )
    parsed = json.loads(body)
    assert parsed["timestamp"] == "2026-11-26T06:03:00.123000Z"
    assert parsed["data"] == {"occurred_at": "2026-11-26T06:03:00Z", "rate": "0.0125"}


def test_standard_body_refuses_naive_timestamp_and_unknown_types() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        formats.standard_body("alert.breached", datetime(2026, 11, 26), {})
    with pytest.raises(TypeError):
        formats.standard_body("alert.breached", OCCURRED, {"x": object()})
    with pytest.raises(TypeError):  # orjson wraps the ValueError of a naive datetime
        formats.standard_body("alert.breached", OCCURRED, {"at": datetime(2026, 11, 26)})


# --------------------------------------------------------------------------- one alert


def test_dingtalk_single_breached_store_alert() -> None:
    parsed = dingtalk([make_alert()])
    assert parsed["msgtype"] == "markdown"
    title = parsed["markdown"]["title"]
    text = parsed["markdown"]["text"]
    assert title == "品质退款预警【已触发】店铺 s1 · 降权"
    assert text.startswith("### 品质退款预警【已触发】店铺 s1 · 降权\n\n")
    for expected in [
        "**处罚**：降权",
        "**状态**：已触发（此前：接近）",
        "**品质退款率**：1.25%（触发线：品质退款率 ≥ 1% 且 品质退款 ≥ 5 单）",
        "**品质退款单数**：5 单（顾客申请 7 单，待处理 7 单）",
        "**订单数**：400 单（近 30 天，截至 2026-11-26）",
        "需再增加 101 单正常订单才能恢复",
        "rf1（订单 od1）、rf2（订单 od2）、rf3（订单 od3）、rf4（订单 od4）、rf5（订单 od5）",
        "等共 7 单",
        "**主要原因**：质量问题 3 单、描述不符 2 单",
        "**主要商品**：p1 3 单、p2 2 单",
        "**建议**：尽快联系待处理退款的买家协商撤销，并检查 p1 的质量与描述。",
        "时间：2026-11-26 14:03（北京时间）",
    ]:
        assert expected in text, expected
    assert "rf6" not in text  # at most five pending refund ids
    assert "再有" not in text  # already breached: no "refunds until breach" line
    # DingTalk markdown needs blank lines between blocks.
    assert "\n\n**订单数**" in text


def test_wecom_single_approaching_product_alert() -> None:
    content = wecom([approaching_product_alert()])
    assert content.startswith("### 品质退款预警【接近】店铺 s1 · 商品 p9 · 下架\n")
    for expected in [
        "**范围**：店铺 s1 · 商品 p9",
        "**状态**：接近（此前：正常）",
        "**品质退款率**：2.6667%（触发线：品质退款率 ≥ 3% 且 品质退款 ≥ 5 单）",
        "**余量**：再有 1 单品质退款将触发下架",
        "rf9（订单 od9）",
        "截至 2026-11-26",
    ]:
        assert expected in content, expected
    assert "需再增加" not in content
    assert "主要商品" not in content  # product scope: no product breakdown
    assert len(content.encode()) <= formats.WECOM_MAX_CONTENT_BYTES


@pytest.mark.parametrize(
    ("overrides", "title"),
    [
        (
            {"type": "alert.resolved", "state": "ok", "previous_state": "breached"},
            "品质退款预警【已恢复】店铺 s1 · 降权",
        ),
        (
            {"type": "alert.reminder", "previous_state": None},
            "品质退款预警【提醒·已触发】店铺 s1 · 降权",
        ),
        (
            {"type": "alert.approaching", "state": "approaching", "tier": "listing_ban"},
            "品质退款预警【接近】店铺 s1 · 禁止上新",
        ),
    ],
)
def test_titles(overrides: dict[str, Any], title: str) -> None:
    alert = make_alert(**overrides)
    assert formats.alert_title(alert) == title
    assert dingtalk([alert])["markdown"]["title"] == title


def test_resolved_alert_says_recovered() -> None:
    alert = make_alert(
        type="alert.resolved",
        state="ok",
        previous_state="breached",
        refunds_until_breach=3,
        orders_to_recover=None,
        pending_refunds=[],
        figures={**make_alert()["figures"], "pending_quality_refunds": 0},
    )
    content = wecom([alert])
    assert "**状态**：正常（此前：已触发）" in content
    assert "再有 3 单品质退款将触发降权" in content
    assert "可挽回" not in content


def test_no_orders() -> None:
    alert = make_alert(
        state="approaching",
        type="alert.approaching",
        refunds_until_breach=None,
        orders_to_recover=None,
        figures={**make_alert()["figures"], "orders": 0, "quality_refund_rate": None},
    )
    content = wecom([alert])
    assert "**品质退款率**：—（无订单）" in content
    assert "窗口内暂无订单，无法计算余量" in content


def test_rates_are_shown_exactly() -> None:
    def rate_line(rate: str) -> str:
        alert = make_alert(figures={**make_alert()["figures"], "quality_refund_rate": rate})
        [line] = [x for x in wecom([alert]).split("\n") if x.startswith("**品质退款率**")]
        return line

    assert rate_line("0.015385").startswith("**品质退款率**：1.5385%")
    assert rate_line("0.010000").startswith("**品质退款率**：1%")
    assert rate_line("1.000000").startswith("**品质退款率**：100%")
    # A rate a hair below the line must not display as the line itself.
    assert rate_line("0.009999").startswith("**品质退款率**：0.9999%")


def test_pending_count_from_figures_when_list_is_capped() -> None:
    alert = make_alert(pending_refunds=make_alert()["pending_refunds"][:2])
    alert["figures"]["pending_quality_refunds"] = 12
    content = wecom([alert])
    assert "rf1（订单 od1）、rf2（订单 od2） 等共 12 单" in content


def test_unknown_codes_are_shown_raw() -> None:
    alert = make_alert(tier="mystery", top_reasons=[{"reason": "custom_reason", "count": 1}])
    content = wecom([alert])
    assert "mystery" in content
    assert "custom_reason 1 单" in content


def test_other_store_timezone() -> None:
    alert = make_alert(timezone="Europe/Berlin")
    assert "时间：2026-11-26 07:03（Europe/Berlin）" in wecom([alert])


def test_client_text_cannot_inject_markup() -> None:
    alert = make_alert(
        product_id="<at id=all></at>\n**伪造**：x",
        store_id="s1\r\n### fake",
        advice={"zh": "第一行\n第二行 <font color=red>x</font>", "en": ""},
    )
    for text in [
        wecom([alert]),
        dingtalk([alert])["markdown"]["text"],
        feishu([alert])["card"]["elements"][0]["content"],
    ]:
        assert "<at" not in text and "<font" not in text
        assert "＜at id=all＞＜/at＞" in text
        assert not any(
            line.startswith(("**伪造**", "### fake", "第二行")) for line in text.split("\n")
        )


def test_long_ids_are_shortened() -> None:
    alert = make_alert(store_id="s" * 500)
    content = wecom([alert])
    assert "s" * 63 + "…" in content
    assert "s" * 64 not in content


# --------------------------------------------------------------------------- Feishu


def test_feishu_card_unsigned() -> None:
    parsed = feishu([make_alert()])
    assert parsed["msg_type"] == "interactive"
    assert "sign" not in parsed and "timestamp" not in parsed
    card = parsed["card"]
    assert card["header"]["title"] == {
        "tag": "plain_text",
        "content": "品质退款预警【已触发】店铺 s1 · 降权",
    }
    assert card["header"]["template"] == "red"
    [element] = card["elements"]
    assert element["tag"] == "markdown"
    assert "**品质退款率**：1.25%" in element["content"]
    assert "###" not in element["content"]  # the title lives in the header


def test_feishu_card_signed() -> None:
    parsed = feishu([approaching_product_alert()], secret="feishu-secret")
    assert parsed["timestamp"] == "1764136980"
    assert parsed["sign"] == feishu_sign("feishu-secret", 1_764_136_980)
    assert parsed["card"]["header"]["template"] == "orange"


def test_feishu_resolved_is_green() -> None:
    alert = make_alert(type="alert.resolved", state="ok")
    assert feishu([alert])["card"]["header"]["template"] == "green"


# --------------------------------------------------------------------------- digests


def many_alerts(count: int) -> list[dict[str, Any]]:
    kinds: list[dict[str, Any]] = [
        {"type": "alert.resolved", "state": "ok", "previous_state": "breached"},
        {"type": "alert.approaching", "state": "approaching", "previous_state": "ok"},
        {"type": "alert.breached", "state": "breached", "previous_state": "approaching"},
        {"type": "alert.reminder", "state": "approaching", "previous_state": None},
    ]
    alerts = []
    for i in range(count):
        alert = make_alert(alert_id=f"alr_{i}", store_id=f"s{i:03d}", **kinds[i % 4])
        alerts.append(alert)
    return alerts


def _shown_numbers(text: str) -> list[int]:
    full = [int(n) for n in re.findall(r"^\*\*(\d+)\. ", text, flags=re.M)]
    brief = [int(n) for n in re.findall(r"^(\d+)\. 【", text, flags=re.M)]
    return full + brief


def test_wecom_digest_of_200_fits_4096_bytes_and_counts_the_rest() -> None:
    alerts = many_alerts(200)
    content = wecom(alerts)
    assert len(content.encode("utf-8")) <= 4096
    assert content.startswith("### 品质退款预警汇总：共 200 条\n")
    assert "已触发 50 · 接近 50 · 提醒 50 · 已恢复 50" in content
    shown = _shown_numbers(content)
    assert shown == list(range(1, len(shown) + 1))
    assert len(shown) >= 10
    match = re.search(r"另有 (\d+) 条预警已合并未展开", content)
    assert match is not None
    assert len(shown) + int(match.group(1)) == 200
    # Worst first: the first entries are the breached ones.
    assert "【已触发】" in content.split("\n")[3]


def test_small_digest_shows_everything_worst_first() -> None:
    alerts = [
        make_alert(type="alert.resolved", state="ok", store_id="a"),
        approaching_product_alert(),
        make_alert(store_id="b"),
    ]
    content = wecom(alerts)
    assert "另有" not in content
    lines = content.split("\n")
    assert lines[0] == "### 品质退款预警汇总：共 3 条"
    headers = [line for line in lines if re.match(r"^\*\*\d+\. ", line)]
    assert headers == [
        "**1. 【已触发】店铺 b · 降权**",
        "**2. 【接近】店铺 s1 · 商品 p9 · 下架**",
        "**3. 【已恢复】店铺 a · 降权**",
    ]
    assert "- 需再增加 101 单正常订单才能恢复（品质退款率降到降权线以下）" in content
    assert "- 再有 1 单品质退款将触发下架" in content
    assert "- 可挽回：rf1（订单 od1）" in content
    assert "- 建议：尽快联系" in content


def test_dingtalk_and_feishu_digests() -> None:
    alerts = many_alerts(200)
    parsed = dingtalk(alerts)
    assert parsed["markdown"]["title"] == "品质退款预警汇总：共 200 条"
    text = parsed["markdown"]["text"]
    assert len(text.encode()) <= formats.DINGTALK_MAX_TEXT_BYTES
    assert "另有" in text
    card = feishu(alerts, secret="s")
    assert card["card"]["header"]["template"] == "red"
    content = card["card"]["elements"][0]["content"]
    assert len(content.encode()) <= formats.FEISHU_MAX_CONTENT_BYTES
    assert len(formats.feishu_body(alerts, secret="s", timestamp_s=1)) < 20 * 1024


def test_single_oversized_alert_is_cut_and_marked() -> None:
    alert = make_alert(
        pending_refunds=[
            {"refund_id": "退" * 60, "order_id": "单" * 60, "product_id": "p", "requested_on": None}
        ]
        * 5,
        advice={"zh": "很长的建议" * 200, "en": ""},
        top_reasons=[{"reason": "原因" * 30, "count": 1}] * 3,
        top_products=[{"product_id": "商品" * 30, "quality_refunds": 1}] * 3,
        store_id="店" * 64,
        product_id="品" * 64,
    )
    content = wecom([alert])
    assert len(content.encode()) <= 4096


@settings(max_examples=40, deadline=None)
@given(
    count=st.integers(1, 60),
    ident=st.text(min_size=1, max_size=80),
    advice=st.text(max_size=400),
)
def test_wecom_always_within_limit(count: int, ident: str, advice: str) -> None:
    alerts = []
    for i in range(count):
        alert = make_alert(store_id=f"{ident}{i}", advice={"zh": advice, "en": ""})
        alert["pending_refunds"] = [
            {"refund_id": ident, "order_id": ident, "product_id": ident, "requested_on": None}
        ] * 6
        alerts.append(alert)
    body = formats.wecom_body(alerts)
    content = json.loads(body)["markdown"]["content"]
    assert len(content.encode("utf-8")) <= formats.WECOM_MAX_CONTENT_BYTES
    assert "品质退款" in content


def test_render_does_not_mutate_input() -> None:
    alerts = many_alerts(5)
    before = copy.deepcopy(alerts)
    formats.wecom_body(alerts)
    formats.dingtalk_body(alerts)
    formats.feishu_body(alerts, secret="x", timestamp_s=1)
    assert alerts == before


def test_render_robot_dispatch() -> None:
    alerts = [make_alert()]
    assert formats.render_robot("dingtalk", alerts) == formats.dingtalk_body(alerts)
    assert formats.render_robot("wecom", alerts) == formats.wecom_body(alerts)
    assert formats.render_robot("feishu", alerts, secret="k", timestamp_s=5) == (
        formats.feishu_body(alerts, secret="k", timestamp_s=5)
    )
    with pytest.raises(ValueError, match="not a group-robot format"):
        formats.render_robot("standard", alerts)
    with pytest.raises(ValueError, match="no alerts"):
        formats.wecom_body([])


@pytest.mark.parametrize("fmt", ["dingtalk", "wecom", "feishu"])
def test_every_robot_message_carries_the_keywords(fmt: str) -> None:
    """Robots secured by custom keywords need a fixed word in every message."""
    for alerts in ([make_alert()], many_alerts(3)):
        body = formats.render_robot(fmt, alerts, secret=None, timestamp_s=1).decode()
        assert "品质退款" in body
    ping = formats.test_message(fmt, now=OCCURRED).decode()
    assert "品质退款" in ping and "refundwatch" in ping


# --------------------------------------------------------------------------- test pings


def test_standard_test_ping() -> None:
    parsed = json.loads(formats.test_message("standard", now=OCCURRED, subscription_id="wh_1"))
    assert parsed["type"] == "webhook.test"
    assert parsed["timestamp"] == "2026-11-26T06:03:00Z"
    assert parsed["data"]["subscription_id"] == "wh_1"
    assert "test" in parsed["data"]["message"]


def test_robot_test_pings() -> None:
    ding = json.loads(formats.test_message("dingtalk", now=OCCURRED, subscription_id="wh_1"))
    assert ding["msgtype"] == "markdown"
    assert ding["markdown"]["title"] == "refundwatch 测试消息"
    assert "时间：2026-11-26 14:03（北京时间）" in ding["markdown"]["text"]
    assert "订阅：wh_1" in ding["markdown"]["text"]

    wecom_ping = json.loads(formats.test_message("wecom", now=OCCURRED))
    assert wecom_ping["markdown"]["content"].startswith("### refundwatch 测试消息\n")

    unsigned = json.loads(formats.test_message("feishu", now=OCCURRED))
    assert unsigned["msg_type"] == "interactive"
    assert "sign" not in unsigned
    assert unsigned["card"]["header"]["template"] == "blue"

    signed = json.loads(formats.test_message("feishu", now=OCCURRED, secret="k"))
    assert signed["timestamp"] == str(int(OCCURRED.timestamp()))
    assert signed["sign"] == feishu_sign("k", int(OCCURRED.timestamp()))


def test_test_ping_errors() -> None:
    with pytest.raises(ValueError, match="unknown webhook format"):
        formats.test_message("slack", now=OCCURRED)
    with pytest.raises(ValueError, match="timezone-aware"):
        formats.test_message("wecom", now=datetime(2026, 11, 26))


def test_test_message_is_not_collected_by_pytest() -> None:
    assert formats.test_message.__test__ is False  # type: ignore[attr-defined]
