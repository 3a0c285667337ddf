"""A fake of the platform's message service (``wss://message-api.pinduoduo.com``) on loopback.

It follows the documented shapes (see ``app.connectors.pdd.messages``, built from
the official Java, PHP and Rust clients): a client connects to
``/message/{client_id}/{ms}/{sign}``; the fake recomputes the sign with the app's
secret and refuses the handshake (HTTP 401) when it is wrong, or when ``ms`` is
more than ``tolerance`` away from its clock; it answers each client heartbeat
with its own; :meth:`push` sends a business message to every socket of the app
and records the acks that come back. Bounded: every wait has a timeout and
:meth:`stop` closes every socket.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import itertools
from collections import defaultdict
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any
from urllib.parse import unquote

import orjson
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.http11 import Request, Response

from app.clock import Clock


@dataclass
class Handshake:
    path: str
    accepted: bool
    reason: str


@dataclass
class FakeMessageService:
    clock: Clock
    tolerance_ms: int = 10 * 60 * 1000
    secrets: dict[str, str] = field(default_factory=dict)
    handshakes: list[Handshake] = field(default_factory=list)
    heartbeats: int = 0
    acks: list[dict[str, Any]] = field(default_factory=list)
    sockets: dict[str, set[ServerConnection]] = field(default_factory=lambda: defaultdict(set))
    _server: Server | None = None
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(7_000_000_001))
    _acked: asyncio.Condition = field(default_factory=asyncio.Condition)
    _joined: asyncio.Condition = field(default_factory=asyncio.Condition)
    _handshake: asyncio.Event = field(default_factory=asyncio.Event)

    def add_app(self, client_id: str, client_secret: str) -> None:
        self.secrets[client_id] = client_secret

    @property
    def url(self) -> str:
        assert self._server is not None
        host, port = next(iter(self._server.sockets)).getsockname()[:2]
        return f"ws://{host}:{port}"

    async def start(self) -> None:
        self._server = await serve(
            self._serve, "127.0.0.1", 0, process_request=self._check, ping_interval=None
        )

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await asyncio.wait_for(self._server.wait_closed(), timeout=10)

    async def drop_all(self) -> None:
        """Cut every socket (the client is expected to reconnect)."""
        for conns in self.sockets.values():
            for conn in list(conns):
                await conn.close(code=1012, reason="restart")

    def _check(self, connection: ServerConnection, request: Request) -> Response | None:
        parts = request.path.split("/")
        reason = ""
        if len(parts) != 5 or parts[1] != "message":
            reason = "bad path"
        else:
            client_id, ms, sign = (unquote(p) for p in parts[2:5])
            secret = self.secrets.get(client_id)
            now_ms = int(self.clock.now().timestamp() * 1000)
            if secret is None:
                reason = "unknown app"
            elif not ms.isdigit() or abs(int(ms) - now_ms) > self.tolerance_ms:
                reason = "stale timestamp"
            else:
                digest = hashlib.md5(f"{client_id}{ms}{secret}".encode()).hexdigest()
                if sign != base64.b64encode(digest.encode()).decode():
                    reason = "bad sign"
        self.handshakes.append(Handshake(request.path, not reason, reason))
        self._handshake.set()
        if reason:
            return Response(HTTPStatus.UNAUTHORIZED, "Unauthorized", Headers(), reason.encode())
        return None

    async def _serve(self, connection: ServerConnection) -> None:
        client_id = unquote(connection.request.path.split("/")[2]) if connection.request else ""
        self.sockets[client_id].add(connection)
        async with self._joined:
            self._joined.notify_all()
        try:
            async for frame in connection:
                data = orjson.loads(frame)
                if data.get("commandType") == "HeartBeat":
                    self.heartbeats += 1
                    now_ms = int(self.clock.now().timestamp() * 1000)
                    await connection.send(
                        orjson.dumps({"commandType": "HeartBeat", "time": now_ms}).decode()
                    )
                elif data.get("commandType") == "Ack":
                    async with self._acked:
                        self.acks.append(data)
                        self._acked.notify_all()
        finally:
            self.sockets[client_id].discard(connection)

    async def wait_listening(self, client_id: str, within: float = 10.0) -> None:
        async with self._joined:
            await asyncio.wait_for(
                self._joined.wait_for(lambda: bool(self.sockets.get(client_id))), within
            )

    async def wait_refusals(self, count: int, within: float = 10.0) -> None:
        """Until ``count`` handshakes have been refused."""
        async with asyncio.timeout(within):
            while sum(not h.accepted for h in self.handshakes) < count:
                self._handshake.clear()
                await self._handshake.wait()

    async def push(
        self,
        client_id: str,
        message_type: str,
        mall_id: int,
        content: dict[str, Any],
        *,
        raw: str | None = None,
    ) -> int:
        """Send a business message (or ``raw``, a frame as is) to the app's sockets; its id."""
        message_id = next(self._ids)
        now_ms = int(self.clock.now().timestamp() * 1000)
        frame = (
            raw
            or orjson.dumps(
                {
                    "id": message_id,
                    "commandType": "Common",
                    "time": now_ms,
                    "sendTime": now_ms,
                    "message": {
                        "type": message_type,
                        "mallID": mall_id,
                        "content": orjson.dumps(content).decode(),
                    },
                }
            ).decode()
        )
        for conn in list(self.sockets.get(client_id, ())):
            await conn.send(frame)
        return message_id

    async def wait_ack(self, message_id: int, within: float = 10.0) -> dict[str, Any]:
        def found() -> dict[str, Any] | None:
            return next((a for a in self.acks if a.get("id") == message_id), None)

        async with self._acked:
            await asyncio.wait_for(self._acked.wait_for(lambda: found() is not None), within)
        ack = found()
        assert ack is not None
        return ack


@contextlib.asynccontextmanager
async def running_message_service(clock: Clock) -> AsyncIterator[FakeMessageService]:
    service = FakeMessageService(clock)
    await service.start()
    try:
        yield service
    finally:
        await service.stop()
