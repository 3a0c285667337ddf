"""Session and CSRF tokens, the session cookie's flags, and the sign-in throttle (pure).

A console session is a 256-bit random token held in an HttpOnly cookie; the database keeps only
its SHA-256, like API keys. The CSRF token of a session is derived from its token with HMAC,
so it needs no storage of its own, differs per session, and cannot be computed by a page that
cannot read the (HttpOnly) cookie. The sign-in form, which has no session yet, carries a
double-submit token instead: a random value in a short-lived cookie, repeated in the form.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from collections import deque
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urlsplit

SESSION_COOKIE = "rw_console"
LOGIN_COOKIE = "rw_console_login"
LANGUAGE_COOKIE = "rw_console_lang"
COOKIE_PATH = "/console"
LOGIN_COOKIE_SECONDS = 60 * 60
LANGUAGE_COOKIE_SECONDS = 365 * 24 * 60 * 60

CSRF_FIELD = "csrf_token"
_CSRF_CONTEXT = b"refundwatch console csrf v1"


def new_token() -> str:
    """A fresh session (or sign-in form) token: 256 random bits, URL-safe."""
    return secrets.token_urlsafe(32)


def token_hash(token: str) -> bytes:
    """What the database keeps of a session token."""
    return hashlib.sha256(token.encode()).digest()


def csrf_token_for(session_token: str) -> str:
    """The CSRF token every state-changing form of this session must carry."""
    mac = hmac.new(session_token.encode(), _CSRF_CONTEXT, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac).decode().rstrip("=")


def tokens_match(expected: str, given: str | None) -> bool:
    """Constant-time comparison; a missing or empty token never matches."""
    if not given or not expected:
        return False
    return hmac.compare_digest(expected.encode(), given.encode())


@dataclass(frozen=True, slots=True)
class CookieFlags:
    """How a console cookie is set: what the browser must enforce."""

    max_age: int
    secure: bool
    httponly: bool = True
    samesite: str = "strict"
    path: str = COOKIE_PATH


def session_cookie(hours: float, *, https: bool) -> CookieFlags:
    """HttpOnly, SameSite=Strict, Path=/console; Secure when the page came over HTTPS."""
    return CookieFlags(max_age=int(hours * 3600), secure=https)


def same_origin(origin_header: str | None, host_header: str | None) -> bool:
    """Whether a request's ``Origin`` (when the browser sent one) names this host.

    Browsers send ``Origin`` on every cross-site POST, so a forged form fails here even
    before its CSRF token is looked at. Only the host and port are compared: behind a
    TLS-terminating proxy the scheme the app sees is not the one the browser used.
    """
    if origin_header is None:
        return True
    if origin_header == "null" or not host_header:
        return False
    return urlsplit(origin_header).netloc.lower() == host_header.lower()


def safe_next(target: str | None, prefix: str = COOKIE_PATH) -> str:
    """A redirect target after sign-in: a path inside the console (``prefix``), never another
    site; anything else is the console's front page."""
    if not target or not target.startswith(prefix):
        return prefix
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or "\\" in target or "//" in parts.path:
        return prefix
    rest = target[len(prefix) :]
    if rest and rest[0] not in "/?":
        return prefix  # /consolefoo is not inside the console
    return target


class LoginThrottle:
    """At most ``limit`` failed sign-ins per client within ``window``; then a pause.

    Keys are 256-bit random tokens, so guessing is hopeless anyway; the throttle keeps a
    scripted guesser from turning the sign-in form into a load on the database, and makes
    the form no easier to attack than the API. It lives in the process (a restart forgets
    it), counted per client address as the server sees it.
    """

    MAX_CLIENTS = 10_000

    def __init__(self, *, limit: int = 10, window: timedelta = timedelta(minutes=15)) -> None:
        self.limit = limit
        self.window = window
        self._failures: dict[str, deque[datetime]] = {}

    def retry_after(self, client: str, now: datetime) -> timedelta | None:
        """How long ``client`` must wait before trying again, or None when it may try."""
        failures = self._recent(client, now)
        if failures is None or len(failures) < self.limit:
            return None
        return failures[0] + self.window - now

    def failed(self, client: str, now: datetime) -> None:
        """Count a failed sign-in of ``client``."""
        failures = self._recent(client, now)
        if failures is None:
            if len(self._failures) >= self.MAX_CLIENTS:
                self._failures.clear()  # a flood of addresses: start over rather than grow
            failures = self._failures[client] = deque()
        failures.append(now)

    def succeeded(self, client: str) -> None:
        """A good key from ``client``: its earlier failures are forgotten."""
        self._failures.pop(client, None)

    def _recent(self, client: str, now: datetime) -> deque[datetime] | None:
        failures = self._failures.get(client)
        if failures is None:
            return None
        while failures and failures[0] <= now - self.window:
            failures.popleft()
        return failures
