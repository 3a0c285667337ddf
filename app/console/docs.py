"""``/docs`` (Swagger UI) and ``/redoc`` loading every asset from the package itself.

FastAPI's own ``/docs`` and ``/redoc`` pull their JavaScript, CSS, favicon and fonts from public
CDNs, so on a host without outside access (or where those CDNs are unreliable) they are blank
pages. These routes render the same pages with FastAPI's ``get_swagger_ui_html`` and
``get_redoc_html``, pointed at the copies under ``/static/vendor/``; every URL in them is
same-origin.

Wiring — create the app without FastAPI's docs, then install these and the static mount::

    app = FastAPI(docs_url=None, redoc_url=None, ...)
    install_docs(app)    # /docs, /docs/oauth2-redirect, /redoc
    mount_static(app)    # /static (app.console.static)

or ``app.console.install(app)``, which does both. The pages need ``/static``: install both.

Swagger UI keeps the API key a user enters with Authorize (the HTTP bearer scheme) in memory
only: ``persistAuthorization`` stays off, so the key is not written to the browser's
localStorage and is gone when the tab closes. The online validator is off too (it would send the
schema to a public service). ReDoc gets no Google Fonts link and falls back to system fonts, and
``console/redoc-offline.js`` runs before it to replace the one image ReDoc 2.x would load from its
own CDN (the "API docs by Redocly" logo) with an empty inline one.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.openapi.docs import (
    get_redoc_html,
    get_swagger_ui_html,
    get_swagger_ui_oauth2_redirect_html,
)
from fastapi.responses import HTMLResponse

from app.console.static import REDOC, SWAGGER_UI, static_url

DOCS_PATH = "/docs"
REDOC_PATH = "/redoc"
DEFAULT_OAUTH2_REDIRECT_PATH = "/docs/oauth2-redirect"
FAVICON = SWAGGER_UI.path("favicon-32x32.png")
# ReDoc 2.x hard-codes a logo from its CDN; this same-origin script swaps it out (see the file).
REDOC_OFFLINE_SHIM = "console/redoc-offline.js"

# The pages point at versioned asset URLs; revalidating the page itself means an upgrade is seen
# at the next load while the assets stay cached.
PAGE_HEADERS = {"Cache-Control": "no-cache"}

# Swagger UI settings forced on top of the app's own ``swagger_ui_parameters``.
FORCED_SWAGGER_UI_PARAMETERS: dict[str, Any] = {
    "persistAuthorization": False,
    "validatorUrl": None,
}


def install_docs(app: FastAPI) -> None:
    """Add ``/docs``, its OAuth2 redirect page and ``/redoc``, all out of the OpenAPI schema.

    The app must be created with ``docs_url=None, redoc_url=None``: FastAPI registers its own
    CDN-backed pages in its constructor, and they would answer first.
    """
    if app.docs_url is not None or app.redoc_url is not None:
        raise RuntimeError(
            "create the app with FastAPI(docs_url=None, redoc_url=None) before install_docs(): "
            "FastAPI's own /docs and /redoc load their assets from a CDN"
        )
    if app.openapi_url is None:
        return
    openapi_path = app.openapi_url
    oauth2_redirect_path = app.swagger_ui_oauth2_redirect_url or DEFAULT_OAUTH2_REDIRECT_PATH
    swagger_ui_parameters = {
        **(app.swagger_ui_parameters or {}),
        **FORCED_SWAGGER_UI_PARAMETERS,
    }

    async def swagger_ui_page(request: Request) -> HTMLResponse:
        root_path = _root_path(request)
        page = get_swagger_ui_html(
            openapi_url=root_path + openapi_path,
            title=f"{app.title} - Swagger UI",
            swagger_js_url=static_url(request, SWAGGER_UI.path("swagger-ui-bundle.js")),
            swagger_css_url=static_url(request, SWAGGER_UI.path("swagger-ui.css")),
            swagger_favicon_url=static_url(request, FAVICON),
            oauth2_redirect_url=root_path + oauth2_redirect_path,
            init_oauth=app.swagger_ui_init_oauth,
            swagger_ui_parameters=swagger_ui_parameters,
        )
        page.headers.update(PAGE_HEADERS)
        return page

    async def swagger_ui_oauth2_redirect(request: Request) -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()

    async def redoc_page(request: Request) -> HTMLResponse:
        redoc_js_url = static_url(request, REDOC.path("redoc.standalone.js"))
        page = get_redoc_html(
            openapi_url=_root_path(request) + openapi_path,
            title=f"{app.title} - ReDoc",
            redoc_js_url=redoc_js_url,
            redoc_favicon_url=static_url(request, FAVICON),
            with_google_fonts=False,
        )
        html = bytes(page.body).decode()
        bundle = f'<script src="{redoc_js_url}">'
        shim = f'<script src="{static_url(request, REDOC_OFFLINE_SHIM)}"></script>\n    '
        assert bundle in html, "FastAPI's ReDoc page no longer loads the bundle as expected"
        return HTMLResponse(html.replace(bundle, shim + bundle, 1), headers=PAGE_HEADERS)

    app.add_route(DOCS_PATH, swagger_ui_page, include_in_schema=False)
    app.add_route(oauth2_redirect_path, swagger_ui_oauth2_redirect, include_in_schema=False)
    app.add_route(REDOC_PATH, redoc_page, include_in_schema=False)


def _root_path(request: Request) -> str:
    return str(request.scope.get("root_path", "")).rstrip("/")
