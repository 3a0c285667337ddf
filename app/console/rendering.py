"""Rendering console pages: the Jinja2 environment, what every page gets, and its headers.

Templates live in ``app/console/templates`` and are autoescaped. Every page gets the
language and its translator ``t``, the signed-in operator (with the CSRF token its forms
carry), ``url()`` for console paths and ``static()`` for assets (both keep the ASGI
``root_path``), and the formatting helpers.

Each page is sent with a Content-Security-Policy that allows scripts, styles and images from
this origin only (no inline script runs: the chart's data is JSON in a non-executable
``<script type="application/json">``), no framing, and ``Cache-Control: no-store``: pages
show a seller's figures and must not stay in a shared cache or the back-forward cache of a
signed-out browser.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import quote

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from app.console import formatting
from app.console.i18n import Translator, negotiate
from app.console.service import Operator
from app.console.sessions import COOKIE_PATH, CSRF_FIELD, LANGUAGE_COOKIE
from app.console.static import ECHARTS, STATIC_DIR, static_url

TEMPLATES_DIR = Path(__file__).resolve().parent / "templates"

CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "font-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)
PAGE_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


@lru_cache(maxsize=1)
def environment() -> Environment:
    """The templates' environment, built once (templates are compiled on first use)."""
    env = Environment(
        loader=FileSystemLoader(TEMPLATES_DIR),
        autoescape=select_autoescape(["html"]),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        auto_reload=False,
    )
    env.globals.update(
        percent=formatting.percent,
        decimal_percent=formatting.decimal_percent,
        signed_points=formatting.signed_points,
        signed_count=formatting.signed_count,
        rate_of=formatting.rate_of,
        threshold_percent=formatting.threshold_percent,
        local_time=formatting.local_time,
        utc_offset=formatting.utc_offset,
        masked_url=formatting.masked_url,
        CSRF_FIELD=CSRF_FIELD,
    )
    return env


@lru_cache(maxsize=1)
def favicon_data_uri() -> str:
    """The favicon inline: a browser asks for a favicon on its own, after the page, and a
    navigation that cuts that request short would show as a failed request."""
    svg = (STATIC_DIR / "console" / "favicon.svg").read_text().strip()
    return "data:image/svg+xml," + quote(svg, safe=" =:/'")


@lru_cache(maxsize=64)
def _asset_version(path: str) -> str:
    """A short hash of one of the console's own assets: its URL changes when it does."""
    return hashlib.sha256((STATIC_DIR / path).read_bytes()).hexdigest()[:12]


def root_path(request: Request) -> str:
    return str(request.scope.get("root_path", "")).rstrip("/")


def console_url(request: Request, path: str = "") -> str:
    """A console URL (``/console/…``) behind the app's root path, if any."""
    return f"{root_path(request)}{COOKIE_PATH}{path}"


def asset_url(request: Request, path: str) -> str:
    """A static asset's URL; the console's own files get ``?v=<hash>`` so an upgrade shows."""
    url = static_url(request, path)
    if path.startswith("vendor/"):
        return url  # the folder name carries the version
    return f"{url}?v={_asset_version(path)}"


def language_of(request: Request) -> str:
    return negotiate(request.cookies.get(LANGUAGE_COOKIE), request.headers.get("accept-language"))


def render(
    request: Request,
    template: str,
    context: Mapping[str, Any],
    *,
    operator: Operator | None = None,
    status_code: int = 200,
    section: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> HTMLResponse:
    """One page in the request's language, with the console's security headers."""
    language = language_of(request)
    page = (
        environment()
        .get_template(template)
        .render(
            {
                "lang": language,
                "t": Translator(language),
                "operator": operator,
                "section": section,
                "url": lambda path="": console_url(request, path),
                "static": lambda path: asset_url(request, path),
                "echarts_path": ECHARTS.path("echarts.min.js"),
                "current_path": request.url.path,
                "current_query": request.url.query,
                "docs_url": f"{root_path(request)}/docs",
                "favicon": favicon_data_uri(),
                "notice": None,
                **context,
            }
        )
    )
    response = HTMLResponse(page, status_code=status_code)
    response.headers.update(PAGE_HEADERS)
    if headers:
        response.headers.update(headers)
    return response
