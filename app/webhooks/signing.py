"""Signing of outbound webhook requests (DESIGN §6).

Three schemes, one per family of receivers:

* ``standard`` subscriptions follow the Standard Webhooks spec so that a receiver
  can verify with the ``standardwebhooks`` package (or any port of it) and nothing
  of ours: ``webhook-signature: v1,<base64 HMAC-SHA256 of "id.timestamp.body">``
  keyed by the base64-decoded part of a ``whsec_…`` secret. During a secret
  rotation the header carries one signature per live secret, space-separated, so
  receivers holding either the old or the new secret keep verifying.
* DingTalk custom robots (加签) put ``timestamp`` (ms) and ``sign`` in the query
  string; ``sign`` is base64(HMAC-SHA256(key=secret, msg="{timestamp}\\n{secret}")),
  URL-encoded.
* Feishu custom bots (签名校验) put ``timestamp`` (s) and ``sign`` in the JSON body;
  ``sign`` is base64(HMAC-SHA256(key="{timestamp}\\n{secret}", msg=b"")) -- note
  the string-to-sign is the *key* and the message is empty, the reverse of
  DingTalk. Getting this backwards is the classic integration bug (Feishu answers
  code 19021 "sign match fail").

WeCom group robots have no signing: the ``key`` in the URL is the credential.

Everything here is pure (no clock, no I/O): callers pass the timestamp, so a
retry can be signed afresh with the current time while tests stay deterministic.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Sequence
from datetime import UTC, datetime
from secrets import token_bytes
from urllib.parse import quote_plus, urlsplit, urlunsplit

from standardwebhooks import Webhook

__all__ = [
    "STANDARD_SECRET_PREFIX",
    "dingtalk_sign",
    "dingtalk_signed_url",
    "feishu_sign",
    "generate_standard_secret",
    "sign_standard",
    "standard_headers",
    "validate_standard_secret",
]

STANDARD_SECRET_PREFIX = "whsec_"
"""Prefix of Standard Webhooks secrets; the rest is base64 of the key bytes."""

_GENERATED_KEY_BYTES = 24
# The spec asks for keys of 24 to 64 bytes; we accept anything from 16 bytes up to
# a sane ceiling when a client brings its own secret, so a short, guessable key is
# refused with a clear message instead of silently weakening the signature.
_MIN_KEY_BYTES = 16
_MAX_KEY_BYTES = 128


def generate_standard_secret() -> str:
    """Return a fresh ``whsec_`` secret holding 24 random bytes (192 bits).

    24 bytes is what the Standard Webhooks reference libraries generate; it is
    comfortably beyond brute force and short enough to paste into a config file.
    """
    return STANDARD_SECRET_PREFIX + base64.b64encode(token_bytes(_GENERATED_KEY_BYTES)).decode(
        "ascii"
    )


def validate_standard_secret(secret: str) -> str:
    """Check a client-supplied Standard Webhooks secret and return it unchanged.

    The ``standardwebhooks`` library decodes secrets leniently (it silently drops
    characters that are not base64), so a typo would yield a different key and
    every signature would fail to verify on the receiver's side with no hint why.
    Refusing such a secret when the subscription is created is far kinder.

    Raises:
        ValueError: with a message saying what is wrong.
    """
    if not secret.startswith(STANDARD_SECRET_PREFIX):
        raise ValueError(f"a standard webhook secret must start with {STANDARD_SECRET_PREFIX!r}")
    encoded = secret[len(STANDARD_SECRET_PREFIX) :]
    try:
        # Accept unpadded base64, as the reference library does.
        key = base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError(
            f"the part after {STANDARD_SECRET_PREFIX!r} must be standard base64"
        ) from exc
    if not _MIN_KEY_BYTES <= len(key) <= _MAX_KEY_BYTES:
        raise ValueError(
            f"a standard webhook secret must encode {_MIN_KEY_BYTES} to {_MAX_KEY_BYTES} "
            f"bytes (got {len(key)})"
        )
    return secret


def sign_standard(secrets: Sequence[str], msg_id: str, timestamp: int, body: bytes) -> str:
    """Return the ``webhook-signature`` header value for one message.

    One ``v1,<base64>`` signature per secret, space-separated: during a rotation
    both the new and the previous secret sign, and a receiver accepts the message
    if any signature matches the secret it holds.

    The HMAC itself is computed by ``standardwebhooks.Webhook.sign`` -- the
    library receivers verify with -- so the two sides cannot drift apart.

    Args:
        secrets: the live ``whsec_`` secrets, newest first (order is cosmetic).
        msg_id: the ``webhook-id``; stable across retries of one delivery.
        timestamp: Unix seconds of this attempt (``webhook-timestamp``).
        body: the exact bytes sent; must be UTF-8 (our bodies are JSON).

    Raises:
        ValueError: no secret, or a body that is not UTF-8 (the spec signs text,
            and the reference verifier decodes the body as UTF-8).
    """
    if isinstance(secrets, str):
        # A bare string is a Sequence[str] of characters: a classic slip.
        raise TypeError("secrets must be a sequence of secrets, not a single string")
    if not secrets:
        raise ValueError("at least one secret is needed to sign a standard webhook")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError("a standard webhook body must be UTF-8") from exc
    when = datetime.fromtimestamp(timestamp, tz=UTC)
    return " ".join(
        Webhook(secret).sign(msg_id=msg_id, timestamp=when, data=text) for secret in secrets
    )


def standard_headers(
    secrets: Sequence[str], msg_id: str, timestamp: int, body: bytes
) -> dict[str, str]:
    """Return every header a Standard Webhooks request needs (lower-case names)."""
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign_standard(secrets, msg_id, timestamp, body),
        "content-type": "application/json",
    }


def dingtalk_sign(secret: str, timestamp_ms: int) -> str:
    """Return the DingTalk ``sign`` value, base64 but *not* yet URL-encoded."""
    string_to_sign = f"{timestamp_ms}\n{secret}".encode()
    digest = hmac.new(secret.encode("utf-8"), string_to_sign, hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


def dingtalk_signed_url(url: str, secret: str, timestamp_ms: int) -> str:
    """Return ``url`` with DingTalk's ``timestamp`` and ``sign`` query parameters.

    The existing query (``access_token=…``) is kept byte for byte; any stale
    ``timestamp``/``sign`` (a URL signed for an earlier attempt) is replaced, since
    DingTalk refuses a timestamp more than an hour old. ``sign`` is base64, whose
    ``+``, ``/`` and ``=`` must be percent-encoded (DingTalk's own sample uses
    ``quote_plus``).
    """
    parts = urlsplit(url)
    kept = [
        pair
        for pair in parts.query.split("&")
        if pair and pair.split("=", 1)[0] not in ("timestamp", "sign")
    ]
    kept.append(f"timestamp={timestamp_ms}")
    kept.append("sign=" + quote_plus(dingtalk_sign(secret, timestamp_ms)))
    return urlunsplit(parts._replace(query="&".join(kept)))


def feishu_sign(secret: str, timestamp_s: int) -> str:
    """Return the Feishu/Lark custom-bot ``sign`` for ``timestamp_s`` (Unix seconds).

    Feishu uses ``"{timestamp}\\n{secret}"`` as the HMAC-SHA256 *key* over an empty
    message (see the module docstring); the result goes in the JSON body next to
    ``"timestamp": "<seconds as a string>"``. Feishu accepts a timestamp within an
    hour of its clock.
    """
    key = f"{timestamp_s}\n{secret}".encode()
    return base64.b64encode(hmac.new(key, b"", hashlib.sha256).digest()).decode("ascii")
