"""The message-push listener: a pushed change wakes its store's sync at once.

Without it a live connection is read every ``REFUNDWATCH_SYNC_INTERVAL_SECONDS``
(a minute). With ``REFUNDWATCH_PDD_MESSAGES=true`` the worker also keeps one
websocket per app (``client_id``) to the platform's message service
(``REFUNDWATCH_PDD_MESSAGE_URL``): when an order or after-sale message arrives
for a store, that store's connection is made due now and the sync loop is woken;
the sync then reads the newest minutes as it always does. A message only ever
*triggers* a read — the figures still come from the increment APIs through the
one road — so a lost, repeated or reordered message changes nothing but how soon
the read happens.

Per message: decode (:mod:`app.connectors.pdd.messages`), poke the matching
connections in one committed transaction (``mall_id`` equal to the message's
``mallID``, or unset), wake the local sync loop, then acknowledge. A crash before
the ack means the platform sends the message again: harmless. Connections in
failure backoff are not pulled forward (a push must not defeat throttling).

Each worker replica listens on its own; the connection lease still lets one
replica sync a connection at a time, and the others see the poke in the database
within their idle poll (5 s). The ``client_secret`` is decrypted for the
connection path's signature only; the path is never logged.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from datetime import timedelta
from typing import Any, Protocol

from websockets.asyncio.client import connect as ws_connect

from app.clock import Clock
from app.config import Settings
from app.connectors import repository
from app.connectors.pdd import messages
from app.connectors.pdd.gateway import backoff_delay
from app.connectors.secrets import SecretUnreadable, secret_box
from app.db.engine import Database

log = logging.getLogger("refundwatch.connectors.push")

HEARTBEAT_SECONDS = 5.0
"""The platform's clients send a heartbeat this often."""

IDLE_SECONDS = 60.0
"""A connection silent this long (no heartbeat back) is dropped and opened again."""

RESCAN_SECONDS = 30.0
"""How often the listener looks for apps added or removed (a connection edit wakes it)."""

RECONNECT_CAP = timedelta(minutes=5)
OPEN_TIMEOUT = 10.0


class Socket(Protocol):
    async def send(self, message: str) -> None: ...

    async def recv(self) -> str | bytes: ...


Connect = Callable[[str], AbstractAsyncContextManager[Socket]]
Sleep = Callable[[float], Awaitable[None]]


_socket_log = logging.getLogger("refundwatch.connectors.push.socket")
_socket_log.setLevel(logging.WARNING)  # its debug lines would print the signed path


def _default_connect(url: str) -> AbstractAsyncContextManager[Any]:
    return ws_connect(
        url,
        logger=_socket_log,
        open_timeout=OPEN_TIMEOUT,
        close_timeout=5,
        ping_interval=None,  # the protocol's own heartbeats keep it alive
        max_size=messages.MAX_FRAME_BYTES,
        user_agent_header="refundwatch",
    )


class MessageListener:
    """One websocket per app with an enabled connection, kept open by the worker."""

    def __init__(
        self,
        db: Database,
        settings: Settings,
        clock: Clock,
        *,
        on_poke: Callable[[], None] | None = None,
        connect: Connect | None = None,
        sleep: Sleep = asyncio.sleep,
        rng: random.Random | None = None,
    ) -> None:
        self.db = db
        self.settings = settings
        self.clock = clock
        self._on_poke = on_poke
        self._connect: Connect = connect or _default_connect
        self._sleep = sleep
        self._rng = rng
        self._apps: dict[str, asyncio.Task[None]] = {}
        self._refused: set[str] = set()  # apps whose last connection attempt failed
        self._woken = False
        self._wake = asyncio.Event()
        self._stopping = False
        self.received = 0  # business messages acknowledged (tests, logs)
        self.pokes = 0  # connections made due by them

    def wake(self) -> None:
        """Look again for the apps to listen for (a connection was created or edited):
        an app waiting to retry a refused connection tries at once, with the new secret."""
        self._woken = True
        self._wake.set()

    async def run_forever(self) -> None:
        while not self._stopping:
            try:
                await self._rescan()
            except Exception:
                log.exception("message listener: could not read the connections; retrying")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=RESCAN_SECONDS)
            self._wake.clear()

    async def close(self) -> None:
        self._stopping = True
        self._wake.set()
        tasks = list(self._apps.values())
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=10)
        self._apps.clear()

    async def _rescan(self) -> None:
        retry_now, self._woken = self._woken, False
        async with self.db.read() as session:
            wanted = set(await repository.apps_to_listen(session))
        for client_id in list(self._apps):
            stale = client_id not in wanted or self._apps[client_id].done()
            if stale or (retry_now and client_id in self._refused):
                self._apps.pop(client_id).cancel()
                self._refused.discard(client_id)
        for client_id in sorted(wanted - set(self._apps)):
            task = asyncio.create_task(
                self._listen(client_id), name=f"pdd-messages-{client_id[:16]}"
            )
            task.add_done_callback(_log_end)
            self._apps[client_id] = task

    async def _listen(self, client_id: str) -> None:
        """Keep the app's connection open: reconnect with backoff, for as long as it is wanted."""
        failures = 0
        while not self._stopping:
            secret = await self._secret(client_id)
            if secret is None:
                return  # no enabled connection of the app any more (or its secret is unreadable)
            path = messages.connection_path(client_id, secret, self._ms())
            del secret
            heard = [False]  # a frame came: the service took us (the backoff starts over)
            try:
                async with self._connect(self.settings.pdd_message_url + path) as socket:
                    log.info("message push: listening for app %s", client_id)
                    await self._session(client_id, socket, heard)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # refused, cut, silent: open it again, later
                if heard[0]:
                    failures = 0
                failures += 1
                self._refused.add(client_id)
                delay = backoff_delay(
                    failures, base=timedelta(seconds=1), cap=RECONNECT_CAP, rng=self._rng
                )
                log.warning(
                    "message push for app %s: %s; again in %.0f s",
                    client_id,
                    _describe(exc),
                    delay.total_seconds(),
                )
                await self._sleep(delay.total_seconds())

    async def _session(self, client_id: str, socket: Socket, heard: list[bool]) -> None:
        beats = asyncio.create_task(self._heartbeats(socket))
        try:
            async for frame in _frames(socket, beats):
                if not heard[0]:
                    heard[0] = True
                    self._refused.discard(client_id)
                try:
                    message = messages.decode(frame)
                except messages.MalformedMessage as exc:
                    log.warning("message push for app %s: malformed frame (%s)", client_id, exc)
                    continue  # not acknowledged: the platform sends it again
                if message is None:
                    continue
                if messages.wakes_sync(message):
                    await self._poke(client_id, message)
                await socket.send(messages.acknowledge(message, self._ms()))
                self.received += 1
        finally:
            beats.cancel()
            try:
                await beats
            except asyncio.CancelledError:
                current = asyncio.current_task()
                if current is not None and current.cancelling():
                    raise  # this task itself is being cancelled: never swallow that
            except Exception:
                pass  # the heartbeats' own failure; the session's is on its way

    async def _heartbeats(self, socket: Socket) -> None:
        while True:
            await socket.send(messages.heartbeat(self._ms()))
            await asyncio.sleep(HEARTBEAT_SECONDS)

    async def _poke(self, client_id: str, message: messages.PushMessage) -> None:
        now = self.clock.now()
        async with self.db.transaction() as session:
            poked = await repository.poke(session, client_id, message.mall_id, now)
        if poked:
            self.pokes += poked
            log.info(
                "message push: %s for mall %s woke %d connection(s) of app %s",
                message.type,
                message.mall_id,
                poked,
                client_id,
            )
            if self._on_poke is not None:
                self._on_poke()

    async def _secret(self, client_id: str) -> str | None:
        async with self.db.read() as session:
            encrypted = await repository.app_secret(session, client_id)
        if encrypted is None:
            return None
        try:
            return secret_box(self.settings).decrypt(encrypted)
        except SecretUnreadable:
            log.warning("message push for app %s: its client_secret cannot be read", client_id)
            return None

    def _ms(self) -> int:
        return int(self.clock.now().timestamp() * 1000)


def _log_end(task: asyncio.Task[None]) -> None:
    """A listener that ended by an error (the database, say): said; the next rescan restarts it."""
    if not task.cancelled() and task.exception() is not None:
        log.error("message push: %s stopped", task.get_name(), exc_info=task.exception())


async def _frames(socket: Socket, beats: asyncio.Task[None]) -> AsyncIterator[str | bytes]:
    """The socket's frames; raises when it is silent for :data:`IDLE_SECONDS` (or the
    heartbeats stopped: the socket is gone)."""
    while True:
        if beats.done():
            beats.result()  # raises what stopped them
            raise ConnectionError("heartbeats stopped")
        started = time.monotonic()
        try:
            yield await asyncio.wait_for(socket.recv(), timeout=IDLE_SECONDS)
        except TimeoutError:
            raise ConnectionError(
                f"no frame for {time.monotonic() - started:.0f} s (heartbeats unanswered)"
            ) from None


def _describe(exc: BaseException) -> str:
    """What went wrong, without the path (it holds the signature)."""
    status = getattr(getattr(exc, "response", None), "status_code", None)
    if status is not None:
        return f"the message service refused the connection (HTTP {status})"
    text = str(exc)
    if "/message/" in text:
        text = text.split("/message/")[0] + "/message/…"
    return f"{type(exc).__name__}: {text[:200]}"
