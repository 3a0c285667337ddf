"""The console's words in Chinese and English, and which language a request gets (pure).

The language is the one the operator picked with the switch (a cookie), else the best of
the browser's ``Accept-Language``, else Chinese: the operators are mostly Chinese sellers.
Every text of the pages is a key of :data:`MESSAGES`; a test holds both languages complete.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from app.console.formatting import duration_parts
from app.events.vocabulary import REASON_LABELS_EN, REASON_LABELS_ZH
from app.policies.tiers import TIER_LABELS_EN, TIER_LABELS_ZH

LANGUAGES: Final = ("zh", "en")
DEFAULT_LANGUAGE: Final = "zh"


def negotiate(cookie: str | None, accept_language: str | None) -> str:
    """``zh`` or ``en``: the switch's cookie wins, then the highest-weighted known language."""
    if cookie in LANGUAGES:
        return cookie
    best: tuple[float, int, str] | None = None
    for position, part in enumerate((accept_language or "").split(",")):
        tag, _, params = part.strip().partition(";")
        primary = tag.strip().lower().split("-", 1)[0]
        if primary not in LANGUAGES:
            continue
        weight = 1.0
        for param in params.split(";"):
            name, _, value = param.strip().partition("=")
            if name == "q":
                try:
                    weight = float(value)
                except ValueError:
                    weight = 0.0
        if weight <= 0:
            continue
        candidate = (-weight, position, primary)
        if best is None or candidate < best:
            best = candidate
    return best[2] if best is not None else DEFAULT_LANGUAGE


# key: (English, 中文). Placeholders are str.format fields.
MESSAGES: Final[Mapping[str, tuple[str, str]]] = {
    # frame
    "app.name": ("refundwatch", "refundwatch 品质退款监控"),
    "skip": ("Skip to the content", "跳到正文"),
    "nav.label": ("Console sections", "控制台导航"),
    "nav.overview": ("Stores", "店铺总览"),
    "nav.alerts": ("Alerts", "预警"),
    "nav.webhooks": ("Webhooks", "推送"),
    "nav.connections": ("Connections & imports", "对接与导入"),
    "nav.docs": ("API docs", "API 文档"),
    "who.signed_in": ("Signed in with key “{name}”", "已用密钥“{name}”登录"),
    "who.admin": ("admin", "管理员"),
    "who.read_only": ("read only", "只读"),
    "who.until": ("until {time}", "有效至 {time}"),
    "signout": ("Sign out", "退出登录"),
    "lang.switch": ("中文", "English"),
    "lang.switch_label": ("切换到中文", "Switch to English"),
    "footer.times": (
        "Times are shown in each store's time zone.",
        "时间均按各店铺的时区显示。",
    ),
    "read_only.note": (
        "Signed in with a read-only key: actions need an admin key.",
        "当前为只读密钥：操作需要管理员密钥。",
    ),
    "admin_needed": ("Needs an admin key", "需要管理员密钥"),
    # sign-in
    "login.title": ("Sign in", "登录"),
    "login.lede": (
        "Sign in with an API key that has the read or admin scope.",
        "请使用具有 read 或 admin 权限的 API 密钥登录。",
    ),
    "login.key": ("API key", "API 密钥"),
    "login.key_hint": (
        "It starts with rw_. The first start of refundwatch serve prints one; "
        "create more with refundwatch keys create.",
        "以 rw_ 开头。首次运行 refundwatch serve 时会打印一个；"
        "用 refundwatch keys create 可再创建。",
    ),
    "login.submit": ("Sign in", "登录"),
    "login.kept": (
        "The key is checked once and never kept in the browser: "
        "the console remembers you with a session cookie for {hours} hours.",
        "密钥只校验一次，不会保存在浏览器中；控制台以会话 Cookie 记住登录状态 {hours} 小时。",
    ),
    "login.unknown_key": (
        "This key is unknown or revoked.",
        "该密钥不存在或已被吊销。",
    ),
    "login.no_read_scope": (
        "This key can only send events (ingest scope). Sign in with a read or admin key.",
        "该密钥只能上报事件（ingest 权限），请使用 read 或 admin 密钥登录。",
    ),
    "login.missing_key": ("Enter an API key.", "请输入 API 密钥。"),
    "login.expired_form": (
        "The sign-in form had expired. Please try again.",
        "登录页面已过期，请重试。",
    ),
    "login.throttled": (
        "Too many failed sign-ins from here. Try again in {minutes} minutes.",
        "登录失败次数过多，请 {minutes} 分钟后再试。",
    ),
    "login.signed_out": ("You are signed out.", "已退出登录。"),
    "login.session_over": (
        "Your session has ended. Please sign in again.",
        "会话已结束，请重新登录。",
    ),
    "opening": ("Opening the console…", "正在打开控制台…"),
    # states, trends, tiers
    "state.breached": ("Breached", "已超线"),
    "state.approaching": ("Approaching", "接近线"),
    "state.ok": ("OK", "正常"),
    "state.unrated": ("Too few orders", "单量不足"),
    "state.all": ("All", "全部"),
    "trend.rising": ("Rising", "上升"),
    "trend.falling": ("Falling", "下降"),
    "trend.flat": ("Flat", "持平"),
    "trend.none": ("No trend", "无趋势"),
    "trend.title": (
        "Rate now against 7 days ago (a move of 0.1 point or more)",
        "当前比率对比 7 天前（变化 ≥0.1 个百分点）",
    ),
    "headroom.recover": ("+{n} clean orders to get under", "再 {n} 单无退款订单可回到线下"),
    "headroom.until": ("{n} more refunds to breach", "再 {n} 单品质退款即超线"),
    "headroom.until_one": ("1 more refund breaches", "再 1 单品质退款即超线"),
    "headroom.none": ("No orders yet", "暂无订单"),
    "line.rule": ("≥ {rate} and ≥ {count} refunds", "≥ {rate} 且 ≥ {count} 单"),
    # overview
    "overview.title": ("Stores", "店铺总览"),
    "overview.lede": (
        "{n} stores, worst first: breached, then approaching, then by rate. "
        "Each figure is the rolling {days}-day window up to today.",
        "共 {n} 家店铺，最严重的排在前面：先已超线，再接近线，然后按比率。"
        "数字为截至今天的滚动 {days} 天窗口。",
    ),
    "overview.lede_mixed": (
        "{n} stores, worst first: breached, then approaching, then by rate. "
        "Each figure is the store's rolling window up to its today.",
        "共 {n} 家店铺，最严重的排在前面：先已超线，再接近线，然后按比率。"
        "数字为各店铺截至今天的滚动窗口。",
    ),
    "overview.filter": ("Show", "筛选"),
    "overview.search": ("Find a store", "查找店铺"),
    "overview.search_button": ("Find", "查找"),
    "overview.caption": ("Every store, worst first", "全部店铺（最严重的在前）"),
    "col.store": ("Store", "店铺"),
    "col.state": ("State", "状态"),
    "col.rate": ("Quality-refund rate", "品质退款率"),
    "col.rate_counts": ("refunds / orders", "退款单 / 订单"),
    "col.pending": ("Can still be turned", "可挽回"),
    "col.trend": ("7-day trend", "7 天趋势"),
    "col.sparkline": ("30 days", "近 30 天"),
    "col.products_at_risk": ("Products at risk", "风险商品"),
    "col.headroom": ("Headroom", "余量"),
    "col.line": ("Line", "红线"),
    "col.tier": ("Tier", "处罚"),
    "sparkline.title": (
        "The rolling rate of each of the last 30 days; dashed: the {tier} line",
        "近 30 天每天的滚动比率；虚线为{tier}线",
    ),
    "sparkline.empty": ("No orders in 30 days", "近 30 天无订单"),
    "filter.none": (
        "No store is in this state.",
        "没有处于该状态的店铺。",
    ),
    "filter.show_all": ("Show every store", "显示全部店铺"),
    "empty.title": ("No store yet", "还没有店铺"),
    "empty.lede": (
        "Stores appear here with their first order or refund. Any of these gets you started:",
        "店铺在收到第一笔订单或退款后出现在这里。可以从下面任一方式开始：",
    ),
    "empty.import": (
        "Load your history: export orders (订单查询 → 导出) and after-sales (售后列表 → 导出) "
        "from the merchant backend, then run",
        "导入历史数据：在商家后台导出订单（订单查询 → 导出）和售后（售后列表 → 导出），然后运行",
    ),
    "empty.import_upload": ("or upload the files on", "或在此上传文件："),
    "empty.connect": (
        "Connect a store to the Pinduoduo open platform (POST /v1/connections), "
        "and its orders and after-sales arrive within a minute.",
        "把店铺接入拼多多开放平台（POST /v1/connections），一分钟内即可同步订单与售后。",
    ),
    "empty.demo": (
        "Just looking? Load a demo store cluster (some breached, some approaching):",
        "先看看效果？加载一组演示店铺（有的已超线，有的接近线）：",
    ),
    # store page
    "store.breadcrumb": ("Stores", "店铺总览"),
    "store.window": (
        "Rolling {days}-day window {start} – {end} ({zone})",
        "滚动 {days} 天窗口 {start} – {end}（{zone}）",
    ),
    "store.rate": ("Quality-refund rate", "品质退款率"),
    "store.quality_refunds": ("Counted quality refunds", "计入的品质退款单"),
    "store.orders": ("Orders", "订单"),
    "store.applied": ("Applied (any outcome)", "顾客申请品质退款"),
    "store.pending": ("Still open, can be turned", "仍在处理中、可挽回"),
    "store.tiers": ("Where the store stands", "店铺处罚线"),
    "store.chart": ("Rate and count over 90 days", "近 90 天比率与单数"),
    "store.chart_lede": (
        "Each day's rolling-window rate (line, left) and count (bars, right), "
        "against every tier's rate and count lines (dashed).",
        "每天的滚动窗口比率（折线，左轴）与单数（柱，右轴），虚线为各处罚的比率线与单数线。",
    ),
    "store.chart_label": (
        "Chart: the rolling rate over 90 days, from {first} to {last}",
        "图表：近 90 天滚动比率，从 {first} 到 {last}",
    ),
    "store.chart_table": ("The chart's figures as a table", "以表格查看图表数据"),
    "chart.rate": ("Rate", "比率"),
    "chart.count": ("Quality refunds", "品质退款单"),
    "chart.platform": ("Platform's rate", "平台显示比率"),
    "col.day": ("Day", "日期"),
    "store.platform": ("The platform's own figures", "平台后台显示的数字"),
    "store.platform_none": (
        "No platform figures yet. Type in what the merchant backend shows for a day with "
        "PUT /v1/stores/{store}/platform-figures/{{date}}, and it appears beside ours.",
        "尚无平台数字。用 PUT /v1/stores/{store}/platform-figures/{{date}} 录入商家后台某天显示的数字，"
        "即可与我们的数字对照。",
    ),
    "store.platform_lede": (
        "What the merchant backend showed for a day beside our figure for the window ending that "
        "day: a steady drift says the policy (reasons, window, basis) counts differently.",
        "商家后台某天显示的数字与我们截至当天窗口的数字对照：偏差稳定说明策略（原因、窗口、计数口径）与平台不同。",
    ),
    "col.platform_rate": ("Platform rate", "平台比率"),
    "col.our_rate": ("Our rate", "我们的比率"),
    "col.drift": ("Drift", "偏差"),
    "store.products": ("Products, worst first", "商品（最严重的在前）"),
    "store.products_none": (
        "No product has orders or refunds in the window.",
        "窗口内没有商品数据。",
    ),
    "store.products_more": (
        "Showing {shown} of {total} products.",
        "显示 {total} 个商品中的 {shown} 个。",
    ),
    "col.product": ("Product", "商品"),
    "store.skus": ("SKUs of the products at risk", "风险商品的 SKU"),
    "col.sku": ("SKU", "SKU"),
    "store.skus_lede": (
        "A wrong colour or size shows on one SKU long before it shows on the product.",
        "颜色、尺码不对，往往先在某个 SKU 上显现，远早于整个商品。",
    ),
    "store.skus_none": ("No product is at risk.", "没有风险商品。"),
    "store.skus_more": ("Showing the worst {n}.", "显示最严重的 {n} 个。"),
    "store.refunds": (
        "Quality refunds you can still turn, oldest first",
        "可挽回的品质退款（最早的在前）",
    ),
    "store.refunds_lede": (
        "Each is counted now and still open: if the buyer withdraws it, it leaves the count.",
        "这些退款当前计入且仍在处理中：买家撤销后即不再计入。",
    ),
    "store.refunds_none": ("No open quality refund in the window.", "窗口内没有处理中的品质退款。"),
    "store.refunds_more": ("Showing the oldest {n}.", "显示最早的 {n} 条。"),
    "col.requested": ("Requested", "申请时间"),
    "col.open_for": ("Open for", "已等待"),
    "col.refund": ("Refund", "售后单"),
    "col.order": ("Order", "订单"),
    "col.reason": ("Reason", "原因"),
    "col.kind": ("Kind", "类型"),
    "col.stage": ("Stage", "进度"),
    "store.breakdowns": ("Where the refunds come from", "退款来自哪里"),
    "store.breakdowns_lede": (
        "Over the same window: orders and their quality refunds by courier and by hours to "
        "ship; the counted quality refunds by reason and by kind.",
        "同一窗口内：按快递、发货时长拆分订单及其品质退款；按原因、类型拆分计入的品质退款。",
    ),
    "breakdown.empty": ("Nothing in the window.", "窗口内无数据。"),
    "breakdown.courier": ("By courier", "按快递"),
    "breakdown.ship_hours": ("By hours to ship", "按发货时长"),
    "breakdown.reason": ("By reason", "按原因"),
    "breakdown.kind": ("By kind", "按类型"),
    "breakdown.none_key": ("(none)", "（无）"),
    "store.alerts": ("Latest alerts of this store", "该店铺最近的预警"),
    "store.alerts_all": ("All alerts of this store", "该店铺全部预警"),
    "store.alerts_none": ("No alert yet.", "暂无预警。"),
    # alerts page
    "alerts.title": ("Alerts", "预警"),
    "alerts.lede": (
        "Every change of state, newest first. A silence holds back sending; the state "
        "and the record stay.",
        "每次状态变化，最新的在前。静默只暂停推送，状态与记录照常保留。",
    ),
    "alerts.filter": ("Filter", "筛选"),
    "alerts.any_store": ("Any store", "全部店铺"),
    "alerts.any_tier": ("Any tier", "全部处罚"),
    "alerts.any_type": ("Any type", "全部类型"),
    "alerts.unacknowledged": ("Not acknowledged only", "只看未确认"),
    "alerts.apply": ("Apply", "应用"),
    "alerts.none": ("No alert matches.", "没有符合条件的预警。"),
    "alerts.older": ("Older alerts", "更早的预警"),
    "alerts.newest": ("Back to the newest", "回到最新"),
    "alert.type.alert.breached": ("Breached", "已超线"),
    "alert.type.alert.approaching": ("Approaching", "接近线"),
    "alert.type.alert.resolved": ("Resolved", "已恢复"),
    "alert.type.alert.reminder": ("Reminder", "提醒"),
    "alert.store_scope": ("whole store", "整店"),
    "alert.silenced": ("Silenced: not sent", "已静默：未推送"),
    "alert.acknowledged": ("Acknowledged by {name} at {time}", "{name} 于 {time} 已确认"),
    "alert.acknowledge": ("Acknowledge", "确认"),
    "alert.silence_24h": ("Silence 24 h", "静默 24 小时"),
    "alert.figures": ("{rate} ({count} / {orders})", "{rate}（{count} / {orders}）"),
    "silence.title": ("Silence alerts", "静默预警"),
    "silence.lede": (
        "Hold back sending for a store, a product or a tier until a time.",
        "在指定时间前暂停某店铺、商品或处罚的推送。",
    ),
    "silence.store": ("Store", "店铺"),
    "silence.all_stores": ("Every store", "全部店铺"),
    "silence.product": ("Product (optional)", "商品（可选）"),
    "silence.tier": ("Tier", "处罚"),
    "silence.any_tier": ("Every tier", "全部处罚"),
    "silence.for": ("For", "时长"),
    "silence.hours": ("{n} h", "{n} 小时"),
    "silence.days": ("{n} days", "{n} 天"),
    "silence.comment": ("Note (optional)", "备注（可选）"),
    "silence.submit": ("Silence", "静默"),
    "silence.active": ("Silences in force", "生效中的静默"),
    "silence.none": ("No silence in force.", "没有生效中的静默。"),
    "silence.until": ("until {time}", "至 {time}"),
    # webhooks page
    "webhooks.title": ("Webhooks", "推送"),
    "webhooks.lede": (
        "Where alerts go, how each delivery went, and every attempt. "
        "A delivery is retried with backoff, then marked failed.",
        "预警推送到哪里、每次推送的结果与每一次尝试。失败会按退避重试，之后标记为失败。",
    ),
    "webhooks.zone": ("Times in {zone}.", "时间按 {zone} 显示。"),
    "webhooks.none": (
        "No webhook yet. Subscribe one with POST /v1/webhooks "
        "(standard JSON, or a DingTalk, WeCom or Feishu group robot).",
        "还没有推送。用 POST /v1/webhooks 订阅（标准 JSON，或钉钉、企业微信、飞书群机器人）。",
    ),
    "webhooks.enabled": ("Enabled", "已启用"),
    "webhooks.disabled": ("Disabled: {reason}", "已停用：{reason}"),
    "webhooks.failing_since": ("failing since {time}", "自 {time} 起失败"),
    "webhooks.filters": ("Filters", "过滤"),
    "webhooks.filters_none": ("every alert", "全部预警"),
    "stat.delivered": ("Succeeded", "成功"),
    "stat.pending": ("Pending", "待发送"),
    "stat.failed": ("Failed", "失败"),
    "stat.cancelled": ("Cancelled", "已取消"),
    "webhooks.recover": ("Re-send failed deliveries since", "重新发送此后失败的推送"),
    "webhooks.recover_submit": ("Recover", "恢复"),
    "webhooks.deliveries": ("Latest deliveries", "最近的推送"),
    "webhooks.deliveries_of": ("Latest deliveries of webhook {id}", "推送 {id} 最近的推送"),
    "webhooks.deliveries_none": ("No delivery yet.", "暂无推送记录。"),
    "webhooks.show_deliveries": ("Its deliveries", "查看推送记录"),
    "webhooks.all_deliveries": ("Every webhook's deliveries", "全部推送记录"),
    "col.webhook": ("Webhook", "推送"),
    "col.event": ("Event", "事件"),
    "col.status": ("Status", "状态"),
    "col.attempts": ("Attempts", "尝试次数"),
    "col.next_attempt": ("Next attempt", "下次尝试"),
    "col.last_result": ("Last result", "最近结果"),
    "col.created": ("Created", "创建时间"),
    "col.actions": ("Actions", "操作"),
    "delivery.retry": ("Retry now", "立即重试"),
    "delivery.attempts": ("Attempt log ({n})", "尝试记录（{n}）"),
    "delivery.no_attempt": ("Not attempted yet.", "尚未尝试。"),
    "attempt.duration": ("{ms} ms", "{ms} 毫秒"),
    "status.pending": ("Pending", "待发送"),
    "status.delivering": ("Sending", "发送中"),
    "status.delivered": ("Succeeded", "成功"),
    "status.failed": ("Failed", "失败"),
    "status.cancelled": ("Cancelled", "已取消"),
    "period.1d": ("the last 24 hours", "最近 24 小时"),
    "period.7d": ("the last 7 days", "最近 7 天"),
    "period.30d": ("the last 30 days", "最近 30 天"),
    # connections & imports page
    "connections.title": ("Connections and imports", "对接与导入"),
    "connections.lede": (
        "How each store's data arrives: a marketplace connection that syncs by itself, "
        "or files you export and import.",
        "各店铺数据的来源：自动同步的平台对接，或您导出后导入的文件。",
    ),
    "connections.dev_key": (
        "Connection credentials are encrypted with a development key file in the data "
        "folder, because REFUNDWATCH_SECRET_KEY is not set. Set it before production: losing "
        "that file means giving every connection its secret and token again.",
        "未设置 REFUNDWATCH_SECRET_KEY，对接凭据正用数据目录中的开发密钥文件加密。"
        "上线前请设置该变量：丢失该文件后，需要为每个对接重新填写密钥与令牌。",
    ),
    "connections.connections": ("Marketplace connections", "平台对接"),
    "connections.none": (
        "No store is connected. Register one with POST /v1/connections "
        "(client_id, client_secret and the store's access_token from the Pinduoduo open "
        "platform, with its refresh_token so an expired token renews itself); it syncs "
        "within a minute.",
        "还没有对接店铺。用 POST /v1/connections 注册（拼多多开放平台的 client_id、client_secret "
        "和店铺 access_token，并附上 refresh_token，令牌过期时自动续期），一分钟内开始同步。",
    ),
    "col.platform": ("Platform", "平台"),
    "col.synced_through": ("Synced through", "已同步至"),
    "col.lag": ("Lag", "延迟"),
    "col.backfill": ("History loaded", "历史已加载"),
    "col.events": ("Events", "事件"),
    "col.last_error": ("Last error", "最近错误"),
    "conn.status.backfilling": ("Loading history", "加载历史中"),
    "conn.status.live": ("Live", "实时同步"),
    "conn.status.failing": ("Failing", "失败"),
    "conn.status.disabled": ("Paused", "已暂停"),
    "conn.failing_hint": (
        "Re-authorise: PATCH /v1/connections/{id} with a new access_token and refresh_token.",
        "请重新授权：用新的 access_token 和 refresh_token 调用 PATCH /v1/connections/{id}。",
    ),
    "events.summary": (
        "{accepted} accepted · {duplicate} duplicate · {rejected} rejected",
        "接收 {accepted} · 重复 {duplicate} · 拒绝 {rejected}",
    ),
    "upload.title": ("Import an export", "导入导出文件"),
    "upload.lede": (
        "The order export (订单查询 → 导出, CSV), the after-sales export (售后列表 → 导出, "
        "XLSX or CSV), or an event file (JSONL or CSV). Importing the same file again "
        "adds nothing.",
        "订单导出（订单查询 → 导出，CSV）、售后导出（售后列表 → 导出，XLSX 或 CSV）"
        "或事件文件（JSONL 或 CSV）。重复导入同一文件不会重复计数。",
    ),
    "upload.file": ("File", "文件"),
    "upload.store": ("Store id", "店铺 ID"),
    "upload.store_hint": (
        "Required for the merchant-backend exports: their rows name no store.",
        "商家后台导出文件必填：文件中没有店铺信息。",
    ),
    "upload.format": ("Format", "格式"),
    "upload.format_auto": ("Detect from the header", "根据表头自动识别"),
    "upload.dry_run": ("Dry run: check and count, store nothing", "试运行：只检查计数，不写入"),
    "upload.submit": ("Import", "导入"),
    "upload.no_file": ("Choose a file to import.", "请选择要导入的文件。"),
    "upload.bad_store": (
        "A store id is 1–64 letters, digits or . _ : -",
        "店铺 ID 为 1–64 位字母、数字或 . _ : -",
    ),
    "upload.bad_format": ("Unknown format.", "未知格式。"),
    "upload.cli": ("From a terminal, the same import is", "在终端中可以这样导入"),
    "imports.title": ("Imports, newest first", "导入记录（最新的在前）"),
    "imports.none": ("No import yet.", "暂无导入记录。"),
    "col.file": ("File", "文件"),
    "col.format": ("Format", "格式"),
    "col.progress": ("Progress", "进度"),
    "col.rows": ("Rows", "行数"),
    "col.row_errors": ("Refused rows", "被拒行"),
    "imp.status.queued": ("Queued", "排队中"),
    "imp.status.running": ("Running", "导入中"),
    "imp.status.succeeded": ("Done", "完成"),
    "imp.status.failed": ("Failed", "失败"),
    "imp.status.interrupted": (
        "Interrupted: import it again to finish",
        "已中断：重新导入即可续完",
    ),
    "imp.dry_run": ("dry run", "试运行"),
    "imp.details": ("Details", "详情"),
    "import.title": ("Import {id}: {file}", "导入 {id}：{file}"),
    "import.back": ("Connections and imports", "对接与导入"),
    "import.errors": ("Refused rows (the first {n})", "被拒绝的行（前 {n} 条）"),
    "import.errors_none": ("No row was refused.", "没有被拒绝的行。"),
    "import.unmapped": ("Reason labels counted as “other”", "计为“其他”的原因标签"),
    "import.unmapped_hint": (
        "Map them with --reason-map or the policy's reason_aliases to count them right.",
        "可用 --reason-map 或策略的 reason_aliases 映射这些标签。",
    ),
    "import.skipped": ("Rows that are no events", "不构成事件的行"),
    "import.failure": ("Why it stopped", "停止原因"),
    "col.row": ("Row", "行"),
    "col.column": ("Column", "列"),
    "col.code": ("Code", "代码"),
    "col.message": ("Message", "说明"),
    "col.label": ("Label", "标签"),
    "col.count": ("Count", "次数"),
    # notices after an action
    "notice.silenced": (
        "Silenced for {n} hours: the alerts are still recorded, not sent.",
        "已静默 {n} 小时：预警照常记录，但不推送。",
    ),
    "notice.acknowledged": ("Alert acknowledged.", "预警已确认。"),
    "notice.retried": ("Delivery {id} queued to be sent now.", "推送 {id} 已排队，立即重发。"),
    "notice.recovered": ("{n} failed deliveries queued again.", "已重新排队 {n} 条失败的推送。"),
    "notice.imported": (
        "Import {id} started; this page shows its progress.",
        "导入 {id} 已开始，可在本页查看进度。",
    ),
    # refunds' kinds and stages
    "kind.refund_only_unshipped": ("refund only, unshipped", "未发货仅退款"),
    "kind.return_refund": ("return and refund", "退货退款"),
    "kind.intercept": ("intercepted", "拦截/中间退货"),
    "kind.refund_only": ("refund only", "仅退款"),
    "stage.requested": ("requested", "已申请"),
    "stage.approved": ("approved", "已同意"),
    "stage.return_shipped": ("goods sent back", "买家已退货"),
    "stage.return_received": ("goods received", "已收到退货"),
    "unit.d": ("{n} d", "{n} 天"),
    "unit.h": ("{n} h", "{n} 小时"),
    "unit.min": ("{n} min", "{n} 分钟"),
    "unit.s": ("{n} s", "{n} 秒"),
    # errors
    "error.title": ("Something is wrong", "出错了"),
    "error.back": ("Back to the stores", "返回店铺总览"),
    "error.not_found": ("There is nothing here.", "这里什么也没有。"),
    "error.forbidden_admin": (
        "This action needs an admin key. Sign in with one to change things.",
        "该操作需要管理员密钥，请用管理员密钥登录。",
    ),
    "error.csrf": (
        "This form had expired or did not come from this console. Reload the page and try again.",
        "表单已过期或并非来自本控制台，请刷新页面后重试。",
    ),
    "error.invalid": ("The request is not valid: {detail}", "请求无效：{detail}"),
    "error.internal": ("An unexpected error occurred.", "发生了意外错误。"),
}


# Tier names as a heading reads them: the policies' own labels, capitalised in English.
_TIER_LABELS: Final[dict[str, dict[str, str]]] = {
    "zh": {str(tier): label for tier, label in TIER_LABELS_ZH.items()},
    "en": {str(tier): label[:1].upper() + label[1:] for tier, label in TIER_LABELS_EN.items()},
}


@dataclass(frozen=True, slots=True)
class Translator:
    """``t("key", name=…)`` in one language; an unknown key shows itself (and a test fails)."""

    language: str

    def __call__(self, key: str, **fields: object) -> str:
        pair = MESSAGES.get(key)
        if pair is None:
            return key
        text = pair[self._index]
        return text.format(**fields) if fields else text

    @property
    def _index(self) -> int:
        return 1 if self.language == "zh" else 0

    def tier(self, name: str) -> str:
        """A tier's name: 降权 / demotion…"""
        return _TIER_LABELS[self.language].get(name, name)

    def state(self, state: str) -> str:
        """A tier state in words (always shown beside its colour)."""
        return self(f"state.{state}")

    def reason(self, code: str | None) -> str:
        """A reason code as the platform's label (质量问题) or in English."""
        if code is None:
            return "—"
        labels = REASON_LABELS_ZH if self.language == "zh" else REASON_LABELS_EN
        return labels.get(code, code)

    def kind(self, code: str | None) -> str:
        if code is None:
            return "—"
        return self(f"kind.{code}") if f"kind.{code}" in MESSAGES else code

    def stage(self, name: str | None) -> str:
        if name is None:
            return "—"
        return self(f"stage.{name}") if f"stage.{name}" in MESSAGES else name

    def duration(self, seconds: float) -> str:
        """``3 d`` / ``3 天``: a duration in its largest whole unit."""
        amount, unit = duration_parts(seconds)
        return self(f"unit.{unit}", n=amount)
