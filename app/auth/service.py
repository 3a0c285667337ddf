"""Looking up keys (with a short cache) and managing them."""

from __future__ import annotations

import hmac
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from app.auth import repository
from app.auth.keys import display_prefix, generate_key, hash_key
from app.auth.models import ApiKey


@dataclass(frozen=True, slots=True)
class Principal:
    key_id: int | None  # None for the bootstrap key from the environment
    name: str
    scopes: frozenset[str]


class KeyCache:
    """Verified keys for a few seconds, so a single-event ingest costs no key lookup.

    A revoked key is dropped from this process's cache at once; other processes
    notice within ``ttl`` seconds (documented in docs/configuration.md).
    """

    def __init__(self, ttl: float) -> None:
        self.ttl = ttl
        self._entries: dict[bytes, tuple[float, Principal]] = {}

    def get(self, digest: bytes) -> Principal | None:
        entry = self._entries.get(digest)
        if entry is None or entry[0] < time.monotonic():
            return None
        return entry[1]

    def put(self, digest: bytes, principal: Principal) -> None:
        if self.ttl > 0:
            if len(self._entries) > 10_000:
                self._entries.clear()
            self._entries[digest] = (time.monotonic() + self.ttl, principal)

    def forget(self, key_id: int) -> None:
        for digest, (_exp, principal) in list(self._entries.items()):
            if principal.key_id == key_id:
                del self._entries[digest]


def bootstrap_principal(presented: bytes, bootstrap_key: str | None) -> Principal | None:
    if bootstrap_key and hmac.compare_digest(presented, hash_key(bootstrap_key)):
        return Principal(key_id=None, name="bootstrap", scopes=frozenset({"admin"}))
    return None


async def find_principal(session: AsyncSession, digest: bytes) -> Principal | None:
    row = await repository.find_active(session, digest)
    if row is None:
        return None
    return Principal(key_id=row.id, name=row.name, scopes=frozenset(row.scopes))


async def create_key(
    session: AsyncSession, *, name: str, scopes: Sequence[str], now: datetime
) -> tuple[ApiKey, str]:
    """A new key; the clear key is returned once and never stored."""
    key = generate_key()
    record = ApiKey(
        name=name,
        prefix=display_prefix(key),
        key_hash=hash_key(key),
        scopes=sorted(set(scopes)),
        created_at=now,
        revoked_at=None,
    )
    return await repository.insert_key(session, record), key


async def revoke_key(session: AsyncSession, key_id: int, now: datetime) -> bool:
    return await repository.revoke(session, key_id, now)
