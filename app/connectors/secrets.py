"""Credentials at rest: encrypted with Fernet (AES-128-CBC + HMAC-SHA256, ``cryptography``).

The key comes from ``REFUNDWATCH_SECRET_KEY`` (any long random string; the
Fernet key is derived from it with HKDF-SHA256). In production a connection
cannot be created or synced without it. In development, when it is unset, a
random key is created once in ``<data dir>/secret.key`` (mode 0600) and the
operator is told so; losing or changing the key makes stored credentials
unreadable, so connections must then be given their secret and token again.
"""

from __future__ import annotations

import base64
import logging
import os
import secrets
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from app.config import Settings
from app.errors import AppError

log = logging.getLogger("refundwatch.connectors")

KEY_FILE = "secret.key"
_INFO = b"refundwatch connection credentials v1"


class SecretKeyMissing(AppError):
    status, code, title = 503, "secret_key_missing", "Service unavailable"


class SecretUnreadable(Exception):
    """A stored credential that the current key cannot decrypt (the key changed)."""


class SecretBox:
    """Encrypts and decrypts credentials with one key."""

    def __init__(self, passphrase: str) -> None:
        derived = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_INFO).derive(
            passphrase.encode()
        )
        self._fernet = Fernet(base64.urlsafe_b64encode(derived))

    def __repr__(self) -> str:
        return "SecretBox(***)"

    def encrypt(self, clear: str) -> str:
        return self._fernet.encrypt(clear.encode()).decode()

    def decrypt(self, token: str) -> str:
        try:
            return self._fernet.decrypt(token.encode()).decode()
        except InvalidToken:
            raise SecretUnreadable(
                "a stored credential cannot be decrypted with the current secret key"
            ) from None


def secret_box(settings: Settings) -> SecretBox:
    """The box of this deployment's key; see the module docstring for where it comes from.

    Raises :class:`SecretKeyMissing` in production without ``REFUNDWATCH_SECRET_KEY``.
    """
    if settings.secret_key is not None:
        return SecretBox(settings.secret_key.get_secret_value())
    if settings.environment == "production":
        raise SecretKeyMissing(
            "REFUNDWATCH_SECRET_KEY is not set: connections keep their credentials "
            "encrypted, and production needs the key from the environment",
        )
    return SecretBox(_development_key(settings.data_dir.expanduser() / KEY_FILE))


def _development_key(path: Path) -> str:
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(32)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(key + "\n")
    log.warning(
        "REFUNDWATCH_SECRET_KEY is not set: created a development key in %s to encrypt "
        "connection credentials (set REFUNDWATCH_SECRET_KEY in production)",
        path,
    )
    return key
