"""The load client: raw keep-alive HTTP/1.1 connections that send pre-built requests.

It plays the part ``wrk`` plays in PERFORMANCE.md. httpx costs ~1 ms of client
CPU per request here; on two shared cores that starved the server it was
measuring (the client took 0.7 core at 500 req/s). This client writes the
request bytes and reads a Content-Length answer: tens of µs per request, so the
figures are the server's.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from urllib.parse import urlsplit


class LoadError(Exception):
    """A load-generator connection failed (refused, reset, timed out, bad answer)."""


@dataclass
class Answer:
    status_code: int
    content: bytes


class RawClient:
    """One keep-alive HTTP/1.1 connection, opened on first use and again after a failure."""

    def __init__(self, base_url: str, headers: dict[str, str], timeout: float) -> None:
        parts = urlsplit(base_url)
        self._host = parts.hostname or "127.0.0.1"
        self._port = parts.port or 80
        self._timeout = timeout
        fixed = {"Host": f"{self._host}:{self._port}", **headers}
        self._head = "".join(f"{k}: {v}\r\n" for k, v in fixed.items()).encode()
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            with contextlib.suppress(OSError):
                await self._writer.wait_closed()
            self._reader = self._writer = None

    async def get(self, path: str) -> Answer:
        return await self._send(b"GET " + path.encode() + b" HTTP/1.1\r\n" + self._head + b"\r\n")

    async def post(self, path: str, content: bytes) -> Answer:
        return await self._send(
            b"POST "
            + path.encode()
            + b" HTTP/1.1\r\n"
            + self._head
            + b"Content-Type: application/json\r\nContent-Length: "
            + str(len(content)).encode()
            + b"\r\n\r\n"
            + content
        )

    async def _send(self, request: bytes) -> Answer:
        try:
            async with asyncio.timeout(self._timeout):
                return await self._exchange(request)
        except (TimeoutError, OSError, asyncio.IncompleteReadError, ValueError) as exc:
            await self.close()
            raise LoadError(type(exc).__name__) from exc

    async def _exchange(self, request: bytes) -> Answer:
        if self._writer is None:
            self._reader, self._writer = await asyncio.open_connection(self._host, self._port)
        assert self._reader is not None
        self._writer.write(request)
        head = await self._reader.readuntil(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        status = int(lines[0].split(b" ", 2)[1])
        length = None
        close = False
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"transfer-encoding":
                raise ValueError("chunked answers are not expected here")
            elif name == b"connection" and value.strip().lower() == b"close":
                close = True
        content = await self._reader.readexactly(length) if length else b""
        if close:
            await self.close()
        return Answer(status, content)


def request_path(url: str) -> str:
    """The path (and query) of ``url``; a bare path is returned as it is."""
    parts = urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "") if parts.scheme else url


@contextlib.asynccontextmanager
async def client_pool(
    n: int, headers: dict[str, str], request_timeout: float, base_url: str
) -> AsyncIterator[list[RawClient]]:
    """``n`` keep-alive connections, one per worker."""
    clients = [RawClient(base_url, headers, request_timeout) for _ in range(n)]
    try:
        yield clients
    finally:
        for client in clients:
            await client.close()
