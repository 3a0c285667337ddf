"""The package's own browser assets, served at ``/static`` with cache headers by how they are named.

Every file a browser loads from refundwatch lives in ``app/console/static/`` and ships in the
wheel: nothing comes from a CDN at run time, so the explorer and the console work on a network
that cannot reach one.

Third-party files live in ``vendor/<name>-<version>/`` (see its README). Their URL changes with
their version, so a browser may keep them for a year without asking again
(``public, max-age=31536000, immutable``). Everything else — the console's own CSS and scripts,
edited in place — is cached for an hour. Content types are fixed here rather than guessed from the
host's ``mimetypes`` tables, which differ between machines (``.js`` is ``application/javascript``
on some, ``text/javascript`` on others). Directories are never listed: a directory path is a 404.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from fastapi import FastAPI, Request
from starlette.datastructures import Headers
from starlette.responses import FileResponse, Response
from starlette.staticfiles import NotModifiedResponse, PathLike, StaticFiles
from starlette.types import Scope

STATIC_DIR = Path(__file__).resolve().parent / "static"
STATIC_URL_PATH = "/static"
STATIC_ROUTE_NAME = "static"

VERSIONED_CACHE_CONTROL = "public, max-age=31536000, immutable"
DEFAULT_CACHE_CONTROL = "public, max-age=3600"

# Files without a suffix (LICENSE, NOTICE, VERSION) are plain text.
MEDIA_TYPES = {
    ".js": "text/javascript; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".map": "application/json",
    ".json": "application/json",
    ".html": "text/html; charset=utf-8",
    ".txt": "text/plain; charset=utf-8",
    ".md": "text/markdown; charset=utf-8",
    ".png": "image/png",
    ".svg": "image/svg+xml",
    ".ico": "image/x-icon",
    ".woff2": "font/woff2",
    "": "text/plain; charset=utf-8",
}
FALLBACK_MEDIA_TYPE = "application/octet-stream"


@dataclass(frozen=True)
class VendoredPackage:
    """A third-party package copied into ``vendor/<name>-<version>/``."""

    name: str
    version: str

    @property
    def folder(self) -> str:
        """The folder under ``static/``, e.g. ``vendor/echarts-6.1.0``."""
        return f"vendor/{self.name}-{self.version}"

    def path(self, filename: str) -> str:
        """A file's path under ``static/``, to pass to :func:`static_url`."""
        return f"{self.folder}/{filename}"


SWAGGER_UI = VendoredPackage("swagger-ui", "5.35.0")
REDOC = VendoredPackage("redoc", "2.5.4")
ECHARTS = VendoredPackage("echarts", "6.1.0")
VENDORED = (SWAGGER_UI, REDOC, ECHARTS)


def media_type_for(path: PathLike) -> str:
    """The Content-Type for a static file, from its suffix."""
    return MEDIA_TYPES.get(Path(path).suffix.lower(), FALLBACK_MEDIA_TYPE)


class CachedStaticFiles(StaticFiles):
    """StaticFiles with fixed content types, ``nosniff``, and a Cache-Control per folder.

    A file counts as versioned when it sits in a folder of ``vendor/`` (``vendor/x-1.2/a.js``),
    not when it is ``vendor/README.md`` itself.
    """

    def __init__(self, *, directory: PathLike) -> None:
        super().__init__(directory=directory, html=False)
        self._vendor_dir = os.path.realpath(os.path.join(directory, "vendor"))

    def file_response(
        self,
        full_path: PathLike,
        stat_result: os.stat_result,
        scope: Scope,
        status_code: int = 200,
    ) -> Response:
        response = FileResponse(
            full_path,
            status_code=status_code,
            stat_result=stat_result,
            media_type=media_type_for(full_path),
        )
        response.headers["Cache-Control"] = self.cache_control_for(full_path)
        response.headers["X-Content-Type-Options"] = "nosniff"
        # Checked after the headers are set: a 304 carries the same Cache-Control.
        if self.is_not_modified(response.headers, Headers(scope=scope)):
            return NotModifiedResponse(response.headers)
        return response

    def cache_control_for(self, full_path: PathLike) -> str:
        """Immutable for a file inside a versioned vendor folder, an hour for the rest."""
        relative = os.path.relpath(os.path.realpath(full_path), self._vendor_dir)
        parts = Path(relative).parts
        if parts and parts[0] != os.pardir and len(parts) >= 2:
            return VERSIONED_CACHE_CONTROL
        return DEFAULT_CACHE_CONTROL


def mount_static(app: FastAPI) -> None:
    """Serve ``app/console/static/`` at ``/static`` (route name ``static``)."""
    app.mount(STATIC_URL_PATH, CachedStaticFiles(directory=STATIC_DIR), name=STATIC_ROUTE_NAME)


def static_url(request: Request, path: str) -> str:
    """A same-origin URL (no scheme, no host) for a file under ``static/``.

    It keeps the ASGI ``root_path``, so it is right behind a proxy that mounts the app under a
    prefix, and it never names a host, unlike ``request.url_for``.
    """
    root_path = str(request.scope.get("root_path", "")).rstrip("/")
    return f"{root_path}{STATIC_URL_PATH}/{path.lstrip('/')}"
