"""A real loopback HTTP receiver for webhook tests, and helpers to verify what it got.

The receiver is a small HTTP/1.1 server on 127.0.0.1 (random port) built on
``asyncio.start_server``. It records every request and answers from a script:
``fail_next(2, 503)``, ``reply(Reply(429, {"Retry-After": "120"}))``,
``reply(HANG)`` (read the request, never answer: the relay's timeout fires), or
the default answer (200 unless changed). ``stop()``/``start()`` take it down and
bring it back on the same port (connection refused in between).

Everything is bounded: a hanging handler is released when the receiver closes,
and every read has a timeout.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

READ_TIMEOUT = 5.0
HANG_LIMIT = 10.0  # a hanging handler gives up by itself after this, whatever happens

_REASONS = {200: "OK", 400: "Bad Request", 410: "Gone", 429: "Too Many Requests", 503: "Nope"}


@dataclass(frozen=True)
class Reply:
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b'{"errcode":0,"errmsg":"ok"}'
    hang: bool = False


HANG = Reply(hang=True)


@dataclass(frozen=True)
class Received:
    method: str
    target: str
    headers: dict[str, str]
    body: bytes

    @property
    def path(self) -> str:
        return urlsplit(self.target).path

    @property
    def query(self) -> dict[str, str]:
        return {k: v[0] for k, v in parse_qs(urlsplit(self.target).query).items()}

    def json(self) -> Any:
        return json.loads(self.body)


class Receiver:
    def __init__(self) -> None:
        self.requests: list[Received] = []
        self.default = Reply()
        self._script: deque[Reply] = deque()
        self._server: asyncio.Server | None = None
        self._port = 0
        self._release = asyncio.Event()
        self._handlers: set[asyncio.Task[None]] = set()
        self.on_request: Callable[[Received], Awaitable[None]] | None = None

    @property
    def port(self) -> int:
        return self._port

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._port}/hook"

    def reply(self, *replies: Reply) -> None:
        """Answer the next requests with these, in order; then the default."""
        self._script.extend(replies)

    def fail_next(self, n: int, status: int = 503, headers: dict[str, str] | None = None) -> None:
        self.reply(*[Reply(status, headers or {}, b"try later")] * n)

    async def start(self) -> None:
        self._release = asyncio.Event()
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", self._port)
        self._port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        """Close the listening socket (new connections are refused) and end every handler."""
        self._release.set()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        if self._handlers:
            await asyncio.wait(set(self._handlers), timeout=HANG_LIMIT)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        try:
            async with asyncio.timeout(READ_TIMEOUT):
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                method, target, _ = lines[0].split(" ", 2)
                headers = {
                    name.strip().lower(): value.strip()
                    for name, value in (line.split(":", 1) for line in lines[1:] if line)
                }
                body = await reader.readexactly(int(headers.get("content-length", "0")))
            received = Received(method, target, headers, body)
            self.requests.append(received)
            if self.on_request is not None:
                await self.on_request(received)  # e.g. act while the request is in flight
            reply = self._script.popleft() if self._script else self.default
            if reply.hang:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._release.wait(), HANG_LIMIT)
                return
            extra = "".join(f"{k}: {v}\r\n" for k, v in reply.headers.items())
            writer.write(
                (
                    f"HTTP/1.1 {reply.status} {_REASONS.get(reply.status, 'Whatever')}\r\n"
                    f"Content-Type: application/json\r\nContent-Length: {len(reply.body)}\r\n"
                    f"Connection: close\r\n{extra}\r\n"
                ).encode("latin-1")
                + reply.body
            )
            await writer.drain()
        except (TimeoutError, ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()
            self._handlers.discard(task)


@contextlib.asynccontextmanager
async def running_receiver() -> AsyncIterator[Receiver]:
    receiver = Receiver()
    await receiver.start()
    try:
        yield receiver
    finally:
        await receiver.stop()


# --------------------------------------------------------------------------- verification
