"""A faithful fake of the Pinduoduo open-platform router, over real HTTP on 127.0.0.1.

It holds its own world -- apps (``client_id`` → ``client_secret``) and stores (by
``access_token``) with orders and after-sales whose status and update time
change when a test says so -- and its own clock, which a test moves (and may
set apart from ours, to play clock skew).

It answers ``pdd.order.number.list.increment.get`` and
``pdd.refund.list.increment.get`` the documented way (``{"<api>_response":
{"total_count", "order_sn_list" | "refund_list", "request_id"}}``, records
ordered by update time, ``page``/``page_size`` paging) and checks every call
strictly, like the real router: the required common parameters, the
``sign`` (recomputed with the app's secret), the ``timestamp`` against its own
clock, the token (unknown, expired, or another app's), and the API's
parameters (both window bounds, ``start < end``, at most 30 minutes,
``page >= 1``, ``page_size`` 1–100, the status filters). Refusals come in the
documented ``error_response`` shape. Where the platform's exact code for a
refusal is not documented in the SDKs (a bad parameter, a stale timestamp), the
fake says ``10000 参数错误`` with a ``sub_msg`` naming the problem.

The ``timestamp`` may differ from the fake's clock by ``timestamp_tolerance``
(10 minutes unless told; the real tolerance is not published in the SDKs).
Every answer carries a ``Date`` header from the fake's clock, as a real server's
does, which is how a client can learn the platform's time.

Faults a test can inject: ``throttle_next(n, code)``, ``throttle_every(k,
code)``, ``malform_next(n, kind)`` -- an injected fault answers before any
check runs, as a throttling front end would -- and ``on_call``, a hook run after
a call is checked and before it is answered (update a record while the
connector pages).
Every call is logged in ``calls`` (API, parameters, window, signature verdict,
outcome, error code, total and records returned).

Fast enough for a benchmark: records are indexed by (update time, key), so a
window is two bisections and a page is a slice; :func:`populate` generates a
store's month of orders and after-sales in one sort. Everything is bounded:
every read has a timeout and ``stop()`` ends every connection.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import gc
import itertools
import random
import time
import zlib
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any, Literal
from urllib.parse import parse_qsl

import orjson

from app.clock import Clock
from app.connectors.pdd.signing import sign

ORDER_API = "pdd.order.number.list.increment.get"
REFUND_API = "pdd.refund.list.increment.get"
TOKEN_REFRESH_API = "pdd.pop.auth.token.refresh"
TOKEN_REFRESH_RESPONSE = "pop_auth_token_refresh_response"

READ_TIMEOUT = 5.0  # a request must arrive whole within this
IDLE_TIMEOUT = 30.0  # a kept-alive connection with nothing to say is closed after this
MAX_WINDOW_SECONDS = 30 * 60
MAX_PAGE_SIZE = 100
SHANGHAI_OFFSET = 8 * 3600  # Asia/Shanghai has kept +08:00 since 1991

MalformKind = Literal[
    "not_json", "wrong_shape", "missing_total_count", "bad_list", "http_502", "error_without_code"
]
Outcome = Literal["ok", "error", "throttled", "malformed"]


def platform_time(moment: datetime | int | None) -> str:
    """A time as the platform writes it (naive Shanghai ``YYYY-MM-DD HH:MM:SS``); "" for none."""
    if moment is None:
        return ""
    epoch = moment if isinstance(moment, int) else int(moment.timestamp())
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(epoch + SHANGHAI_OFFSET))


def _epoch(moment: datetime) -> int:
    if moment.tzinfo is None:
        raise ValueError("fake gateway times must be timezone-aware")
    return int(moment.timestamp())


# --------------------------------------------------------------------------- the world


class _Index:
    """Records of one kind, ordered by (update epoch, key): a window is a slice."""

    def __init__(self) -> None:
        self.records: dict[str, dict[str, Any]] = {}
        self._updated: dict[str, int] = {}
        self._order: list[tuple[int, str]] = []

    def put(self, key: str, record: dict[str, Any], updated: int) -> None:
        old = self._updated.get(key)
        if old is not None:
            at = bisect.bisect_left(self._order, (old, key))
            del self._order[at]
        self.records[key] = record
        self._updated[key] = updated
        bisect.insort(self._order, (updated, key))

    def bulk_put(self, items: Iterable[tuple[str, dict[str, Any], int]]) -> None:
        """Add many new records with one sort (the benchmark's month of data)."""
        for key, record, updated in items:
            if key in self._updated:
                raise ValueError(f"duplicate record {key}")
            self.records[key] = record
            self._updated[key] = updated
            self._order.append((updated, key))
        self._order.sort()

    def window(self, start: int, end: int) -> list[tuple[int, str]]:
        """Entries updated in ``[start, end]`` (both inclusive), oldest first."""
        lo = bisect.bisect_left(self._order, (start, ""))
        hi = bisect.bisect_right(self._order, (end, "\U0010ffff"))
        return self._order[lo:hi]

    def __len__(self) -> int:
        return len(self.records)


def _times(fields: dict[str, Any]) -> dict[str, Any]:
    """Datetimes written the platform's way; None as the empty string it sends."""
    return {
        name: platform_time(value) if isinstance(value, datetime) or value is None else value
        for name, value in fields.items()
    }


_ORDER_TIMES = ("confirm_time", "shipping_time", "receive_time", "created_time", "pay_time")
_REFUND_TIMES = ("created_time", "updated_time", "confirm_time")


class FakeStore:
    """One authorised store: its token, its app, its orders and after-sales."""

    def __init__(
        self, gateway: FakePddGateway, access_token: str, client_id: str, mall_id: str
    ) -> None:
        self._gateway = gateway
        self.access_token = access_token
        self.client_id = client_id
        self.mall_id = mall_id
        self.token_expires_at: datetime | None = None
        self.refresh_token: str | None = None
        self.refreshes = 0
        self.orders = _Index()
        self.refunds = _Index()

    def expire_token(self) -> None:
        """The token is expired from now on (10019)."""
        self.token_expires_at = self._gateway.clock.now()

    def give_refresh_token(self, refresh_token: str) -> None:
        """The store's refresh token: ``pdd.pop.auth.token.refresh`` trades it for a new pair."""
        if self.refresh_token is not None:
            self._gateway.refresh_tokens.pop(self.refresh_token, None)
        self.refresh_token = refresh_token
        self._gateway.refresh_tokens[refresh_token] = self

    # -- orders

    def add_order(
        self,
        order_sn: str,
        *,
        goods_id: int = 100001,
        sku_id: int = 200001,
        pay_amount: str = "19.90",
        confirm_time: datetime | None = None,
        shipping_time: datetime | None = None,
        receive_time: datetime | None = None,
        updated_at: datetime | None = None,
        logistics_id: int = 0,
        **extra: Any,
    ) -> dict[str, Any]:
        """Add an order. Its ``updated_at`` is the latest of its times unless given
        (or the fake's now when it has none)."""
        times = [t for t in (confirm_time, shipping_time, receive_time) if t is not None]
        updated = updated_at or (max(times) if times else self._gateway.clock.now())
        record: dict[str, Any] = {
            "order_sn": order_sn,
            "confirm_status": 1 if confirm_time else 0,
            "confirm_time": platform_time(confirm_time),
            "created_time": platform_time(confirm_time),
            "pay_time": platform_time(confirm_time),
            "pay_amount": pay_amount,
            "goods_amount": pay_amount,
            "discount_amount": "0.00",
            "postage": "0.00",
            "shipping_time": platform_time(shipping_time),
            "receive_time": platform_time(receive_time),
            "order_status": 3 if receive_time else 2 if shipping_time else 1,
            "refund_status": 1,
            "after_sales_status": 0,
            "is_lucky_flag": 1,
            "trade_type": 0,
            "logistics_id": logistics_id,
            "tracking_number": f"YT{order_sn[-10:]}" if shipping_time else "",
            "item_list": [
                {
                    "goods_id": goods_id,
                    "sku_id": sku_id,
                    "goods_count": 1,
                    "goods_name": f"商品{goods_id}",
                    "goods_price": pay_amount,
                    "goods_spec": "默认",
                    "outer_goods_id": "",
                    "outer_id": "",
                }
            ],
            **_times(extra),
        }
        record["updated_at"] = platform_time(updated)
        self.orders.put(order_sn, record, _epoch(updated))
        return record

    def update_order(
        self, order_sn: str, *, at: datetime | None = None, **changes: Any
    ) -> dict[str, Any]:
        """Change an order's fields; it moves to ``at`` (default: the fake's now)."""
        updated = at or self._gateway.clock.now()
        record = {**self.orders.records[order_sn], **_times(changes)}
        if "shipping_time" in changes or "receive_time" in changes:
            record["order_status"] = (
                3 if record["receive_time"] else 2 if record["shipping_time"] else 1
            )
        record["updated_at"] = platform_time(updated)
        self.orders.put(order_sn, record, _epoch(updated))
        return record

    # -- after-sales

    def add_refund(
        self,
        refund_id: int,
        order_sn: str,
        *,
        goods_id: int = 100001,
        sku_id: str = "200001",
        after_sales_type: int = 2,
        after_sales_status: int = 2,
        after_sale_reason: str = "质量问题",
        created_time: datetime | None = None,
        updated_time: datetime | None = None,
        refund_amount: str = "19.90",
        **extra: Any,
    ) -> dict[str, Any]:
        """Add an after-sale (created now unless ``created_time`` is given)."""
        created = created_time or self._gateway.clock.now()
        updated = updated_time or created
        record: dict[str, Any] = {
            "id": refund_id,
            "order_sn": order_sn,
            "goods_id": goods_id,
            "sku_id": sku_id,
            "goods_name": f"商品{goods_id}",
            "goods_number": "1",
            "goods_price": refund_amount,
            "order_amount": refund_amount,
            "refund_amount": refund_amount,
            "discount_amount": "0.00",
            "after_sales_type": after_sales_type,
            "after_sales_status": after_sales_status,
            "after_sale_reason": after_sale_reason,
            "created_time": platform_time(created),
            "updated_time": platform_time(updated),
            "confirm_time": platform_time(created),
            "tracking_number": "",
            "shipping_name": "",
            "speed_refund_flag": 0,
            "speed_refund_status": "",
            "dispute_refund_status": 0,
            "user_shipping_status": "0",
            **_times(extra),
        }
        self.refunds.put(str(refund_id), record, _epoch(updated))
        return record

    def update_refund(
        self, refund_id: int, *, at: datetime | None = None, **changes: Any
    ) -> dict[str, Any]:
        """Change an after-sale (typically its status); ``updated_time`` becomes
        ``at`` (default: the fake's now), so it shows up in a later window."""
        updated = at or self._gateway.clock.now()
        record = {**self.refunds.records[str(refund_id)], **_times(changes)}
        record["updated_time"] = platform_time(updated)
        self.refunds.put(str(refund_id), record, _epoch(updated))
        return record


# --------------------------------------------------------------------------- calls


@dataclass
class FakeCall:
    """What one request asked and how the fake answered."""

    number: int
    at: datetime
    params: dict[str, str]
    api: str | None = None
    store: str | None = None
    start: int | None = None
    end: int | None = None
    page: int | None = None
    page_size: int | None = None
    signature_ok: bool | None = None
    outcome: Outcome = "ok"
    error_code: int | None = None
    sub_msg: str | None = None
    total_count: int | None = None
    returned: int = 0

    @property
    def span_seconds(self) -> int | None:
        """``end_updated_at - start_updated_at``, when both were readable."""
        if self.start is None or self.end is None:
            return None
        return self.end - self.start


class _Refusal(Exception):
    def __init__(self, code: int, msg: str, sub_msg: str | None = None) -> None:
        super().__init__(msg)
        self.code = code
        self.msg = msg
        self.sub_msg = sub_msg


def _bad_param(sub_msg: str) -> _Refusal:
    return _Refusal(10000, "参数错误", sub_msg)


# --------------------------------------------------------------------------- the gateway


class FakePddGateway:
    """The fake router: its world, its clock, its checks, its faults, its call log."""

    def __init__(
        self, clock: Clock, *, timestamp_tolerance: timedelta = timedelta(minutes=10)
    ) -> None:
        self.clock = clock
        self.timestamp_tolerance = timestamp_tolerance
        self.apps: dict[str, str] = {}
        self.stores: dict[str, FakeStore] = {}
        self.refresh_tokens: dict[str, FakeStore] = {}
        self.calls: list[FakeCall] = []
        self.on_call: Callable[[FakeCall], None] | None = None
        self._throttle_next: deque[int] = deque()
        self._throttle_every: tuple[int, int] | None = None
        self._malform_next: deque[MalformKind] = deque()
        self._numbers = itertools.count(1)
        self._server: asyncio.Server | None = None
        self._port = 0
        self._connections: set[asyncio.Task[None]] = set()
        self._writers: set[asyncio.StreamWriter] = set()

    # -- the world

    def add_app(self, client_id: str, client_secret: str) -> None:
        self.apps[client_id] = client_secret

    def add_store(
        self, access_token: str, *, client_id: str, mall_id: str | None = None
    ) -> FakeStore:
        if client_id not in self.apps:
            raise ValueError(f"add the app {client_id} first")
        store = FakeStore(self, access_token, client_id, mall_id or f"mall-{len(self.stores) + 1}")
        self.stores[access_token] = store
        return store

    # -- faults

    def throttle_next(self, n: int, code: int = 52101) -> None:
        """Refuse the next ``n`` calls with a throttling error."""
        self._throttle_next.extend([code] * n)

    def throttle_every(self, k: int, code: int = 70031) -> None:
        """Refuse every ``k``-th call (counted over all calls); 0 turns it off."""
        self._throttle_every = (k, code) if k > 0 else None

    def malform_next(self, n: int = 1, kind: MalformKind = "not_json") -> None:
        """Answer the next ``n`` calls with a broken answer of this kind."""
        self._malform_next.extend([kind] * n)

    # -- answering (usable without HTTP, e.g. by a benchmark's inner loop)

    def answer(self, form: dict[str, str]) -> tuple[int, bytes]:
        """The HTTP status and body the router gives for this form; logs the call."""
        call = FakeCall(number=next(self._numbers), at=self.clock.now(), params=dict(form))
        self.calls.append(call)
        request_id = f"{_epoch(call.at)}{call.number:06d}"
        call.api = form.get("type")
        try:
            code = self._injected_throttle(call.number)
            if code is not None:
                call.outcome = "throttled"
                raise _Refusal(code, "当前接口被限流，请稍后重试", "isv.api-throttled")
            if self._malform_next:
                call.outcome = "malformed"
                return self._malformed(self._malform_next.popleft(), call, request_id)
            self._check_signed(form, call)
            if form["type"] == TOKEN_REFRESH_API:
                body = self._refresh(form, call, request_id)
            else:
                store, api, params = self._check(form, call)
                if self.on_call is not None:
                    self.on_call(call)
                body = self._query(store, api, params, call, request_id)
        except _Refusal as refusal:
            if call.outcome == "ok":
                call.outcome = "error"
            call.error_code = refusal.code
            call.sub_msg = refusal.sub_msg
            error = {
                "error_response": {
                    "error_code": refusal.code,
                    "error_msg": refusal.msg,
                    "sub_code": str(refusal.code),
                    "sub_msg": refusal.sub_msg or "",
                    "request_id": request_id,
                }
            }
            return 200, orjson.dumps(error)
        return 200, body

    def _injected_throttle(self, number: int) -> int | None:
        if self._throttle_next:
            return self._throttle_next.popleft()
        if self._throttle_every is not None and number % self._throttle_every[0] == 0:
            return self._throttle_every[1]
        return None

    def _malformed(self, kind: MalformKind, call: FakeCall, request_id: str) -> tuple[int, bytes]:
        key = (
            "order_sn_increment_get_response"
            if call.api == ORDER_API
            else "refund_increment_get_response"
        )
        if kind == "not_json":
            return 200, b"<html><body>upstream hiccup</body></html>"
        if kind == "http_502":
            return 502, b"<html><body>502 Bad Gateway</body></html>"
        if kind == "wrong_shape":
            return 200, orjson.dumps({"unexpected_response": {"request_id": request_id}})
        if kind == "missing_total_count":
            return 200, orjson.dumps(
                {key: {"order_sn_list": [], "refund_list": [], "request_id": request_id}}
            )
        if kind == "bad_list":
            return 200, orjson.dumps(
                {
                    key: {
                        "total_count": 3,
                        "order_sn_list": "oops",
                        "refund_list": "oops",
                        "request_id": request_id,
                    }
                }
            )
        return 200, orjson.dumps({"error_response": {"error_msg": "?", "request_id": request_id}})

    def _refresh(self, form: dict[str, str], call: FakeCall, request_id: str) -> bytes:
        """``pdd.pop.auth.token.refresh``: the old access and refresh tokens stop working."""
        store = self.refresh_tokens.get(form.get("refresh_token", ""))
        if store is None or store.client_id != form["client_id"]:
            raise _Refusal(
                10019, "refresh_token已过期", "refresh_token 不存在或已失效，请商家重新授权"
            )
        store.refreshes += 1
        call.store = store.mall_id
        old_access, old_refresh = store.access_token, store.refresh_token
        store.access_token = f"{old_access.split('~')[0]}~{store.refreshes}"
        self.stores.pop(old_access, None)
        self.stores[store.access_token] = store
        store.token_expires_at = None
        store.give_refresh_token(f"{(old_refresh or 'r').split('~')[0]}~{store.refreshes}")
        expires_at = _epoch(self.clock.now()) + 86_400
        return orjson.dumps(
            {
                TOKEN_REFRESH_RESPONSE: {
                    "access_token": store.access_token,
                    "expires_at": expires_at,
                    "expires_in": 86_400,
                    "refresh_token": store.refresh_token,
                    "refresh_token_expires_at": expires_at + 30 * 86_400,
                    "owner_id": store.mall_id,
                    "owner_name": store.mall_id,
                    "scope": [ORDER_API, REFUND_API],
                    "request_id": request_id,
                }
            }
        )

    def _check_signed(self, form: dict[str, str], call: FakeCall) -> None:
        """The checks of every call: parameters, the app, the signature, the clock."""
        for name in ("type", "client_id", "timestamp", "sign"):
            if not form.get(name):
                raise _bad_param(f"缺少必选参数: {name}")
        if form.get("data_type", "JSON").upper() != "JSON":
            raise _bad_param("data_type 只支持 JSON")
        if form.get("version", "V1") != "V1":
            raise _bad_param("version 只支持 V1")
        secret = self.apps.get(form["client_id"])
        if secret is None:
            raise _bad_param("client_id 不存在")
        call.signature_ok = sign(form, secret) == form["sign"]
        if not call.signature_ok:
            raise _Refusal(20004, "签名验证失败", "sign 与按 client_secret 计算的结果不一致")
        try:
            timestamp = int(form["timestamp"])
        except ValueError:
            raise _bad_param("timestamp 必须是 Unix 秒") from None
        skew = abs(timestamp - self.clock.now().timestamp())
        if skew > self.timestamp_tolerance.total_seconds():
            raise _bad_param(f"timestamp 与平台时间相差 {int(skew)} 秒")

    def _check(self, form: dict[str, str], call: FakeCall) -> tuple[FakeStore, str, dict[str, int]]:
        store = self.stores.get(form.get("access_token", ""))
        if store is None or store.client_id != form["client_id"]:
            raise _Refusal(10019, "access_token已过期", "access_token 不存在或不属于该应用")
        if store.token_expires_at is not None and self.clock.now() >= store.token_expires_at:
            raise _Refusal(10019, "access_token已过期", "请商家重新授权")
        call.store = store.mall_id
        api = form["type"]
        if api not in (ORDER_API, REFUND_API):
            raise _bad_param(f"接口 {api} 不存在")
        required = (
            ("start_updated_at", "end_updated_at", "is_lucky_flag", "order_status", "refund_status")
            if api == ORDER_API
            else ("start_updated_at", "end_updated_at", "after_sales_status", "after_sales_type")
        )
        params: dict[str, int] = {"page": 1, "page_size": MAX_PAGE_SIZE}
        for name in (*required, "page", "page_size"):
            text = form.get(name, "")
            if text == "":
                if name in required:
                    raise _bad_param(f"缺少必选参数: {name}")
                continue
            try:
                params[name] = int(text)
            except ValueError:
                raise _bad_param(f"{name} 必须是整数") from None
        call.start, call.end = params["start_updated_at"], params["end_updated_at"]
        call.page, call.page_size = params["page"], params["page_size"]
        if call.start >= call.end:
            raise _bad_param("start_updated_at 必须小于 end_updated_at")
        if call.end - call.start > MAX_WINDOW_SECONDS:
            raise _bad_param("开始时间结束时间间距不超过 30 分钟")
        if call.page < 1:
            raise _bad_param("page 从 1 开始")
        if not 1 <= call.page_size <= MAX_PAGE_SIZE:
            raise _bad_param("page_size 最大 100")
        if api == ORDER_API:
            if params["is_lucky_flag"] not in (0, 1, 2):
                raise _bad_param("is_lucky_flag 取值 0, 1, 2")
            if params["order_status"] not in (1, 2, 3, 5):
                raise _bad_param("order_status 取值 1, 2, 3, 5")
            if params["refund_status"] not in (1, 2, 3, 4, 5):
                raise _bad_param("refund_status 取值 1-5")
        elif params["after_sales_type"] not in (1, 2, 3, 4, 5):
            raise _bad_param("after_sales_type 取值 1-5")
        return store, api, params

    def _query(
        self,
        store: FakeStore,
        api: str,
        params: dict[str, int],
        call: FakeCall,
        request_id: str,
    ) -> bytes:
        assert call.start is not None and call.end is not None
        assert call.page is not None and call.page_size is not None
        index = store.orders if api == ORDER_API else store.refunds
        entries = index.window(call.start, call.end)
        keep = self._filter(api, params)
        if keep is not None:
            entries = [e for e in entries if keep(index.records[e[1]])]
        offset = (call.page - 1) * call.page_size
        page = [index.records[key] for _, key in entries[offset : offset + call.page_size]]
        call.total_count, call.returned = len(entries), len(page)
        if api == ORDER_API:
            answer: dict[str, Any] = {
                "order_sn_increment_get_response": {
                    "total_count": len(entries),
                    "has_next": offset + len(page) < len(entries),
                    "order_sn_list": page,
                    "request_id": request_id,
                }
            }
        else:
            answer = {
                "refund_increment_get_response": {
                    "total_count": len(entries),
                    "refund_list": page,
                    "request_id": request_id,
                }
            }
        return orjson.dumps(answer)

    @staticmethod
    def _filter(api: str, params: dict[str, int]) -> Callable[[dict[str, Any]], bool] | None:
        """The API's status filters; None when every one says "all" (the fast path)."""
        tests: list[Callable[[dict[str, Any]], bool]] = []
        if api == ORDER_API:
            lucky, status, refund = (
                params["is_lucky_flag"],
                params["order_status"],
                params["refund_status"],
            )
            if lucky:
                tests.append(lambda r: r.get("is_lucky_flag") == lucky)
            if status != 5:
                tests.append(lambda r: r.get("order_status") == status)
            if refund != 5:
                tests.append(lambda r: r.get("refund_status") == refund)
        else:
            kind, status = params["after_sales_type"], params["after_sales_status"]
            if kind != 1:
                tests.append(lambda r: r.get("after_sales_type") == kind)
            if status != 1:
                tests.append(lambda r: r.get("after_sales_status") == status)
        if not tests:
            return None
        return lambda record: all(test(record) for test in tests)

    # -- HTTP

    @property
    def port(self) -> int:
        return self._port

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._port}/api/router"

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self._port)
        self._port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        """Stop listening and end every open connection."""
        if self._server is not None:
            self._server.close()
            self._server = None
        # Closing a connection's transport ends its handler's read (EOF): the
        # handlers finish on their own instead of being cancelled mid-write.
        for writer in list(self._writers):
            writer.close()
        if self._connections:
            _, pending = await asyncio.wait(set(self._connections), timeout=READ_TIMEOUT)
            for task in pending:
                task.cancel()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        self._writers.add(writer)
        try:
            while True:  # keep-alive: one connection carries many calls
                try:
                    async with asyncio.timeout(IDLE_TIMEOUT):
                        head = await reader.readuntil(b"\r\n\r\n")
                except asyncio.IncompleteReadError:
                    return  # the client closed the connection
                async with asyncio.timeout(READ_TIMEOUT):
                    lines = head.decode("latin-1").split("\r\n")
                    method, target, _ = lines[0].split(" ", 2)
                    headers = {
                        name.strip().lower(): value.strip()
                        for name, value in (line.split(":", 1) for line in lines[1:] if line)
                    }
                    body = await reader.readexactly(int(headers.get("content-length", "0")))
                status, answer = self._http_answer(method, target, headers, body)
                writer.write(
                    (
                        f"HTTP/1.1 {status} {'OK' if status == 200 else 'Error'}\r\n"
                        f"Date: {format_datetime(self.clock.now().astimezone(UTC), usegmt=True)}\r\n"
                        "Content-Type: application/json;charset=UTF-8\r\n"
                        f"Content-Length: {len(answer)}\r\n\r\n"
                    ).encode("latin-1")
                    + answer
                )
                await writer.drain()
                if headers.get("connection", "").lower() == "close":
                    return
        except (TimeoutError, ConnectionError, asyncio.IncompleteReadError, ValueError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()
            self._connections.discard(task)
            self._writers.discard(writer)

    def _http_answer(
        self, method: str, target: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, bytes]:
        if method != "POST" or target.split("?", 1)[0] != "/api/router":
            return 404, b'{"message": "not found"}'
        if not headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
            form: dict[str, str] = {}  # the router only reads form fields
        else:
            form = dict(parse_qsl(body.decode("utf-8"), keep_blank_values=True))
        return self.answer(form)


@contextlib.asynccontextmanager
async def running_fake_gateway(clock: Clock) -> AsyncIterator[FakePddGateway]:
    """A started fake on a random loopback port, stopped on exit."""
    fake = FakePddGateway(clock)
    await fake.start()
    try:
        yield fake
    finally:
        await fake.stop()


# --------------------------------------------------------------------------- bulk worlds

_REASONS = ("质量问题", "描述不符", "不想要了", "拍错/多拍", "破损", "发货慢", "其他", "尺码不合适")


def populate(
    store: FakeStore,
    *,
    until: datetime,
    days: int = 30,
    orders_per_day: int = 2000,
    refund_ratio: float = 0.05,
    seed: int = 0,
) -> tuple[int, int]:
    """Fill ``store`` with ``days`` of history ending at ``until``; return (orders, after-sales).

    Orders are spread evenly over each day; most ship within two days and are
    received three to six days after paying (times after ``until`` have not
    happened yet). A ``refund_ratio`` share gets an after-sale: mostly 仅退款,
    some 退货退款 and a few exchanges (not refunds), with outcomes succeeded,
    withdrawn, rejected or still open, and reasons that include a label the
    table does not know. Each record's update time is its latest event.
    """
    collecting = gc.isenabled()
    gc.disable()  # 300k fresh dicts would trigger a collection every few hundred
    try:
        return _populate(store, until, days, orders_per_day, refund_ratio, seed)
    finally:
        if collecting:
            gc.enable()


def _populate(
    store: FakeStore,
    until: datetime,
    days: int,
    orders_per_day: int,
    refund_ratio: float,
    seed: int,
) -> tuple[int, int]:
    rng = random.Random(seed)
    draw = rng.random  # plain floats: randint() would be most of the run time
    end = _epoch(until)
    start = end - days * 86400
    step = 86400 / orders_per_day
    orders: list[tuple[str, dict[str, Any], int]] = []
    refunds: list[tuple[str, dict[str, Any], int]] = []
    prefix = store.mall_id.replace("-", "")[-6:]
    refund_base = zlib.crc32(store.mall_id.encode()) * 10_000_000
    minutes: dict[int, str] = {}

    def fmt(epoch: int | None) -> str:
        # platform_time() with the "YYYY-MM-DD HH:MM:" part cached per minute.
        if epoch is None:
            return ""
        minute, second = divmod(epoch, 60)
        head = minutes.get(minute)
        if head is None:
            head = minutes[minute] = platform_time(minute * 60)[:-2]
        return f"{head}{second:02d}"

    for n in range(days * orders_per_day):
        paid = start + int(n * step)
        shipped: int | None = paid + 3600 + int(draw() * 47 * 3600)
        received: int | None = paid + 3 * 86400 + int(draw() * 3 * 86400)
        if shipped is not None and shipped > end:
            shipped = None
        if received is not None and (shipped is None or received > end):
            received = None
        paid_text = fmt(paid)
        order_sn = f"{paid_text[2:4]}{paid_text[5:7]}{paid_text[8:10]}-{prefix}{n:09d}"
        goods_id = 500000 + int(draw() * 40)
        pay = f"{9.9 + int(draw() * 19000) / 100:.2f}"
        updated = received or shipped or paid
        orders.append(
            (
                order_sn,
                {
                    "order_sn": order_sn,
                    "confirm_status": 1,
                    "confirm_time": paid_text,
                    "pay_amount": pay,
                    "shipping_time": fmt(shipped),
                    "receive_time": fmt(received),
                    "order_status": 3 if received else 2 if shipped else 1,
                    "refund_status": 1,
                    "is_lucky_flag": 1,
                    "logistics_id": 44 + int(draw() * 5) if shipped else 0,
                    "updated_at": fmt(updated),
                    "item_list": [
                        {"goods_id": goods_id, "sku_id": goods_id * 10 + 1, "goods_count": 1}
                    ],
                },
                updated,
            )
        )
        if draw() < refund_ratio:
            created = paid + 600 + int(draw() * 7 * 86400)
            if created > end:
                continue
            roll = draw()
            kind = 2 if roll < 0.70 else 3 if roll < 0.95 else 4
            roll = draw()
            status = 10 if roll < 0.55 else 11 if roll < 0.80 else 12 if roll < 0.85 else 2
            closed = created + 3600 + int(draw() * 3 * 86400)
            if status == 2 or closed > end:
                status, closed = 2, created
            refund_id = refund_base + len(refunds) + 1
            refunds.append(
                (
                    str(refund_id),
                    {
                        "id": refund_id,
                        "order_sn": order_sn,
                        "goods_id": goods_id,
                        "sku_id": str(goods_id * 10 + 1),
                        "after_sales_type": kind,
                        "after_sales_status": status,
                        "after_sale_reason": _REASONS[int(draw() * len(_REASONS))],
                        "created_time": fmt(created),
                        "updated_time": fmt(closed),
                        "refund_amount": pay,
                    },
                    closed,
                )
            )
    store.orders.bulk_put(orders)
    store.refunds.bulk_put(refunds)
    return len(orders), len(refunds)


__all__ = [
    "FakeCall",
    "FakePddGateway",
    "FakeStore",
    "platform_time",
    "populate",
    "running_fake_gateway",
]
