"""The key check every route declares: ``IngestKey``, ``ReadKey``, ``AdminKey``.

``async def`` on purpose: FastAPI runs a plain ``def`` dependency in a worker
thread, a hop that costs more than the cached lookup itself.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from app.auth.keys import Scope, grants, hash_key
from app.auth.service import KeyCache, Principal, bootstrap_principal, find_principal
from app.config import Settings
from app.db.engine import Database
from app.errors import Forbidden, Unauthorized

_bearer = HTTPBearer(
    auto_error=False,
    description="An API key: `Authorization: Bearer rw_…` (scopes ingest, read, admin).",
)


def require(scope: Scope, *alternatives: Scope) -> Callable[..., Awaitable[Principal]]:
    """A dependency that admits keys holding ``scope`` or one of ``alternatives``
    (admin implies all)."""
    accepted = (scope, *alternatives)

    async def check(
        request: Request,
        credentials: Annotated[HTTPAuthorizationCredentials | None, Security(_bearer)],
    ) -> Principal:
        if credentials is None or credentials.scheme.lower() != "bearer":
            raise Unauthorized("send an API key: Authorization: Bearer <key>", code="missing_key")
        digest = hash_key(credentials.credentials)
        cache: KeyCache = request.app.state.key_cache
        principal = cache.get(digest)
        if principal is None:
            settings: Settings = request.app.state.settings
            bootstrap = settings.bootstrap_admin_key
            principal = bootstrap_principal(
                digest, bootstrap.get_secret_value() if bootstrap else None
            )
            if principal is None:
                db: Database = request.app.state.db
                async with db.read() as session:
                    principal = await find_principal(session, digest)
            if principal is None:
                raise Unauthorized("the API key is unknown or revoked", code="invalid_key")
            cache.put(digest, principal)
        if not any(grants(principal.scopes, wanted) for wanted in accepted):
            needed = " or ".join(repr(wanted) for wanted in accepted)
            raise Forbidden(f"this key lacks the {needed} scope", code="insufficient_scope")
        return principal

    return check


IngestKey = Annotated[Principal, Security(require("ingest"))]
ReadKey = Annotated[Principal, Security(require("read"))]
AdminKey = Annotated[Principal, Security(require("admin"))]
IngestOrReadKey = Annotated[Principal, Security(require("ingest", "read"))]
