"""The platform's message push, as its SDKs speak it: the connection path, frames, acks.

All pure. The listener (``app.connectors.pdd.push``) does the I/O.

* **Connect** to ``{message service}/message/{client_id}/{ms}/{sign}``: ``ms`` is
  the Unix time in milliseconds and ``sign`` is Base64 of the lower-case hex MD5
  of ``client_id + ms + client_secret`` — Base64 of the 32 hex *characters*, not
  of the 16 digest bytes, as the official Java client (``md5Base64Sign32``), the
  PHP client (``base64_encode(md5(…))``) and the Rust client all do. One
  connection carries the messages of every store that authorised the app.
* **Heartbeat**: the client sends ``{"id", "commandType": "HeartBeat", "time"}``
  every 5 seconds; the server sends its own heartbeats back.
* **Messages** come as ``{"id", "commandType": "Common", "time", "sendTime",
  "message": {"type", "mallID", "content"}}``, ``content`` being a JSON object
  *in a string* (for an after-sale: ``mall_id``, ``refund_id``, ``tid`` — the
  order number —, ``bill_type``, ``refund_fee``, ``operation``, ``modified``).
* **Ack** each message once it is durably handled: ``{"id", "commandType":
  "Ack", "time", "sendTime", "type", "mallID"}``. A message never acknowledged
  is sent again by the platform, so a crash between the two loses nothing.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import quote

import orjson

__all__ = [
    "MAX_FRAME_BYTES",
    "MalformedMessage",
    "PushMessage",
    "acknowledge",
    "connection_path",
    "decode",
    "heartbeat",
    "path_sign",
    "wakes_sync",
]

MAX_FRAME_BYTES: Final = 1 << 20
"""Frames larger than this are refused (a message is a few hundred bytes)."""

WAKING_PREFIXES: Final = ("pdd_refund_", "pdd_trade_")
"""Message types that can change the figures: after-sales and orders (paid,
shipped, received, …). Any other type is acknowledged and ignored."""

_MAX_DEPTH: Final = 8


class MalformedMessage(ValueError):
    """A frame that is not the documented shape: logged, not acknowledged."""


@dataclass(frozen=True, slots=True)
class PushMessage:
    """One pushed business message."""

    id: int
    type: str
    mall_id: str
    content: dict[str, Any]
    send_time: int | None


def path_sign(client_id: str, client_secret: str, ms: int) -> str:
    """Base64 of the hex MD5 of ``client_id + ms + client_secret`` (never log it with ms)."""
    digest = hashlib.md5(f"{client_id}{ms}{client_secret}".encode()).hexdigest()
    return base64.b64encode(digest.encode("ascii")).decode("ascii")


def connection_path(client_id: str, client_secret: str, ms: int) -> str:
    """The path the message service authenticates a client by."""
    if not client_id or not client_secret or ms <= 0:
        raise ValueError("a message connection needs client_id, client_secret and a time")
    sign = path_sign(client_id, client_secret, ms)
    return f"/message/{quote(client_id, safe='')}/{ms}/{quote(sign, safe='')}"


def heartbeat(ms: int) -> str:
    return orjson.dumps({"id": ms, "commandType": "HeartBeat", "time": ms}).decode()


def acknowledge(message: PushMessage, ms: int) -> str:
    return orjson.dumps(
        {
            "id": message.id,
            "commandType": "Ack",
            "time": ms,
            "sendTime": message.send_time,
            "type": message.type,
            "mallID": int(message.mall_id),
        }
    ).decode()


def wakes_sync(message: PushMessage) -> bool:
    """Whether the message may change a store's figures (an order or an after-sale)."""
    return message.type.startswith(WAKING_PREFIXES)


def decode(frame: str | bytes) -> PushMessage | None:
    """A server frame: a business message, or None for a heartbeat or an ack.

    Raises :class:`MalformedMessage` for anything else: too large, not JSON, an
    unknown command, a message without a type, mall or id; and, for the order and
    after-sale messages (the ones acted on), a ``content`` that is not a JSON
    object or names another mall than its envelope. Other types carry no content.
    """
    raw = frame.encode() if isinstance(frame, str) else frame
    if len(raw) > MAX_FRAME_BYTES:
        raise MalformedMessage(f"frame of {len(raw)} bytes")
    data = _json_object(raw, "frame")
    command = data.get("commandType")
    if command in ("HeartBeat", "Ack"):
        return None
    if command != "Common":
        raise MalformedMessage(f"unknown commandType {str(command)[:40]!r}")
    body = data.get("message")
    if not isinstance(body, dict):
        raise MalformedMessage("a Common frame without its message")
    kind = body.get("type")
    if not isinstance(kind, str) or not 0 < len(kind) <= 128 or not kind.isascii():
        raise MalformedMessage("a message without its type")
    mall = _positive(body.get("mallID"), "mallID")
    content: dict[str, Any] = {}
    if kind.startswith(WAKING_PREFIXES):
        # Only the messages acted on are read further: any other type is acknowledged
        # whatever its content (else the platform would send it again forever).
        text = body.get("content")
        if not isinstance(text, str):
            raise MalformedMessage("a message whose content is not a string")
        content = _json_object(text.encode(), "content")
        if "mall_id" in content and str(content["mall_id"]) != str(mall):
            raise MalformedMessage("a message whose content names another mall")
    send_time = data.get("sendTime")
    return PushMessage(
        id=_positive(data.get("id"), "id"),
        type=kind,
        mall_id=str(mall),
        content=content,
        send_time=_positive(send_time, "sendTime") if send_time is not None else None,
    )


def _json_object(raw: bytes, what: str) -> dict[str, Any]:
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise MalformedMessage(f"{what} is not JSON") from exc
    if not isinstance(value, dict):
        raise MalformedMessage(f"{what} is not a JSON object")
    if _depth(value) > _MAX_DEPTH:
        raise MalformedMessage(f"{what} nests too deep")
    return value


def _depth(value: Any, level: int = 1) -> int:
    if level > _MAX_DEPTH:
        return level
    if isinstance(value, dict):
        return max((_depth(v, level + 1) for v in value.values()), default=level)
    if isinstance(value, list):
        return max((_depth(v, level + 1) for v in value), default=level)
    return level


def _positive(value: Any, name: str) -> int:
    if isinstance(value, bool):
        raise MalformedMessage(f"{name} is not a positive integer")
    if isinstance(value, str) and value.isdigit() and len(value) <= 20:
        value = int(value)
    if not isinstance(value, int) or value <= 0 or value >= 1 << 63:
        raise MalformedMessage(f"{name} is not a positive integer")
    return value
