"""The browser side of refundwatch: the API explorer now, the operator's console next.

Everything it serves to a browser ships inside this package (``static/``), so it works on a
network that cannot reach a CDN. Wire it into an app created with
``FastAPI(docs_url=None, redoc_url=None)`` by calling :func:`install`.
"""

from __future__ import annotations

from fastapi import FastAPI

from app.console.docs import install_docs
from app.console.static import mount_static

__all__ = ["install", "install_docs", "mount_static"]


def install(app: FastAPI) -> None:
    """Add ``/docs``, ``/redoc`` and the ``/static`` mount they load their assets from."""
    install_docs(app)
    mount_static(app)
