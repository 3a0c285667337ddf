"""Rendering of alerts into webhook request bodies, one renderer per format (DESIGN §6).

* ``standard``: the Standard Webhooks JSON envelope
  ``{"type", "timestamp", "data"}``, compact, for programs.
* ``dingtalk``, ``wecom``, ``feishu``: a Chinese markdown message for a group chat
  of people (often one operator running many stores), written to be acted on
  from a phone: which store/product, which penalty (降权/禁止上新/下架), how bad
  (rate, count, orders), how much room is left, which pending refunds can still
  be turned by talking to the buyer, and the advice line.

One alert gives one message. When a robot's rate limit forces merging
(``robot_limits``), several alerts give ONE digest, worst first, cut to the
platform's size limit with a line saying how many alerts were merged but not
shown -- a truncated digest must never look complete.

Every robot message contains "品质退款" and "refundwatch", so a robot secured with
DingTalk/Feishu "custom keywords" (自定义关键词) can use either as its keyword.

Identifiers come from clients' events, so they are sanitised before going into
markup: control characters become spaces (a newline could forge a line) and
``<``/``>`` become full-width (Feishu markdown would otherwise honour an injected
``<at id=all></at>`` and ping the whole group).

All functions are pure: the caller passes times and secrets.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any, Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import orjson

from app.events.vocabulary import REASON_LABELS_ZH
from app.policies.tiers import TIER_LABELS_ZH
from app.webhooks.signing import feishu_sign

__all__ = [
    "DINGTALK_MAX_TEXT_BYTES",
    "FEISHU_MAX_CONTENT_BYTES",
    "FORMATS",
    "MAX_PENDING_SHOWN",
    "REASON_LABELS",
    "ROBOTS",
    "ROBOT_FORMATS",
    "STATE_LABELS",
    "TIER_LABELS",
    "TYPE_LABELS",
    "WECOM_MAX_CONTENT_BYTES",
    "alert_title",
    "dingtalk_body",
    "feishu_body",
    "render_robot",
    "standard_body",
    "test_message",
    "wecom_body",
]

FORMATS: Final = ("standard", "dingtalk", "wecom", "feishu")
ROBOT_FORMATS: Final = ("dingtalk", "wecom", "feishu")

TIER_LABELS: Final[Mapping[str, str]] = {str(k): v for k, v in TIER_LABELS_ZH.items()}
STATE_LABELS: Final[Mapping[str, str]] = {
    "approaching": "接近",
    "breached": "已触发",
    "ok": "正常",
    "unrated": "未评级",
}
TYPE_LABELS: Final[Mapping[str, str]] = {
    "alert.approaching": "接近",
    "alert.breached": "已触发",
    "alert.resolved": "已恢复",
    "alert.reminder": "提醒",
}
REASON_LABELS: Final[Mapping[str, str]] = REASON_LABELS_ZH

WECOM_MAX_CONTENT_BYTES: Final = 4096
"""WeCom refuses markdown content over 4096 bytes of UTF-8 (errcode 40058)."""

DINGTALK_MAX_TEXT_BYTES: Final = 16_000
"""Conservative bound for DingTalk markdown text: long messages are refused or cut."""

FEISHU_MAX_CONTENT_BYTES: Final = 16_000
"""Feishu custom bots refuse request bodies over 20 KB; this leaves room for the card."""

MAX_PENDING_SHOWN: Final = 5
"""Pending refund ids listed per alert; the rest are counted."""

_MAX_TOP_ITEMS: Final = 3
_MAX_ID_CHARS: Final = 64
_MAX_ADVICE_CHARS: Final = 300
_DEFAULT_TZ: Final = "Asia/Shanghai"
_SEVERITY: Final[Mapping[str, int]] = {"breached": 0, "approaching": 1}
_TALLY_ORDER: Final = ("alert.breached", "alert.approaching", "alert.reminder", "alert.resolved")
_FEISHU_TEMPLATES: Final[Mapping[str, str]] = {
    "breached": "red",
    "approaching": "orange",
    "ok": "green",
    "unrated": "grey",
}


# --------------------------------------------------------------------------- standard


def _json_default(value: object) -> object:
    if isinstance(value, datetime):
        return _rfc3339_utc(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, set | frozenset):
        return sorted(value)
    raise TypeError(f"cannot serialise {type(value).__name__} in a webhook body")


# Datetimes go through _json_default so every time in a body is UTC with "Z".
_JSON_OPTIONS: Final = orjson.OPT_PASSTHROUGH_DATETIME


def _rfc3339_utc(moment: datetime) -> str:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError("webhook timestamps must be timezone-aware")
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def standard_body(event_type: str, timestamp: datetime, data: Mapping[str, Any]) -> bytes:
    """Return the compact JSON body of a ``standard`` webhook.

    ``{"type": ..., "timestamp": "2026-11-26T06:03:00Z", "data": {...}}`` with the
    timestamp in UTC and a ``Z`` suffix (what Standard Webhooks receivers expect);
    datetimes inside ``data`` are serialised the same way, dates as
    ``YYYY-MM-DD``, Decimals as strings (never floats: rates are exact).

    Raises:
        ValueError: a naive ``timestamp``.
        TypeError: (``orjson.JSONEncodeError``) a naive datetime inside ``data``,
            or a value JSON cannot carry.
    """
    envelope = {"type": event_type, "timestamp": _rfc3339_utc(timestamp), "data": dict(data)}
    return orjson.dumps(envelope, default=_json_default, option=_JSON_OPTIONS)


# --------------------------------------------------------------------------- text helpers


def _clean(value: object, limit: int = _MAX_ID_CHARS) -> str:
    """Make client-supplied text safe to embed in a markdown line."""
    text = "" if value is None else str(value)
    chars = []
    for ch in text:
        if unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp"):
            chars.append(" ")
        elif ch == "<":
            chars.append("＜")
        elif ch == ">":
            chars.append("＞")
        else:
            chars.append(ch)
    cleaned = "".join(chars).strip()
    if len(cleaned) > limit:
        cleaned = cleaned[: limit - 1] + "…"
    return cleaned


def _percent(rate: object) -> str | None:
    """``"0.012500"`` → ``"1.25%"``: exact, trailing zeros dropped, never rounded."""
    if rate is None:
        return None
    try:
        value = Decimal(str(rate)) * 100
    except InvalidOperation:
        return _clean(rate)
    if not value.is_finite():
        return _clean(rate)
    text = format(value.normalize(), "f")
    return f"{text}%"


def _int(value: object) -> int | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        return value
    try:
        return int(str(value))
    except ValueError:
        return None


def _day(value: object) -> str | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.date().isoformat()
    if isinstance(value, date):
        return value.isoformat()
    return _clean(value, 32)


def _when(alert: Mapping[str, Any]) -> str | None:
    """The alert time in the store's zone (Asia/Shanghai unless the alert says)."""
    moment = alert.get("occurred_at")
    if not isinstance(moment, datetime):
        return None if moment is None else _clean(moment, 40)
    tz_name = alert.get("timezone") or _DEFAULT_TZ
    try:
        zone = ZoneInfo(str(tz_name))
    except (ZoneInfoNotFoundError, ValueError):
        zone, tz_name = ZoneInfo(_DEFAULT_TZ), _DEFAULT_TZ
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    local = moment.astimezone(zone)
    label = "北京时间" if tz_name == _DEFAULT_TZ else _clean(tz_name, 40)
    return f"{local:%Y-%m-%d %H:%M}（{label}）"


def _tier_label(alert: Mapping[str, Any]) -> str:
    tier = alert.get("tier")
    return TIER_LABELS.get(str(tier), _clean(tier)) if tier is not None else "未知档位"


def _state_label(state: object) -> str:
    return STATE_LABELS.get(str(state), _clean(state)) if state is not None else "未知"


def _type_label(alert: Mapping[str, Any]) -> str:
    kind = alert.get("type")
    return TYPE_LABELS.get(str(kind), _clean(kind)) if kind is not None else "预警"


def _scope(alert: Mapping[str, Any]) -> str:
    store = f"店铺 {_clean(alert.get('store_id'))}"
    product = alert.get("product_id")
    return store if product is None else f"{store} · 商品 {_clean(product)}"


def alert_title(alert: Mapping[str, Any]) -> str:
    """One line naming the alert: ``品质退款预警【已触发】店铺 s1 · 降权``.

    A reminder also says the state it reminds of (``【提醒·已触发】``).
    """
    label = _type_label(alert)
    if alert.get("type") == "alert.reminder" and alert.get("state") is not None:
        label = f"{label}·{_state_label(alert.get('state'))}"
    return f"品质退款预警【{label}】{_scope(alert)} · {_tier_label(alert)}"


# --------------------------------------------------------------------------- alert lines


def _line_rule(alert: Mapping[str, Any]) -> str | None:
    threshold = _percent(alert.get("rate_threshold"))
    min_count = _int(alert.get("min_count"))
    parts = []
    if threshold is not None:
        parts.append(f"品质退款率 ≥ {threshold}")
    if min_count is not None:
        parts.append(f"品质退款 ≥ {min_count} 单")
    return " 且 ".join(parts) if parts else None


TREND_LABELS: Final[Mapping[str, str]] = {"rising": "上升", "falling": "下降", "flat": "持平"}


def _clears_on_text(alert: Mapping[str, Any]) -> str | None:
    """``无新增品质退款时，将于 12月8日 回落到线下`` for a breached tier's count_clears_on."""
    value = alert.get("count_clears_on")
    if not value:
        return None
    try:
        day = date.fromisoformat(str(value))
    except ValueError:
        return None
    return f"无新增品质退款时，将于 {day.month}月{day.day}日 回落到线下"


def _trend_text(alert: Mapping[str, Any]) -> str | None:
    label = TREND_LABELS.get(str(alert.get("trend")))
    return f"{label}（与 7 天前相比）" if label else None


def _headroom_lines(alert: Mapping[str, Any]) -> list[str]:
    tier = _tier_label(alert)
    lines = []
    recover = _int(alert.get("orders_to_recover"))
    if recover is not None:
        lines.append(f"需再增加 {recover} 单正常订单才能恢复（品质退款率降到{tier}线以下）")
    until = _int(alert.get("refunds_until_breach"))
    if until is not None and until > 0:
        lines.append(f"再有 {until} 单品质退款将触发{tier}")
    if recover is None and until is None:
        figures = alert.get("figures") or {}
        if _int(figures.get("orders")) == 0:
            lines.append("窗口内暂无订单，无法计算余量")
    return lines


def _pending_text(alert: Mapping[str, Any]) -> str | None:
    pending = alert.get("pending_refunds") or []
    figures = alert.get("figures") or {}
    total = max(len(pending), _int(figures.get("pending_quality_refunds")) or 0)
    if total == 0:
        return None
    shown = []
    for refund in pending[:MAX_PENDING_SHOWN]:
        refund_id = _clean(refund.get("refund_id"))
        order_id = refund.get("order_id")
        shown.append(f"{refund_id}（订单 {_clean(order_id)}）" if order_id else refund_id)
    text = "、".join(shown)
    if total > len(shown):
        text = f"{text} 等共 {total} 单" if shown else f"共 {total} 单"
    return text


def _top_reasons(alert: Mapping[str, Any]) -> str | None:
    items = []
    for item in (alert.get("top_reasons") or [])[:_MAX_TOP_ITEMS]:
        reason = item.get("reason")
        label = REASON_LABELS.get(str(reason), _clean(reason))
        items.append(f"{label} {_int(item.get('count')) or 0} 单")
    return "、".join(items) or None


def _top_products(alert: Mapping[str, Any]) -> str | None:
    items = []
    for item in (alert.get("top_products") or [])[:_MAX_TOP_ITEMS]:
        count = _int(item.get("quality_refunds")) or 0
        items.append(f"{_clean(item.get('product_id'))} {count} 单")
    return "、".join(items) or None


def _advice(alert: Mapping[str, Any]) -> str | None:
    advice = alert.get("advice") or {}
    zh = advice.get("zh") if isinstance(advice, Mapping) else None
    return _clean(zh, _MAX_ADVICE_CHARS) if zh else None


def _alert_lines(alert: Mapping[str, Any]) -> list[str]:
    """The full body of one alert, one fact a line."""
    figures = alert.get("figures") or {}
    lines = [f"**范围**：{_scope(alert)}", f"**处罚**：{_tier_label(alert)}"]

    state = f"**状态**：{_state_label(alert.get('state'))}"
    if alert.get("previous_state") is not None:
        state += f"（此前：{_state_label(alert.get('previous_state'))}）"
    lines.append(state)

    rate = _percent(figures.get("quality_refund_rate"))
    rule = _line_rule(alert)
    rate_line = f"**品质退款率**：{rate if rate is not None else '—（无订单）'}"
    if rule:
        rate_line += f"（触发线：{rule}）"
    lines.append(rate_line)

    count_line = f"**品质退款单数**：{_int(figures.get('quality_refunds')) or 0} 单"
    applied = _int(figures.get("applied_quality_refunds"))
    pending_count = _int(figures.get("pending_quality_refunds"))
    extra = []
    if applied is not None:
        extra.append(f"顾客申请 {applied} 单")
    if pending_count:
        extra.append(f"待处理 {pending_count} 单")
    if extra:
        count_line += f"（{'，'.join(extra)}）"
    lines.append(count_line)

    orders_line = f"**订单数**：{_int(figures.get('orders')) or 0} 单"
    window = _int(figures.get("window_days"))
    as_of = _day(figures.get("as_of"))
    context = []
    if window is not None:
        context.append(f"近 {window} 天")
    if as_of:
        context.append(f"截至 {as_of}")
    if context:
        orders_line += f"（{'，'.join(context)}）"
    lines.append(orders_line)

    lines.extend(f"**余量**：{text}" for text in _headroom_lines(alert))
    clears = _clears_on_text(alert)
    if clears:
        lines.append(f"**回落**：{clears}")
    trend = _trend_text(alert)
    if trend:
        lines.append(f"**趋势**：{trend}")
    pending = _pending_text(alert)
    if pending:
        lines.append(f"**可挽回的待处理退款**：{pending}（与买家沟通撤销后不计入）")
    reasons = _top_reasons(alert)
    if reasons:
        lines.append(f"**主要原因**：{reasons}")
    if alert.get("product_id") is None:
        products = _top_products(alert)
        if products:
            lines.append(f"**主要商品**：{products}")
    advice = _advice(alert)
    if advice:
        lines.append(f"**建议**：{advice}")
    when = _when(alert)
    if when:
        lines.append(f"时间：{when}")
    return lines


def _digest_section(index: int, alert: Mapping[str, Any]) -> list[str]:
    """A compact block for one alert inside a digest."""
    figures = alert.get("figures") or {}
    rate = _percent(figures.get("quality_refund_rate")) or "—"
    threshold = _percent(alert.get("rate_threshold"))
    summary = (
        f"- 品质退款率 {rate}"
        + (f"（线 {threshold}）" if threshold else "")
        + f" · 品质退款 {_int(figures.get('quality_refunds')) or 0} 单"
        + f" · 订单 {_int(figures.get('orders')) or 0} 单"
    )
    lines = [f"**{index}. {alert_title(alert).removeprefix('品质退款预警')}**", summary]
    lines.extend(f"- {text}" for text in _headroom_lines(alert))
    clears = _clears_on_text(alert)
    if clears:
        lines.append(f"- {clears}")
    pending = _pending_text(alert)
    if pending:
        lines.append(f"- 可挽回：{pending}")
    advice = _advice(alert)
    if advice:
        lines.append(f"- 建议：{advice}")
    return lines


def _digest_line(index: int, alert: Mapping[str, Any]) -> str:
    """One line for an alert when a digest has no room left for full sections."""
    figures = alert.get("figures") or {}
    rate = _percent(figures.get("quality_refund_rate")) or "—"
    line = f"{index}. {alert_title(alert).removeprefix('品质退款预警')}：品质退款率 {rate}"
    recover = _int(alert.get("orders_to_recover"))
    until = _int(alert.get("refunds_until_breach"))
    if recover is not None:
        line += f"，需再增加 {recover} 单正常订单恢复"
    elif until is not None and until > 0:
        line += f"，再有 {until} 单品质退款将触发"
    return line


# --------------------------------------------------------------------------- composing


def _utf8_len(text: str) -> int:
    return len(text.encode("utf-8"))


def _cut_utf8(text: str, max_bytes: int) -> str:
    """Cut ``text`` to ``max_bytes`` of UTF-8 without splitting a character."""
    return text.encode("utf-8")[:max_bytes].decode("utf-8", errors="ignore")


_CUT_NOTE: Final = "……（内容过长，已截断）"
_FULL_SHARE: Final = 0.6


def _omitted_note(count: int) -> str:
    return f"…… 另有 {count} 条预警已合并未展开（消息长度受限），请在 refundwatch 中查看全部预警"


def _fit(
    head: Sequence[str],
    sections: Sequence[Sequence[str]],
    sep: str,
    max_bytes: int,
    one_liners: Sequence[str] | None = None,
) -> str:
    """Join ``head`` and as much of ``sections`` as fits in ``max_bytes`` of UTF-8.

    When everything fits, everything is shown. Otherwise whole sections are
    shown (worst first) while they take at most 60 % of the budget, then, if
    ``one_liners`` are given, one line per further alert, and finally a note
    counting the alerts not shown -- room for that note (sized for the worst
    case) is kept from the start, so the result always fits. If not even the
    first section fits, its lines are taken one by one and the cut is marked.
    """
    full = sep.join([*head, *(line for section in sections for line in section)])
    if _utf8_len(full) <= max_bytes:
        return full
    reserve = _utf8_len(_CUT_NOTE) + _utf8_len(_omitted_note(len(sections))) + 3 * len(sep)
    lines = list(head)
    used = _utf8_len(sep.join(lines))

    def take(line: str, limit: int) -> bool:
        nonlocal used
        size = _utf8_len(line) + len(sep)
        if used + size + reserve > limit:
            return False
        lines.append(line)
        used += size
        return True

    full_limit = int(max_bytes * _FULL_SHARE) if one_liners else max_bytes
    shown = 0
    for section in sections:
        size = sum(_utf8_len(line) + len(sep) for line in section)
        if used + size + reserve > full_limit:
            break
        lines.extend(section)
        used += size
        shown += 1
    notes = []
    if shown == 0 and sections:
        # Not even one whole section fits: show what fits of the first one.
        for line in sections[0]:
            if not take(line, max_bytes):
                break
        notes.append(_CUT_NOTE)
        shown = 1
    if one_liners:
        while shown < len(sections) and take(one_liners[shown], max_bytes):
            shown += 1
    if shown < len(sections):
        notes.append(_omitted_note(len(sections) - shown))
    lines.append(" ".join(notes))
    text = sep.join(lines)
    # Unreachable with sane budgets; guarantees the platform limit regardless.
    return text if _utf8_len(text) <= max_bytes else _cut_utf8(text, max_bytes)


def _worst_first(alerts: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    return sorted(alerts, key=lambda alert: _SEVERITY.get(str(alert.get("state")), 2))


def _digest_head(alerts: Sequence[Mapping[str, Any]]) -> list[str]:
    counts: dict[str, int] = {}
    for alert in alerts:
        label = _type_label(alert)
        counts[label] = counts.get(label, 0) + 1
    order = [TYPE_LABELS[kind] for kind in _TALLY_ORDER]
    tally = " · ".join(
        f"{label} {counts[label]}"
        for label in sorted(counts, key=lambda x: order.index(x) if x in order else len(order))
    )
    return [tally, "（发送频率受限，多条预警已合并为一条消息，最严重的在前）"]


def _digest_title(alerts: Sequence[Mapping[str, Any]]) -> str:
    return f"品质退款预警汇总：共 {len(alerts)} 条"


def _compose(
    alerts: Sequence[Mapping[str, Any]], sep: str, max_bytes: int, heading: str
) -> tuple[str, str]:
    """Return ``(title, markdown)`` for one alert or a digest of several."""
    if not alerts:
        raise ValueError("nothing to render: no alerts")
    if len(alerts) == 1:
        title = alert_title(alerts[0])
        head = [f"{heading}{title}"] if heading else []
        return title, _fit(head, [_alert_lines(alerts[0])], sep, max_bytes)
    ordered = _worst_first(alerts)
    title = _digest_title(alerts)
    head = ([f"{heading}{title}"] if heading else []) + _digest_head(alerts)
    sections = [_digest_section(i, alert) for i, alert in enumerate(ordered, start=1)]
    one_liners = [_digest_line(i, alert) for i, alert in enumerate(ordered, start=1)]
    return title, _fit(head, sections, sep, max_bytes, one_liners)


def _dumps(payload: Mapping[str, Any]) -> bytes:
    return orjson.dumps(payload, default=_json_default, option=_JSON_OPTIONS)


# --------------------------------------------------------------------------- robots


def _markdown_envelope(title_key: str | None, text_key: str) -> Callable[..., bytes]:
    def envelope(title: str, text: str, _template: str, _secret: str | None, _ts: int) -> bytes:
        markdown = {title_key: title, text_key: text} if title_key else {text_key: text}
        return _dumps({"msgtype": "markdown", "markdown": markdown})

    return envelope


def _feishu_payload(
    title: str, text: str, template: str, secret: str | None, timestamp_s: int
) -> bytes:
    payload: dict[str, Any] = {}
    if secret:
        payload["timestamp"] = str(timestamp_s)
        payload["sign"] = feishu_sign(secret, timestamp_s)
    payload["msg_type"] = "interactive"
    payload["card"] = {
        "config": {"wide_screen_mode": True},
        "header": {"title": {"tag": "plain_text", "content": title}, "template": template},
        "elements": [{"tag": "markdown", "content": text}],
    }
    return _dumps(payload)


@dataclass(frozen=True, slots=True)
class RobotFormat:
    """How one group robot takes a message: line separator, size limit, envelope.

    ``envelope(title, markdown, colour, secret, timestamp_s)`` wraps the rendered
    markdown in the robot's JSON. DingTalk signs in the URL, Feishu in the body
    (so its envelope uses the secret), WeCom not at all.
    """

    separator: str
    max_bytes: int
    heading: str
    envelope: Callable[[str, str, str, str | None, int], bytes]


ROBOTS: Final[Mapping[str, RobotFormat]] = {
    # DingTalk's markdown does not break on a single newline: blocks need blank lines.
    # ``title`` is what shows in the chat list and notifications.
    "dingtalk": RobotFormat(
        "\n\n", DINGTALK_MAX_TEXT_BYTES, "### ", _markdown_envelope("title", "text")
    ),
    "wecom": RobotFormat(
        "\n", WECOM_MAX_CONTENT_BYTES, "### ", _markdown_envelope(None, "content")
    ),
    # Feishu: the title goes in the card header (coloured by the worst state).
    "feishu": RobotFormat("\n", FEISHU_MAX_CONTENT_BYTES, "", _feishu_payload),
}
"""Every group-robot format: one table, so a new channel is one more row."""


def _robot(format: str) -> RobotFormat:
    robot = ROBOTS.get(format)
    if robot is None:
        raise ValueError(f"{format!r} is not a group-robot format ({', '.join(ROBOT_FORMATS)})")
    return robot


def render_robot(
    format: str,
    alerts: Sequence[Mapping[str, Any]],
    *,
    secret: str | None = None,
    timestamp_s: int = 0,
) -> bytes:
    """The robot message of ``format`` for one alert, or a digest of several.

    Raises:
        ValueError: ``format`` is not a robot format.
    """
    robot = _robot(format)
    title, text = _compose(alerts, robot.separator, robot.max_bytes, robot.heading)
    states = [str(alert.get("state")) for alert in alerts]
    worst = min(states, key=lambda state: _SEVERITY.get(state, 2))
    template = _FEISHU_TEMPLATES.get(worst, "blue")
    return robot.envelope(title, text, template, secret, timestamp_s)


def dingtalk_body(alerts: Sequence[Mapping[str, Any]]) -> bytes:
    """DingTalk custom robot markdown message for one alert, or a digest of several."""
    return render_robot("dingtalk", alerts)


def wecom_body(alerts: Sequence[Mapping[str, Any]]) -> bytes:
    """WeCom group robot markdown message; content ≤ 4096 bytes of UTF-8."""
    return render_robot("wecom", alerts)


def feishu_body(
    alerts: Sequence[Mapping[str, Any]], *, secret: str | None, timestamp_s: int
) -> bytes:
    """Feishu custom bot interactive card; signed when the bot has a secret (for an hour)."""
    return render_robot("feishu", alerts, secret=secret, timestamp_s=timestamp_s)


# --------------------------------------------------------------------------- test ping

_TEST_TITLE: Final = "refundwatch 测试消息"
_TEST_LINES: Final = (
    "这是一条测试消息：品质退款预警已接通。",
    "当店铺或商品的品质退款率接近或达到处罚线（降权 / 禁止上新 / 下架）时，"
    "refundwatch 会在这里提醒，并列出可挽回的待处理退款。",
)


def test_message(
    format: str,
    *,
    now: datetime,
    subscription_id: str | None = None,
    secret: str | None = None,
) -> bytes:
    """Render the ``webhook.test`` ping of ``format`` (``POST /v1/webhooks/{id}/test``).

    ``standard`` gives ``{"type": "webhook.test", "timestamp", "data": {"message",
    "subscription_id"}}``; robots a short Chinese message with the same keywords
    as real alerts, so a successful test proves real alerts will pass a keyword
    filter too. ``secret`` signs the Feishu body (DingTalk signs the URL).

    Raises:
        ValueError: unknown format, or naive ``now``.
    """
    _rfc3339_utc(now)  # refuses a naive time for every format, not only standard
    if format == "standard":
        data = {
            "message": "refundwatch test message / 测试消息",
            "subscription_id": subscription_id,
        }
        return standard_body("webhook.test", now, data)
    if format not in ROBOTS:
        raise ValueError(f"unknown webhook format {format!r} ({', '.join(FORMATS)})")
    robot = ROBOTS[format]
    local = now.astimezone(ZoneInfo(_DEFAULT_TZ))
    lines = [*_TEST_LINES, f"时间：{local:%Y-%m-%d %H:%M}（北京时间）"]
    if subscription_id:
        lines.append(f"订阅：{_clean(subscription_id)}")
    head = [f"{robot.heading}{_TEST_TITLE}"] if robot.heading else []
    text = robot.separator.join([*head, *lines])
    return robot.envelope(_TEST_TITLE, text, "blue", secret, int(now.timestamp()))


# Not a pytest test, even when a test module imports it by name.
test_message.__test__ = False  # type: ignore[attr-defined]


# --------------------------------------------------------------------------- notices

NOTICE_TITLES: Final[Mapping[str, str]] = {
    "connection.failing": "品质退款监控：店铺授权失效",
}


def _notice_lines(event_type: str, data: Mapping[str, Any]) -> tuple[str, list[str]]:
    """Title and facts of a non-alert message (a connection that stopped syncing)."""
    title = NOTICE_TITLES.get(event_type, f"refundwatch 通知：{_clean(event_type)}")
    error = data.get("error") or {}
    advice = data.get("advice") or {}
    lines = [
        f"**店铺**：{_clean(data.get('store_id'))}（{_clean(data.get('platform'))}）",
        f"**错误**：{_clean(error.get('code'))} {_clean(error.get('message'), 200)}",
        "**影响**：refundwatch 暂停同步该店铺的订单和售后，品质退款率不再更新",
    ]
    if isinstance(advice, Mapping) and advice.get("zh"):
        lines.append(f"**建议**：{_clean(advice.get('zh'), _MAX_ADVICE_CHARS)}")
    lines.append("（refundwatch 品质退款监控）")
    return title, lines


def _report_store(index: int, store: Mapping[str, Any]) -> list[str]:
    figures = store.get("figures") or {}
    change = store.get("change") or {}
    name = store.get("store_name") or store.get("store_id")
    rate = _percent(figures.get("quality_refund_rate")) or "—"
    lines = [
        f"**{index}. 店铺 {_clean(name)}【{_state_label(store.get('worst_state'))}】**",
        f"- 品质退款率 {rate}（品质退款 {_int(figures.get('quality_refunds')) or 0} 单 / "
        f"订单 {_int(figures.get('orders')) or 0} 单）",
    ]
    delta = _int(change.get("quality_refunds"))
    if delta is not None:
        rate_change = change.get("quality_refund_rate")
        rate_text = f"，品质退款率 {_percent(rate_change)}" if rate_change else ""
        lines.append(f"- 较上次：品质退款 {delta:+d} 单{rate_text}")
    products = [
        f"{_clean(p.get('product_id'))} {_int(p.get('quality_refunds')) or 0} 单"
        f"（{_state_label(p.get('state'))}{TIER_LABELS.get(str(p.get('tier')), '')}）"
        for p in (store.get("products_at_risk") or [])[:_MAX_TOP_ITEMS]
    ]
    if products:
        lines.append(f"- 风险商品：{'、'.join(products)}")
    return lines


def _report_line(index: int, store: Mapping[str, Any]) -> str:
    figures = store.get("figures") or {}
    name = store.get("store_name") or store.get("store_id")
    rate = _percent(figures.get("quality_refund_rate")) or "—"
    return f"{index}. 店铺 {_clean(name)}【{_state_label(store.get('worst_state'))}】 {rate}"


def _report_message(
    data: Mapping[str, Any], separator: str, max_bytes: int, heading: str
) -> tuple[str, str]:
    """The daily report's title and markdown: worst stores first, trimmed with a note."""
    summary = data.get("summary") or {}
    title = f"品质退款日报 {_clean(data.get('date'), 16)}"
    head = [f"{heading}{title}"] if heading else []
    head.append(
        f"共 {_int(summary.get('stores')) or 0} 家店铺：已触发 {_int(summary.get('breached')) or 0}"
        f" · 接近 {_int(summary.get('approaching')) or 0}（refundwatch）"
    )
    stores = list(data.get("stores") or [])
    sections = [_report_store(i, s) for i, s in enumerate(stores, start=1)]
    lines = [_report_line(i, s) for i, s in enumerate(stores, start=1)]
    return title, _fit(head, sections, separator, max_bytes, lines)


def render_notice(
    format: str,
    event_type: str,
    data: Mapping[str, Any],
    *,
    secret: str | None = None,
    timestamp_s: int = 0,
) -> bytes:
    """A robot message for a notice (not an alert), within the robot's size limit:
    a daily report, or a connection that stopped syncing."""
    robot = _robot(format)
    if event_type == "report.daily":
        title, text = _report_message(data, robot.separator, robot.max_bytes, robot.heading)
        return robot.envelope(title, text, "blue", secret, timestamp_s)
    title, lines = _notice_lines(event_type, data)
    head = [f"{robot.heading}{title}"] if robot.heading else []
    text = _fit(head, [lines], robot.separator, robot.max_bytes)
    return robot.envelope(title, text, "red", secret, timestamp_s)
