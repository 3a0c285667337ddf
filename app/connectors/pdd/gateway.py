"""The Pinduoduo open-platform gateway, called the way the platform's SDKs call it.

Every call is one form-encoded POST to the router URL: the common fields
(``type``, ``client_id``, ``access_token``, ``timestamp``, ``data_type=JSON``,
``version=V1``), the API's own parameters and the ``sign`` (see
:mod:`app.connectors.pdd.signing`). An answer is either
``{"<api>_response": {...}}`` or
``{"error_response": {"error_code", "error_msg", "sub_code", "sub_msg", "request_id"}}``.

What this module gives the sync job:

* :class:`PddGateway` -- ``order_increment`` / ``refund_increment`` (one page)
  and ``read_orders`` / ``read_refunds`` (a whole window, pages read from the
  last back to the first), with retries of throttling and network errors.
* Typed errors: :class:`PddThrottled`, :class:`PddAuthError` (re-authorise),
  :class:`PddApiError` (anything else the platform refused),
  :class:`PddMalformedAnswer`, :class:`PddNetworkError`; ``retryable`` says
  whether trying again later may help.
* :class:`RateLimiter` -- the app's published budget (600 calls a minute); share
  one instance between every gateway of the same ``client_id``.
* :func:`backoff_delay` -- the retry delay with jitter.

The app secret and the store's token never appear in an error message, a log
line or a repr: messages from the platform and from the network stack are
scrubbed of both before they are kept.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import time
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from email.utils import parsedate_to_datetime
from typing import Any, Final, NamedTuple, TypeVar

import httpx

from app.clock import Clock
from app.connectors.pdd.signing import build_form
from app.connectors.pdd.windows import MAX_PAGE_SIZE, MAX_WINDOW, Window, pages_last_to_first

__all__ = [
    "AUTH_ERROR_CODES",
    "DEFAULT_GATEWAY_URL",
    "ORDER_INCREMENT_API",
    "PUBLISHED_CALLS_PER_MINUTE",
    "REFUND_INCREMENT_API",
    "THROTTLE_ERROR_CODES",
    "IncrementPage",
    "InvalidWindow",
    "PddApiError",
    "PddAuthError",
    "PddCredentials",
    "PddGateway",
    "PddGatewayError",
    "PddMalformedAnswer",
    "PddNetworkError",
    "PddThrottled",
    "RateLimiter",
    "RawRecord",
    "WindowRead",
    "backoff_delay",
]

logger = logging.getLogger(__name__)

DEFAULT_GATEWAY_URL: Final = "https://gw-api.pinduoduo.com/api/router"

ORDER_INCREMENT_API: Final = "pdd.order.number.list.increment.get"
REFUND_INCREMENT_API: Final = "pdd.refund.list.increment.get"
TOKEN_REFRESH_API: Final = "pdd.pop.auth.token.refresh"
TOKEN_REFRESH_RESPONSE: Final = "pop_auth_token_refresh_response"
EXPIRED_TOKEN_CODE: Final = 10019

_SHAPES: Final[Mapping[str, tuple[str, str, str]]] = {
    # api: (response key, list key, the key that identifies a record)
    ORDER_INCREMENT_API: ("order_sn_increment_get_response", "order_sn_list", "order_sn"),
    REFUND_INCREMENT_API: ("refund_increment_get_response", "refund_list", "id"),
}

THROTTLE_ERROR_CODES: Final = frozenset({52101, 52102, 52103, 70031})
"""当前接口被限流 / 暂时不可用 / 服务暂时不可用 / 调用过于频繁: wait and try again."""

AUTH_ERROR_CODES: Final = frozenset({20004, 10019})
"""Bad signature (a wrong ``client_secret``) and an expired or invalid token:
trying again cannot help; the seller must re-authorise."""

PUBLISHED_CALLS_PER_MINUTE: Final = 600

RawRecord = dict[str, Any]
"""One record of ``order_sn_list`` / ``refund_list`` as the platform sent it
(JSON numbers with a fraction decoded as ``Decimal``)."""

Sleep = Callable[[float], Awaitable[None]]
_AnswerT = TypeVar("_AnswerT", "IncrementPage", "TokenGrant")
_Parser = Callable[[str, int, bytes, "PddCredentials"], _AnswerT]
"""Turns one answer (api, HTTP status, body, credentials to scrub) into its result."""


# --------------------------------------------------------------------------- credentials


@dataclass(frozen=True, repr=False)
class PddCredentials:
    """An app's ``client_id``/``client_secret`` and a store's ``access_token``.

    The repr and str show the client id only, so a credentials object in a log
    line, a traceback's locals or an assertion message gives nothing away.
    """

    client_id: str
    client_secret: str
    access_token: str
    refresh_token: str | None = None

    def __repr__(self) -> str:
        return (
            f"PddCredentials(client_id={self.client_id!r}, client_secret=***, "
            "access_token=***, refresh_token=***)"
        )

    __str__ = __repr__

    def scrub(self, text: str) -> str:
        """``text`` with the secret and the token replaced by ``***``."""
        for secret in (self.client_secret, self.access_token, self.refresh_token):
            if secret:
                text = text.replace(secret, "***")
        return text


# --------------------------------------------------------------------------- errors


class InvalidWindow(ValueError):
    """A call the platform would refuse, stopped before it is sent (span, page size)."""


class PddGatewayError(Exception):
    """Any failed call. ``retryable``: trying again later may succeed."""

    retryable: bool = False

    def __init__(self, message: str, *, api: str, request_id: str | None = None) -> None:
        super().__init__(message)
        self.api = api
        self.request_id = request_id

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self)!r})"


class PddApiError(PddGatewayError):
    """The platform answered with an ``error_response``."""

    def __init__(
        self,
        *,
        api: str,
        error_code: int,
        error_msg: str,
        sub_code: str | None = None,
        sub_msg: str | None = None,
        request_id: str | None = None,
    ) -> None:
        detail = f"{error_code} {error_msg}".strip()
        if sub_code or sub_msg:
            detail += f" ({' '.join(part for part in (sub_code, sub_msg) if part)})"
        if request_id:
            detail += f" [request_id {request_id}]"
        super().__init__(f"{api}: {detail}", api=api, request_id=request_id)
        self.error_code = error_code
        self.error_msg = error_msg
        self.sub_code = sub_code
        self.sub_msg = sub_msg


class PddThrottled(PddApiError):
    """Throttled by the platform (52101, 52102, 52103, 70031)."""

    retryable = True


class PddAuthError(PddApiError):
    """Bad signature (20004) or expired/invalid token (10019): the connection is
    failing until the seller re-authorises; ``error_msg``/``sub_msg`` say why in
    the platform's words."""


class PddMalformedAnswer(PddGatewayError):
    """An answer that is not JSON, not in the documented shape, or lacks fields."""

    def __init__(
        self,
        message: str,
        *,
        api: str,
        request_id: str | None = None,
        status_code: int | None = None,
    ) -> None:
        suffix = f" [request_id {request_id}]" if request_id else ""
        super().__init__(
            f"{api}: malformed answer: {message}{suffix}", api=api, request_id=request_id
        )
        self.status_code = status_code


class PddNetworkError(PddGatewayError):
    """No usable answer: connection, timeout, TLS, or an HTTP 5xx/429 from a proxy."""

    retryable = True

    def __init__(self, message: str, *, api: str, status_code: int | None = None) -> None:
        super().__init__(f"{api}: {message}", api=api)
        self.status_code = status_code


# --------------------------------------------------------------------------- pacing


class RateLimiter:
    """A sliding-window budget: at most ``calls`` calls in any ``period``.

    No I/O and no clock of its own: :meth:`reserve` takes ``now`` and answers how
    long the caller must wait before its call, booking the slot at once, so
    concurrent callers (one per store of the same app) are paced together. The
    platform counts per app, so every gateway of one ``client_id`` must share
    one limiter. Slots only move forward, so a clock stepping back cannot
    double-book a second.
    """

    def __init__(
        self, calls: int = PUBLISHED_CALLS_PER_MINUTE, period: timedelta = timedelta(minutes=1)
    ) -> None:
        if calls < 1 or period <= timedelta(0):
            raise ValueError("a rate limit needs at least one call per positive period")
        self.calls = calls
        self.period = period
        self._slots: deque[datetime] = deque(maxlen=calls)

    def reserve(self, now: datetime) -> timedelta:
        """Book the next call and return how long to wait before making it."""
        slot = now
        if self._slots:
            slot = max(slot, self._slots[-1])
        if len(self._slots) == self.calls:
            # The call `calls` places back must be a whole period old.
            slot = max(slot, self._slots[0] + self.period)
        self._slots.append(slot)
        return slot - now


def backoff_delay(
    attempt: int,
    *,
    base: timedelta = timedelta(seconds=1),
    cap: timedelta = timedelta(seconds=60),
    rng: random.Random | None = None,
) -> timedelta:
    """The wait before retry number ``attempt`` (1 after the first failure).

    Exponential (``base × 2^(attempt-1)``, at most ``cap``) with "equal jitter":
    half the delay is fixed, half is random. The fixed half keeps a throttled
    app from coming straight back; the random half spreads the stores of one
    app that were throttled in the same second. ``rng`` is injectable for tests.
    """
    if attempt < 1:
        raise ValueError("attempt counts from 1")
    ceiling = min(cap, base * (1 << min(attempt - 1, 30)))
    half = ceiling / 2
    fraction = rng.random() if rng is not None else random.random()
    return half + half * fraction


# --------------------------------------------------------------------------- results


@dataclass(frozen=True, repr=False)
class TokenGrant:
    """What ``pdd.pop.auth.token.refresh`` gave: a new token pair (repr hides both)."""

    access_token: str
    refresh_token: str | None
    expires_at: datetime | None
    request_id: str | None = None

    def __repr__(self) -> str:
        return f"TokenGrant(access_token=***, refresh_token=***, expires_at={self.expires_at})"


class IncrementPage(NamedTuple):
    """One page of an increment API: the window's ``total_count`` and this page's records."""

    total_count: int
    records: list[RawRecord]
    request_id: str | None = None


@dataclass(frozen=True)
class WindowRead:
    """Every record of one window, each once (its latest read), and how it went.

    ``stable`` is False when the window kept growing while it was paged (new
    updates inside it: only possible near the platform's present), so a record
    may have been pushed past a page already read; don't move ``synced_through``
    on an unstable read, read the window again.
    """

    records: list[RawRecord]
    total_count: int
    calls: int
    stable: bool


# --------------------------------------------------------------------------- gateway


class PddGateway:
    """An async client of the open-platform router, for one store's credentials.

    Args:
        http: the shared ``httpx.AsyncClient`` (connection pool, timeouts).
        credentials: the app's id and secret and the store's token.
        clock: our clock (``.now()``, aware UTC).
        url: the router (``REFUNDWATCH_PDD_GATEWAY_URL``).
        limiter: the app's shared :class:`RateLimiter`; a private one if omitted.
        sleep: awaited for rate-limit waits and retry backoff (tests inject one
            that advances a frozen clock instead of sleeping).
        rng: jitter source for :func:`backoff_delay`.
        max_attempts: attempts per call for retryable errors, the first included.
        timeout: seconds for one HTTP exchange.
        clock_offset: the platform's clock minus ours, as learnt before.
    """

    def __init__(
        self,
        http: httpx.AsyncClient,
        credentials: PddCredentials,
        *,
        clock: Clock,
        url: str = DEFAULT_GATEWAY_URL,
        limiter: RateLimiter | None = None,
        sleep: Sleep = asyncio.sleep,
        rng: random.Random | None = None,
        max_attempts: int = 4,
        timeout: float = 30.0,
        clock_offset: timedelta = timedelta(0),
    ) -> None:
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        self._http = http
        self._credentials = credentials
        self._clock = clock
        self._url = url
        self._limiter = limiter if limiter is not None else RateLimiter()
        self._sleep = sleep
        self._rng = rng
        self._max_attempts = max_attempts
        self._timeout = timeout
        self._clock_offset = clock_offset  # what an earlier gateway of this store learnt

    def __repr__(self) -> str:
        return f"PddGateway(url={self._url!r}, client_id={self._credentials.client_id!r})"

    # -- the platform's clock

    @property
    def clock_offset(self) -> timedelta:
        """The platform's clock minus ours, learnt from the ``Date`` of its answers."""
        return self._clock_offset

    def platform_now(self) -> datetime:
        """Our best reading of the platform's clock: plan windows with this.

        The ``timestamp`` of each call is taken from it too, so a local clock that
        drifted minutes away is corrected after the first answer.
        """
        return self._clock.now() + self._clock_offset

    # -- the two increment APIs

    async def order_increment(
        self, start: datetime, end: datetime, page: int, page_size: int = MAX_PAGE_SIZE
    ) -> IncrementPage:
        """One page of ``pdd.order.number.list.increment.get``: orders updated in
        ``[start, end]``, every order and after-sale status, lucky-draw or not.

        Raises:
            InvalidWindow: the span or the paging is one the platform refuses.
            PddGatewayError: the call failed (after retries when retryable).
        """
        params = _window_params(ORDER_INCREMENT_API, start, end, page, page_size)
        params.update(is_lucky_flag=0, order_status=5, refund_status=5)
        return await self._call(ORDER_INCREMENT_API, params, _parse_answer)

    async def refund_increment(
        self, start: datetime, end: datetime, page: int, page_size: int = MAX_PAGE_SIZE
    ) -> IncrementPage:
        """One page of ``pdd.refund.list.increment.get``: after-sales updated in
        ``[start, end]``, every type and status.

        Raises:
            InvalidWindow: the span or the paging is one the platform refuses.
            PddGatewayError: the call failed (after retries when retryable).
        """
        params = _window_params(REFUND_INCREMENT_API, start, end, page, page_size)
        params.update(after_sales_status=1, after_sales_type=1)
        return await self._call(REFUND_INCREMENT_API, params, _parse_answer)

    async def read_orders(
        self, window: Window, *, page_size: int = MAX_PAGE_SIZE, max_sweeps: int = 3
    ) -> WindowRead:
        """Every order updated in ``window``, pages read from the last to the first."""
        return await self._read_window(
            self.order_increment, "order_sn", window, page_size, max_sweeps
        )

    async def read_refunds(
        self, window: Window, *, page_size: int = MAX_PAGE_SIZE, max_sweeps: int = 3
    ) -> WindowRead:
        """Every after-sale updated in ``window``, pages read from the last to the first."""
        return await self._read_window(self.refund_increment, "id", window, page_size, max_sweeps)

    # -- internals

    async def _read_window(
        self,
        fetch: Callable[[datetime, datetime, int, int], Awaitable[IncrementPage]],
        key_field: str,
        window: Window,
        page_size: int,
        max_sweeps: int,
    ) -> WindowRead:
        # Page 1 first, only to learn the total; then the last page back to page 1.
        first = await fetch(window.start, window.end, 1, page_size)
        calls = 1
        total = first.total_count
        by_key: dict[str, RawRecord] = {}
        unkeyed: list[RawRecord] = []

        def keep(records: list[RawRecord]) -> None:
            for record in records:
                key = record.get(key_field)
                if isinstance(key, int | str) and not isinstance(key, bool) and str(key):
                    by_key[str(key)] = record  # the later read is the newer state
                else:
                    unkeyed.append(record)  # the mapping reports it

        keep(first.records)
        pages = pages_last_to_first(total, page_size)
        grew = False
        sweeps = 0
        while pages:
            sweeps += 1
            grew = False
            for page in pages:
                answer = await fetch(window.start, window.end, page, page_size)
                calls += 1
                keep(answer.records)
                # A shrinking total is what backward paging is for; a growing one
                # may have pushed a record onto a page already read.
                if answer.total_count > total:
                    grew = True
                    total = answer.total_count
            if not grew or sweeps >= max_sweeps:
                break
            pages = pages_last_to_first(total, page_size)
        return WindowRead([*by_key.values(), *unkeyed], total, calls, stable=not grew)

    @property
    def can_refresh(self) -> bool:
        """Whether a refresh_token is at hand to renew an expired access_token."""
        return bool(self._credentials.refresh_token)

    async def refresh_access_token(self) -> TokenGrant:
        """``pdd.pop.auth.token.refresh``: a new access_token for the stored refresh_token.

        The gateway goes on with the new pair (and the caller stores it). Raises
        :class:`PddAuthError` when the platform refuses the refresh token (the
        seller must authorise the app again), other gateway errors as any call.
        """
        refresh_token = self._credentials.refresh_token
        if not refresh_token:
            raise ValueError("no refresh_token to refresh with")
        # The call is made because the access_token expired: it is not sent.
        grant = await self._call(
            TOKEN_REFRESH_API, {"refresh_token": refresh_token}, _parse_token_grant, token=False
        )
        self._credentials = PddCredentials(
            client_id=self._credentials.client_id,
            client_secret=self._credentials.client_secret,
            access_token=grant.access_token,
            refresh_token=grant.refresh_token or refresh_token,
        )
        return grant

    async def _call(
        self,
        api: str,
        params: dict[str, str | int | bool],
        parse: _Parser[_AnswerT],
        *,
        token: bool = True,
    ) -> _AnswerT:
        attempt = 0
        while True:
            attempt += 1
            wait = self._limiter.reserve(self._clock.now())
            if wait > timedelta(0):
                await self._sleep(wait.total_seconds())
            try:
                return await self._attempt(api, params, parse, token=token)
            except PddGatewayError as error:
                if not error.retryable or attempt >= self._max_attempts:
                    raise
                delay = backoff_delay(attempt, rng=self._rng)
                logger.warning(
                    "pdd call failed, retrying",
                    extra={
                        "api": api,
                        "attempt": attempt,
                        "delay_s": delay.total_seconds(),
                        "error": str(error),
                    },
                )
                await self._sleep(delay.total_seconds())

    async def _attempt(
        self,
        api: str,
        params: Mapping[str, str | int | bool],
        parse: _Parser[_AnswerT],
        *,
        token: bool,
    ) -> _AnswerT:
        credentials = self._credentials
        form = build_form(
            api,
            params,
            client_id=credentials.client_id,
            access_token=credentials.access_token if token else "",
            client_secret=credentials.client_secret,
            timestamp=int(self.platform_now().timestamp()),
        )
        started = time.monotonic()
        try:
            response = await self._http.post(self._url, data=form, timeout=self._timeout)
        except httpx.HTTPError as error:
            # The exception (and its chain) holds the request, token included: keep
            # only its scrubbed text.
            text = credentials.scrub(str(error)) or type(error).__name__
            raise PddNetworkError(f"{type(error).__name__}: {text}", api=api) from None
        self._learn_clock(response.headers.get("date"))
        page = parse(api, response.status_code, response.content, credentials)
        logger.debug(
            "pdd call",
            extra={
                "api": api,
                "page": params.get("page"),
                "total_count": getattr(page, "total_count", None),
                "request_id": page.request_id,
                "duration_ms": round((time.monotonic() - started) * 1000),
            },
        )
        return page

    def _learn_clock(self, date_header: str | None) -> None:
        if not date_header:
            return
        try:
            platform = parsedate_to_datetime(date_header)
        except (TypeError, ValueError, IndexError):
            return
        if platform.tzinfo is None:
            platform = platform.replace(tzinfo=UTC)
        offset = platform - self._clock.now()
        # A Date header has whole seconds: ignore the sub-second noise so the
        # offset only moves when the clocks really disagree.
        self._clock_offset = offset if abs(offset) >= timedelta(seconds=2) else timedelta(0)


def _window_params(
    api: str, start: datetime, end: datetime, page: int, page_size: int
) -> dict[str, str | int | bool]:
    for moment in (start, end):
        if moment.tzinfo is None or moment.utcoffset() is None:
            raise InvalidWindow(f"{api}: window bounds must be timezone-aware")
    start_at, end_at = int(start.timestamp()), int(end.timestamp())
    if start_at >= end_at:
        raise InvalidWindow(f"{api}: start_updated_at must be before end_updated_at")
    if end_at - start_at > MAX_WINDOW.total_seconds():
        raise InvalidWindow(f"{api}: a window spans at most {MAX_WINDOW}, got {end - start}")
    if page < 1:
        raise InvalidWindow(f"{api}: pages count from 1")
    if not 1 <= page_size <= MAX_PAGE_SIZE:
        raise InvalidWindow(f"{api}: page_size must be 1 to {MAX_PAGE_SIZE}")
    return {
        "start_updated_at": start_at,
        "end_updated_at": end_at,
        "page": page,
        "page_size": page_size,
    }


def _request_id(body: Mapping[str, Any]) -> str | None:
    """The answer's request id, wherever an unexpected shape put it."""
    found = _text(body.get("request_id"))
    if found is None:
        for value in body.values():
            if isinstance(value, dict) and (found := _text(value.get("request_id"))):
                break
    return found


def _text(value: object) -> str | None:
    if value is None or value == "":
        return None
    return str(value)


def _parse_token_grant(
    api: str, status_code: int, content: bytes, credentials: PddCredentials
) -> TokenGrant:
    """``{"pop_auth_token_refresh_response": {access_token, refresh_token, expires_at, …}}``."""
    answer, request_id = _answer_object(
        api, status_code, content, credentials, TOKEN_REFRESH_RESPONSE
    )
    access_token = answer.get("access_token")
    if not isinstance(access_token, str) or not access_token.strip():
        raise PddMalformedAnswer(
            f"{TOKEN_REFRESH_RESPONSE}.access_token is missing",
            api=api,
            request_id=request_id,
            status_code=status_code,
        )
    refresh_token = answer.get("refresh_token")
    expires_at = answer.get("expires_at")
    if isinstance(expires_at, str) and expires_at.strip().isdigit():
        expires_at = int(expires_at)
    return TokenGrant(
        access_token=access_token,
        refresh_token=refresh_token if isinstance(refresh_token, str) and refresh_token else None,
        expires_at=datetime.fromtimestamp(expires_at, UTC)
        if isinstance(expires_at, int) and not isinstance(expires_at, bool) and expires_at > 0
        else None,
        request_id=request_id,
    )


def _answer_object(
    api: str, status_code: int, content: bytes, credentials: PddCredentials, response_key: str
) -> tuple[dict[str, Any], str | None]:
    """The answer's response object and request id, or the error it carries."""
    unavailable = status_code == 429 or status_code >= 500
    try:
        # Decimal keeps amounts such as 12.30 exactly as sent.
        body = json.loads(content, parse_float=Decimal)
    except ValueError:
        if unavailable:
            raise PddNetworkError(f"HTTP {status_code}", api=api, status_code=status_code) from None
        raise PddMalformedAnswer(
            f"not JSON (HTTP {status_code})", api=api, status_code=status_code
        ) from None
    if not isinstance(body, dict):
        raise PddMalformedAnswer("not a JSON object", api=api, status_code=status_code)
    if "error_response" in body:
        raise _api_error(api, body["error_response"], status_code, credentials)
    if unavailable:
        raise PddNetworkError(f"HTTP {status_code}", api=api, status_code=status_code)
    answer = body.get(response_key)
    if not isinstance(answer, dict):
        raise PddMalformedAnswer(
            f"no {response_key} object",
            api=api,
            request_id=_request_id(body),
            status_code=status_code,
        )
    request_id = _text(answer.get("request_id", body.get("request_id")))
    if status_code != 200:
        raise PddMalformedAnswer(
            f"HTTP {status_code}", api=api, request_id=request_id, status_code=status_code
        )
    return answer, request_id


def _parse_answer(
    api: str, status_code: int, content: bytes, credentials: PddCredentials
) -> IncrementPage:
    response_key, list_key, _ = _SHAPES[api]
    answer, request_id = _answer_object(api, status_code, content, credentials, response_key)
    total = answer.get("total_count")
    if isinstance(total, bool) or not isinstance(total, int) or total < 0:
        raise PddMalformedAnswer(
            f"{response_key}.total_count is {total!r}, not a count",
            api=api,
            request_id=request_id,
            status_code=status_code,
        )
    records = answer.get(list_key)
    if records is None and total == 0:
        records = []
    if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
        raise PddMalformedAnswer(
            f"{response_key}.{list_key} is not a list of objects",
            api=api,
            request_id=request_id,
            status_code=status_code,
        )
    return IncrementPage(total, records, request_id)


def _api_error(
    api: str, error: object, status_code: int, credentials: PddCredentials
) -> PddGatewayError:
    if not isinstance(error, dict):
        return PddMalformedAnswer(
            "error_response is not an object", api=api, status_code=status_code
        )
    request_id = _text(error.get("request_id"))
    code = error.get("error_code")
    if isinstance(code, str) and code.strip().isdigit():
        code = int(code)
    if isinstance(code, bool) or not isinstance(code, int):
        return PddMalformedAnswer(
            f"error_response.error_code is {code!r}",
            api=api,
            request_id=request_id,
            status_code=status_code,
        )
    sub_msg = _text(error.get("sub_msg"))
    fields: dict[str, Any] = {
        "api": api,
        "error_code": code,
        "error_msg": credentials.scrub(_text(error.get("error_msg")) or ""),
        "sub_code": _text(error.get("sub_code")),
        "sub_msg": credentials.scrub(sub_msg) if sub_msg else None,
        "request_id": request_id,
    }
    if code in THROTTLE_ERROR_CODES:
        return PddThrottled(**fields)
    if code in AUTH_ERROR_CODES:
        return PddAuthError(**fields)
    return PddApiError(**fields)
