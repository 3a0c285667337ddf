"""The browser side of refundwatch: the operator's console at ``/console`` and the API explorer.

Everything it serves to a browser ships inside this package (``static/``, ``templates/``), so it
works on a network that cannot reach a CDN. Wire it into an app created with
``FastAPI(docs_url=None, redoc_url=None)`` by calling :func:`install`.
"""

from __future__ import annotations

from fastapi import FastAPI

from app.console.docs import install_docs
from app.console.endpoints import router as console_router
from app.console.sessions import LoginThrottle
from app.console.static import mount_static

__all__ = ["install", "install_docs", "mount_static"]


def install(app: FastAPI) -> None:
    """Add ``/docs``, ``/redoc``, the ``/static`` mount they load their assets from, and the
    console's pages under ``/console`` (left out of the OpenAPI schema)."""
    install_docs(app)
    mount_static(app)
    app.state.console_login_throttle = LoginThrottle()
    app.include_router(console_router)
