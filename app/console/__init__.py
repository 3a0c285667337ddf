"""The browser side of refundwatch: the operator's console at ``/console`` and the API explorer.

Everything it serves to a browser ships inside this package (``static/``, ``templates/``), so it
works on a network that cannot reach a CDN. Wire it into an app created with
``FastAPI(docs_url=None, redoc_url=None)`` by calling :func:`install`.

The package's own import loads nothing: its tables (``app.console.models``) are
gathered with every other table by Alembic and the command line, which need
neither FastAPI's routing nor the templates (half a second of a short import).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from fastapi import FastAPI

__all__ = ["install", "install_docs", "mount_static"]


def install(app: FastAPI) -> None:
    """Add ``/docs``, ``/redoc``, the ``/static`` mount they load their assets from, and the
    console's pages under ``/console`` (left out of the OpenAPI schema)."""
    from app.console.endpoints import router as console_router
    from app.console.sessions import LoginThrottle

    install_docs(app)
    mount_static(app)
    app.state.console_login_throttle = LoginThrottle()
    app.include_router(console_router)


def install_docs(app: FastAPI) -> None:
    """``/docs``, its OAuth2 redirect page and ``/redoc`` (see ``app.console.docs``)."""
    from app.console import docs

    docs.install_docs(app)


def mount_static(app: FastAPI) -> None:
    """``app/console/static/`` at ``/static`` (see ``app.console.static``)."""
    from app.console import static

    static.mount_static(app)
