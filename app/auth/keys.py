"""API key material: generation and hashing (pure).

Keys are 256-bit random tokens, so a fast SHA-256 is the right hash: there is
nothing to brute-force that a slow KDF would protect (unlike passwords).
"""

from __future__ import annotations

import hashlib
import secrets
from typing import Literal

Scope = Literal["ingest", "read", "admin"]
KEY_PREFIX = "rw_"


def generate_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


def hash_key(key: str) -> bytes:
    return hashlib.sha256(key.encode()).digest()


def display_prefix(key: str) -> str:
    """The first characters, kept in clear so an operator can tell keys apart."""
    return key[:10]


def grants(scopes: frozenset[str], needed: Scope) -> bool:
    """admin implies every scope."""
    return "admin" in scopes or needed in scopes
