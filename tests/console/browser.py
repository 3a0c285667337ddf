"""Browser plumbing for the console's tests: a live server, Chromium, and a loopback-only guard.

- :func:`serve_in_thread` runs an ASGI app under a real uvicorn on 127.0.0.1 (a free port), in
  a thread, and stops it on exit: what a browser talks to. The ``live_server`` fixture wraps it
  around the test module's ``live_app`` fixture.
- :func:`launch_chromium` starts the system's ``/usr/bin/chromium`` headless through Playwright,
  with background networking (updates, sync, field trials) off; the ``chromium`` fixture wraps
  it. Tests that need it carry :data:`needs_chromium`, which skips them, saying why, on a
  machine without it.
- :class:`LoopbackGuard` records every request a page makes, aborts any that would leave the
  loopback range before it is sent, and records console and page errors; a test ends with
  :meth:`LoopbackGuard.assert_clean`. :func:`guarded_context` gives a fresh context with one.

The fixtures reach every test under ``tests/console/`` through its ``conftest.py``.

Playwright's sync API is used, so browser tests are plain ``def`` tests. Between its calls it
marks its own event loop as running on the test's thread, which would stop pytest-asyncio's loop
from running; so ``chromium`` is function-scoped and Playwright is gone before the next test.
"""

from __future__ import annotations

import ipaddress
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal
from urllib.parse import urlsplit

import pytest
import uvicorn
from starlette.types import ASGIApp

if TYPE_CHECKING:
    from playwright.sync_api import Browser, BrowserContext, ConsoleMessage, Error, Page, Route

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
needs_chromium = pytest.mark.skipif(
    not CHROMIUM.exists(),
    reason=f"browser tests need Chromium at {CHROMIUM} (Debian package 'chromium'); "
    "it is not installed on this machine",
)

SERVER_START_SECONDS = 10.0
SERVER_STOP_SECONDS = 10.0

# URLs that never reach a network: inline data, in-page blobs (ReDoc's search worker), blank.
LOCAL_SCHEMES = frozenset({"data", "blob", "about"})


@dataclass(frozen=True)
class LiveServer:
    """A running server: ``base_url`` is ``http://127.0.0.1:<port>``."""

    host: str
    port: int

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def url(self, path: str) -> str:
        return f"{self.base_url}/{path.lstrip('/')}"


@contextmanager
def serve_in_thread(
    app: ASGIApp, *, lifespan: Literal["auto", "on", "off"] = "on"
) -> Iterator[LiveServer]:
    """Serve ``app`` with uvicorn on 127.0.0.1 in a thread until the block ends.

    The socket is bound here (port 0: the kernel picks a free port) and handed to uvicorn, so
    the port is known before the server starts and no other process can take it in between.
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    host, port = sock.getsockname()
    config = uvicorn.Config(
        app,
        lifespan=lifespan,
        loop="asyncio",
        ws="none",
        log_level="warning",
        access_log=False,
    )
    server = uvicorn.Server(config)
    # Off the main thread uvicorn installs no signal handlers; should_exit stops it.
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, name=f"uvicorn:{port}", daemon=True
    )
    thread.start()
    try:
        deadline = time.monotonic() + SERVER_START_SECONDS
        while not server.started:
            if not thread.is_alive():
                raise RuntimeError("the live server stopped while starting (see its log above)")
            if time.monotonic() > deadline:
                raise RuntimeError(f"the live server did not start in {SERVER_START_SECONDS} s")
            time.sleep(0.01)
        yield LiveServer(host, port)
    finally:
        server.should_exit = True
        thread.join(SERVER_STOP_SECONDS)
        sock.close()
        if thread.is_alive():
            raise RuntimeError(f"the live server did not stop in {SERVER_STOP_SECONDS} s")


def is_loopback_url(url: str) -> bool:
    """True when fetching ``url`` cannot leave this machine."""
    parts = urlsplit(url)
    if parts.scheme in LOCAL_SCHEMES:
        return True
    if parts.scheme not in {"http", "https", "ws", "wss"}:
        return False
    host = parts.hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass
class LoopbackGuard:
    """What a page asked for and what went wrong in it; non-loopback requests are aborted."""

    requests: list[str] = field(default_factory=list)
    blocked: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)

    def attach(self, context: BrowserContext) -> None:
        """Watch every page of ``context``; call before opening pages."""
        context.route("**/*", self._route)
        context.on("page", self._watch)
        for page in context.pages:
            self._watch(page)

    def _route(self, route: Route) -> None:
        url = route.request.url
        if is_loopback_url(url):
            route.continue_()
        else:
            self.blocked.append(url)
            route.abort("blockedbyclient")

    def _watch(self, page: Page) -> None:
        page.on("request", lambda request: self.requests.append(request.url))
        page.on("requestfailed", lambda request: self.failed.append(request.url))
        page.on("console", self._console)
        page.on("pageerror", self._page_error)

    def _console(self, message: ConsoleMessage) -> None:
        if message.type == "error":
            self.console_errors.append(f"{message.text} ({message.location.get('url', '')})")

    def _page_error(self, error: Error) -> None:
        self.page_errors.append(str(error))

    @property
    def outside(self) -> list[str]:
        """Requests that would have left the loopback range (each was aborted)."""
        return sorted({url for url in [*self.requests, *self.blocked] if not is_loopback_url(url)})

    def assert_clean(self) -> None:
        assert self.outside == [], f"requests that would leave loopback: {self.outside}"
        assert self.failed == [], f"failed requests: {self.failed}"
        assert self.console_errors == [], f"console errors: {self.console_errors}"
        assert self.page_errors == [], f"uncaught page errors: {self.page_errors}"


@contextmanager
def launch_chromium() -> Iterator[Browser]:
    """The system Chromium, headless, via Playwright (no browser download involved)."""
    if not CHROMIUM.exists():
        pytest.skip(f"browser tests need Chromium at {CHROMIUM}; it is not installed")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@contextmanager
def guarded_context(browser: Browser) -> Iterator[tuple[BrowserContext, LoopbackGuard]]:
    """A fresh browser context (its own storage) watched by a :class:`LoopbackGuard`."""
    context = browser.new_context()
    guard = LoopbackGuard()
    guard.attach(context)
    try:
        yield context, guard
    finally:
        context.close()


@pytest.fixture
def live_server(live_app: ASGIApp) -> Iterator[LiveServer]:
    """The test module's ``live_app`` served on 127.0.0.1 for the length of one test."""
    with serve_in_thread(live_app) as server:
        yield server


@pytest.fixture
def chromium() -> Iterator[Browser]:
    """Headless system Chromium for one test (skipped when it is not installed)."""
    with launch_chromium() as browser:
        yield browser
