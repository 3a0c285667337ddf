"""Console use cases: sign in with an API key, find the signed-in operator, sign out, acknowledge.

Keys are checked the way the API checks them (``app.auth``: the bootstrap key from the
environment, else the stored hash of an unrevoked key), and a session lives only as long as
its key does: every request re-checks the key in the same statement that reads the session.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from app.alerts import repository as alerts_repository
from app.auth.keys import grants, hash_key
from app.auth.service import Principal, bootstrap_principal, find_principal
from app.console import repository
from app.console.models import ConsoleSession
from app.console.sessions import csrf_token_for, new_token, token_hash
from app.errors import NotFound

# A session that ended is kept a day (what an operator may ask about), then deleted at a
# later sign-in: the table never grows with time.
ENDED_SESSIONS_KEPT = timedelta(days=1)


@dataclass(frozen=True, slots=True)
class Operator:
    """Who is signed in: the key's name and scopes, and this session's CSRF token."""

    session_id: int
    key_id: int | None
    key_name: str
    scopes: frozenset[str]
    csrf_token: str
    expires_at: datetime

    @property
    def is_admin(self) -> bool:
        """Whether this operator may change anything (silence, retry, upload…)."""
        return grants(self.scopes, "admin")

    @property
    def can_read(self) -> bool:
        return grants(self.scopes, "read")


class SignInRefused(Exception):
    """Why a key does not open the console: ``unknown_key`` or ``no_read_scope``."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


async def principal_for_key(
    session: AsyncSession, api_key: str, bootstrap_key: str | None
) -> Principal | None:
    """The key's principal as the API would find it, or None for an unknown or revoked key.

    The key is hashed before anything looks at it, and the bootstrap key is compared with
    ``hmac.compare_digest``: the time taken says nothing about how much of a key was right.
    """
    digest = hash_key(api_key)
    principal = bootstrap_principal(digest, bootstrap_key)
    if principal is None:
        principal = await find_principal(session, digest)
    return principal


async def sign_in(
    session: AsyncSession,
    api_key: str,
    *,
    bootstrap_key: str | None,
    hours: float,
    now: datetime,
) -> tuple[str, Operator]:
    """Open a session for a key with the ``read`` scope (or ``admin``); returns its token.

    Raises :class:`SignInRefused`. The token goes into the cookie and nowhere else.
    """
    principal = await principal_for_key(session, api_key.strip(), bootstrap_key)
    if principal is None:
        raise SignInRefused("unknown_key")
    if not grants(principal.scopes, "read"):
        raise SignInRefused("no_read_scope")
    await repository.forget_old_sessions(session, now - ENDED_SESSIONS_KEPT)
    token = new_token()
    record = await repository.insert_session(
        session,
        ConsoleSession(
            token_hash=token_hash(token),
            key_id=principal.key_id,
            key_hash=hash_key(api_key.strip()),
            key_name=principal.name,
            scopes=sorted(principal.scopes),
            created_at=now,
            expires_at=now + timedelta(hours=hours),
            revoked_at=None,
        ),
    )
    return token, Operator(
        session_id=record.id,
        key_id=principal.key_id,
        key_name=principal.name,
        scopes=principal.scopes,
        csrf_token=csrf_token_for(token),
        expires_at=record.expires_at,
    )


async def operator_for(
    session: AsyncSession, token: str, *, bootstrap_key: str | None, now: datetime
) -> Operator | None:
    """The operator of a session token, or None when the session is unknown or over.

    Over means: signed out, expired, its stored key revoked, or — for the bootstrap key,
    which has no row — that key no longer the one the environment gives.
    """
    row = await repository.find_session(session, token_hash(token))
    if row is None or row.revoked_at is not None or row.expires_at <= now:
        return None
    if row.key_id is not None:
        if not row.key_active:
            return None
    elif bootstrap_key is None or not hmac.compare_digest(row.key_hash, hash_key(bootstrap_key)):
        return None
    return Operator(
        session_id=row.id,
        key_id=row.key_id,
        key_name=row.key_name,
        scopes=frozenset(row.scopes),
        csrf_token=csrf_token_for(token),
        expires_at=row.expires_at,
    )


async def sign_out(session: AsyncSession, operator: Operator, now: datetime) -> None:
    """End the session now (its cookie, if replayed, opens nothing)."""
    await repository.end_session(session, operator.session_id, now)


async def acknowledge_alert(
    session: AsyncSession, alert_id: str, operator: Operator, now: datetime
) -> None:
    """Mark an alert as seen by this operator (the first acknowledgement stands)."""
    if await alerts_repository.find_alert(session, alert_id) is None:
        raise NotFound(f"no alert {alert_id!r}", code="alert_not_found")
    await repository.acknowledge(
        session, alert_id, by=operator.key_name, key_id=operator.key_id, now=now
    )
