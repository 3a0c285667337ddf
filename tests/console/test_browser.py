"""The browser plumbing itself: what counts as loopback, the guard's verdict, the live server."""

from __future__ import annotations

import socket

import httpx
import pytest
from fastapi import FastAPI

from tests.console.browser import LoopbackGuard, is_loopback_url, serve_in_thread


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8000/docs",
        "http://127.3.2.1/x",
        "https://[::1]:8443/",
        "http://localhost:1/",
        "ws://127.0.0.1:9/socket",
        "data:image/png;base64,AAAA",
        "blob:http://127.0.0.1:8000/5d1f",
        "about:blank",
    ],
)
def test_loopback_and_inline_urls_stay_on_the_machine(url: str) -> None:
    assert is_loopback_url(url)


@pytest.mark.parametrize(
    "url",
    [
        "https://cdn.jsdelivr.net/npm/swagger-ui-dist@5/swagger-ui-bundle.js",
        "https://fonts.googleapis.com/css?family=Montserrat",
        "http://10.0.0.1/",
        "http://192.168.1.1/",
        "http://127.0.0.1.example.com/",
        "http://localhost.example.com/",
        "ftp://127.0.0.1/",
        "chrome-extension://abc/x.js",
    ],
)
def test_other_urls_leave_it(url: str) -> None:
    assert not is_loopback_url(url)


def test_the_guard_fails_on_an_outside_request_or_an_error() -> None:
    LoopbackGuard(requests=["http://127.0.0.1:1/docs", "data:,x"]).assert_clean()
    with pytest.raises(AssertionError, match="leave loopback"):
        LoopbackGuard(blocked=["https://cdn.example/x.js"]).assert_clean()
    with pytest.raises(AssertionError, match="console errors"):
        LoopbackGuard(console_errors=["Uncaught ReferenceError"]).assert_clean()
    with pytest.raises(AssertionError, match="page errors"):
        LoopbackGuard(page_errors=["boom"]).assert_clean()


def test_the_live_server_answers_on_loopback_and_is_gone_after() -> None:
    app = FastAPI()

    @app.get("/ping")
    async def ping() -> dict[str, str]:
        return {"pong": "yes"}

    with serve_in_thread(app) as server:
        assert server.host == "127.0.0.1" and server.port > 0
        with httpx.Client(trust_env=False) as client:
            assert client.get(server.url("/ping")).json() == {"pong": "yes"}
    with pytest.raises(OSError):
        socket.create_connection((server.host, server.port), timeout=1).close()
