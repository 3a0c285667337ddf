"""/docs and /redoc load everything from the package: same-origin URLs, cached, nothing outside.

The app here is a minimal FastAPI app with one bearer-protected route, wired the way create_app
wires the console (``FastAPI(docs_url=None, redoc_url=None)`` then ``install``), so these tests
hold whatever the rest of the service does.
"""

from __future__ import annotations

import hashlib
import re
import socket
from collections.abc import AsyncIterator
from html.parser import HTMLParser
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import httpx
import pytest
from fastapi import FastAPI, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from app.console import install, install_docs
from app.console.docs import REDOC_OFFLINE_SHIM
from app.console.static import (
    DEFAULT_CACHE_CONTROL,
    ECHARTS,
    REDOC,
    STATIC_DIR,
    SWAGGER_UI,
    VENDORED,
    VERSIONED_CACHE_CONTROL,
    VendoredPackage,
)
from tests.console.browser import LiveServer, guarded_context, needs_chromium

if TYPE_CHECKING:  # Playwright itself is imported only when Chromium is there to drive.
    from playwright.sync_api import Browser

API_KEY = "rw_docs_test_key_0123456789"
PAGES = ["/docs", "/redoc", "/docs/oauth2-redirect"]
EXPECTED_TYPES = {
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".png": "image/png",
}
# Any absolute URL, or a protocol-relative one ("//host/…") after a quote, "=", "(" or a space.
OUTSIDE_URL = re.compile(r"https?://|wss?://|[\"'=(\s]//[^/\s]", re.IGNORECASE)
URL_ATTRIBUTES = {"src", "href", "spec-url", "action", "srcset", "data", "poster"}

_bearer = HTTPBearer(auto_error=False, description="An API key: `Authorization: Bearer rw_…`.")


def docs_app(swagger_ui_parameters: dict[str, Any] | None = None) -> FastAPI:
    """A minimal app: one route behind the HTTP bearer scheme, the docs installed."""
    app = FastAPI(
        title="refundwatch",
        docs_url=None,
        redoc_url=None,
        swagger_ui_parameters=swagger_ui_parameters,
    )

    @app.get("/v1/whoami", summary="Who the key is", operation_id="whoami")
    async def whoami(
        credentials: Annotated[HTTPAuthorizationCredentials | None, Security(_bearer)],
    ) -> dict[str, bool]:
        """Says whether the request carried a bearer key."""
        return {"authorized": credentials is not None}

    install(app)
    return app


@pytest.fixture
def live_app() -> FastAPI:
    return docs_app()


@pytest.fixture
async def docs_client() -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=docs_app())
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        yield client


class _UrlCollector(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.urls: list[tuple[str, str, str]] = []  # (tag, attribute, value)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if name in URL_ATTRIBUTES and value is not None:
                self.urls.append((tag, name, value))


def referenced_urls(html: str) -> list[tuple[str, str, str]]:
    collector = _UrlCollector()
    collector.feed(html)
    collector.close()
    return collector.urls


def is_same_origin_path(url: str) -> bool:
    return url.startswith("/") and not url.startswith("//") and "\\" not in url


async def page_asset_urls(client: httpx.AsyncClient) -> set[str]:
    """Every src/href of /docs and /redoc (the schema URL aside)."""
    urls: set[str] = set()
    for page in ["/docs", "/redoc"]:
        html = (await client.get(page)).text
        urls |= {value for _, name, value in referenced_urls(html) if name != "spec-url"}
    return urls


# --- the pages -----------------------------------------------------------------------------


@pytest.mark.parametrize("page", PAGES)
async def test_page_names_no_url_outside_this_origin(
    docs_client: httpx.AsyncClient, page: str
) -> None:
    response = await docs_client.get(page)
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    html = response.text
    assert OUTSIDE_URL.findall(html) == []
    for tag, attribute, value in referenced_urls(html):
        assert is_same_origin_path(value), f"<{tag} {attribute}={value!r}> leaves the origin"


async def test_swagger_ui_loads_its_local_bundle_and_the_schema(
    docs_client: httpx.AsyncClient,
) -> None:
    html = (await docs_client.get("/docs")).text
    assert f'<script src="/static/{SWAGGER_UI.path("swagger-ui-bundle.js")}">' in html
    assert f'href="/static/{SWAGGER_UI.path("swagger-ui.css")}"' in html
    assert "url: '/openapi.json'" in html
    assert "oauth2RedirectUrl: window.location.origin + '/docs/oauth2-redirect'" in html


async def test_redoc_loads_its_local_bundle_and_no_fonts(docs_client: httpx.AsyncClient) -> None:
    html = (await docs_client.get("/redoc")).text
    assert f'<script src="/static/{REDOC.path("redoc.standalone.js")}">' in html
    # the shim that keeps ReDoc's CDN logo out runs first
    assert html.index(REDOC_OFFLINE_SHIM) < html.index("redoc.standalone.js")
    assert '<redoc spec-url="/openapi.json">' in html
    assert "fonts.googleapis" not in html and "<link href=" not in html


async def test_swagger_ui_keeps_the_key_out_of_browser_storage(
    docs_client: httpx.AsyncClient,
) -> None:
    html = (await docs_client.get("/docs")).text
    assert '"persistAuthorization": false' in html
    assert '"persistAuthorization": true' not in html
    assert '"validatorUrl": null' in html  # no schema sent to the public validator


async def test_an_app_that_asks_to_persist_the_key_still_does_not() -> None:
    app = docs_app(swagger_ui_parameters={"persistAuthorization": True, "docExpansion": "none"})
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        html = (await client.get("/docs")).text
    assert '"persistAuthorization": false' in html and '"persistAuthorization": true' not in html
    assert '"docExpansion": "none"' in html


async def test_the_schema_the_pages_load_lists_the_bearer_scheme(
    docs_client: httpx.AsyncClient,
) -> None:
    response = await docs_client.get("/openapi.json")
    assert response.status_code == 200
    schema = response.json()
    assert schema["components"]["securitySchemes"]["HTTPBearer"] == {
        "type": "http",
        "scheme": "bearer",
        "description": "An API key: `Authorization: Bearer rw_…`.",
    }


async def test_docs_routes_stay_out_of_the_schema(docs_client: httpx.AsyncClient) -> None:
    paths = set((await docs_client.get("/openapi.json")).json()["paths"])
    assert paths == {"/v1/whoami"}


async def test_pages_are_revalidated_so_an_upgrade_is_seen(
    docs_client: httpx.AsyncClient,
) -> None:
    for page in ["/docs", "/redoc"]:
        assert (await docs_client.get(page)).headers["cache-control"] == "no-cache"


async def test_pages_behind_a_path_prefix_point_inside_it() -> None:
    transport = httpx.ASGITransport(app=docs_app(), root_path="/rw")
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        docs = (await client.get("/rw/docs")).text
        redoc = (await client.get("/rw/redoc")).text
        assert "url: '/rw/openapi.json'" in docs
        assert "window.location.origin + '/rw/docs/oauth2-redirect'" in docs
        assert '<redoc spec-url="/rw/openapi.json">' in redoc
        urls = {v for html in (docs, redoc) for _, _, v in referenced_urls(html)}
        assert urls and all(url.startswith("/rw/") for url in urls)
        for url in urls:
            assert (await client.get(url)).status_code == 200, url


def test_install_docs_refuses_an_app_that_kept_fastapis_cdn_pages() -> None:
    with pytest.raises(RuntimeError, match=r"docs_url=None, redoc_url=None"):
        install_docs(FastAPI())


# --- the assets ----------------------------------------------------------------------------


async def test_every_asset_the_pages_reference_is_served_cached_with_its_type(
    docs_client: httpx.AsyncClient,
) -> None:
    urls = await page_asset_urls(docs_client)
    shim = f"/static/{REDOC_OFFLINE_SHIM}"  # the console's own file: cached an hour
    assert urls == {
        f"/static/{SWAGGER_UI.path('swagger-ui-bundle.js')}",
        f"/static/{SWAGGER_UI.path('swagger-ui.css')}",
        f"/static/{SWAGGER_UI.path('favicon-32x32.png')}",
        f"/static/{REDOC.path('redoc.standalone.js')}",
        shim,
    }
    for url in sorted(urls):
        response = await docs_client.get(url)
        assert response.status_code == 200, url
        assert response.headers["content-type"] == EXPECTED_TYPES[Path(url).suffix], url
        expected = DEFAULT_CACHE_CONTROL if url == shim else VERSIONED_CACHE_CONTROL
        assert response.headers["cache-control"] == expected, url
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.content == (STATIC_DIR / url.removeprefix("/static/")).read_bytes()


async def test_the_console_charting_library_is_served_cached(
    docs_client: httpx.AsyncClient,
) -> None:
    response = await docs_client.get(f"/static/{ECHARTS.path('echarts.min.js')}")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/javascript; charset=utf-8"
    assert response.headers["cache-control"] == VERSIONED_CACHE_CONTROL
    assert f't.version="{ECHARTS.version}"' in response.text


async def test_a_file_outside_a_versioned_folder_is_cached_an_hour(
    docs_client: httpx.AsyncClient,
) -> None:
    response = await docs_client.get("/static/vendor/README.md")
    assert response.status_code == 200
    assert response.headers["cache-control"] == DEFAULT_CACHE_CONTROL == "public, max-age=3600"


async def test_a_revalidation_keeps_the_cache_headers(docs_client: httpx.AsyncClient) -> None:
    url = f"/static/{SWAGGER_UI.path('swagger-ui.css')}"
    etag = (await docs_client.get(url)).headers["etag"]
    response = await docs_client.get(url, headers={"If-None-Match": etag})
    assert response.status_code == 304
    assert response.headers["cache-control"] == VERSIONED_CACHE_CONTROL


async def test_head_answers_like_get_without_a_body(docs_client: httpx.AsyncClient) -> None:
    url = f"/static/{REDOC.path('redoc.standalone.js')}"
    response = await docs_client.head(url)
    assert response.status_code == 200 and response.content == b""
    assert response.headers["content-type"] == "text/javascript; charset=utf-8"
    assert response.headers["cache-control"] == VERSIONED_CACHE_CONTROL


@pytest.mark.parametrize(
    "path",
    [
        "/static/nope.js",
        f"/static/{SWAGGER_UI.path('nope.js')}",
        "/static/vendor/swagger-ui-0.0.1/swagger-ui-bundle.js",
    ],
)
async def test_an_unknown_static_path_is_404_and_not_cached(
    docs_client: httpx.AsyncClient, path: str
) -> None:
    response = await docs_client.get(path)
    assert response.status_code == 404
    assert "immutable" not in response.headers.get("cache-control", "")


@pytest.mark.parametrize(
    "path", ["/static", "/static/", "/static/vendor", "/static/vendor/", f"/static/{REDOC.folder}/"]
)
async def test_directories_are_not_listed(docs_client: httpx.AsyncClient, path: str) -> None:
    response = await docs_client.get(path, follow_redirects=True)
    assert response.status_code == 404
    assert "redoc" not in response.text and "swagger" not in response.text


# Each names a file that exists outside static/, so a 404 means the guard refused it.
TRAVERSALS = [
    ("/static/%2e%2e/docs.py", "app/console/docs.py"),
    ("/static/..%2fdocs.py", "app/console/docs.py"),
    ("/static/vendor/%2e%2e/%2e%2e/static.py", "app/console/static.py"),
    ("/static/%2e%2e/%2e%2e/%2e%2e/pyproject.toml", "pyproject.toml"),
    ("/static/%2e%2e%2f%2e%2e%2f%2e%2e%2fpyproject.toml", "pyproject.toml"),
]
PROJECT_ROOT = STATIC_DIR.parents[2]


@pytest.mark.parametrize(("path", "target"), TRAVERSALS)
async def test_dot_dot_traversal_is_refused(
    docs_client: httpx.AsyncClient, path: str, target: str
) -> None:
    assert (PROJECT_ROOT / target).is_file()
    response = await docs_client.get(path)
    assert response.request.url.raw_path.decode().startswith(path)  # not normalised away
    assert response.status_code == 404


def raw_get(server: LiveServer, target: str) -> tuple[int, bytes]:
    """Send a request line exactly as written (no client normalises the path)."""
    with socket.create_connection((server.host, server.port), timeout=5) as conn:
        conn.sendall(
            f"GET {target} HTTP/1.1\r\nHost: {server.host}\r\nConnection: close\r\n\r\n".encode()
        )
        answer = b""
        while chunk := conn.recv(65536):
            answer += chunk
    status_line, _, rest = answer.partition(b"\r\n")
    return int(status_line.split()[1]), rest


@pytest.mark.parametrize(
    ("target", "outside_file"),
    [
        ("/static/../docs.py", "app/console/docs.py"),
        ("/static/vendor/../../static.py", "app/console/static.py"),
        ("/static/../../../pyproject.toml", "pyproject.toml"),
        ("/static/..%2f..%2f..%2fpyproject.toml", "pyproject.toml"),
    ],
)
def test_dot_dot_traversal_is_refused_by_the_real_server(
    live_server: LiveServer, target: str, outside_file: str
) -> None:
    status, rest = raw_get(live_server, target)
    assert status == 404
    assert (PROJECT_ROOT / outside_file).read_bytes()[:40] not in rest


def test_docs_and_assets_over_a_real_server(live_server: LiveServer) -> None:
    with httpx.Client(base_url=live_server.base_url, trust_env=False) as client:
        for page in ["/docs", "/redoc"]:
            html = client.get(page).text
            for _, name, url in referenced_urls(html):
                response = client.get(url)
                assert response.status_code == 200, url
                if name != "spec-url" and "/vendor/" in url:
                    assert response.headers["cache-control"] == VERSIONED_CACHE_CONTROL


# --- the vendored files --------------------------------------------------------------------

HASH_LINE = re.compile(r"^(?P<sha256>[0-9a-f]{64})  (?P<file>\S+)$", re.MULTILINE)


@pytest.mark.parametrize("package", VENDORED, ids=lambda package: package.name)
def test_a_vendored_folder_matches_its_version_file(package: VendoredPackage) -> None:
    folder = STATIC_DIR / package.folder
    version_file = (folder / "VERSION").read_text()
    assert f"\nversion: {package.version}\n" in version_file
    listed = {m["file"]: m["sha256"] for m in HASH_LINE.finditer(version_file)}
    present = {
        path.relative_to(folder).as_posix()
        for path in folder.rglob("*")
        if path.is_file() and path.name != "VERSION"
    }
    assert set(listed) == present
    assert "LICENSE" in present
    for name, sha256 in listed.items():
        assert hashlib.sha256((folder / name).read_bytes()).hexdigest() == sha256, name


def test_the_vendor_folders_are_exactly_the_ones_the_code_names() -> None:
    folders = {p.name for p in (STATIC_DIR / "vendor").iterdir() if p.is_dir()}
    assert folders == {Path(package.folder).name for package in VENDORED}


def test_the_shipped_stylesheets_fetch_nothing_outside() -> None:
    for css in (STATIC_DIR / "vendor").rglob("*.css"):
        text = css.read_text()
        assert "@import" not in text, css
        for target in re.findall(r"url\(\s*['\"]?([^'\")\s]+)", text):
            assert target.startswith("data:") or is_same_origin_path(target), (css, target)


# --- in a browser --------------------------------------------------------------------------


@needs_chromium
def test_swagger_ui_renders_offline_and_authorize_sends_the_key(
    chromium: Browser, live_server: LiveServer
) -> None:
    with guarded_context(chromium) as (context, guard):
        page = context.new_page()
        page.goto(live_server.url("/docs"))
        page.locator(".opblock-summary").filter(has_text="/v1/whoami").wait_for()

        page.locator(".auth-wrapper > button.authorize").click()
        dialog = page.locator(".modal-ux")
        dialog.wait_for()
        assert "HTTPBearer" in dialog.inner_text()
        dialog.locator("#auth-bearer-value").fill(API_KEY)
        dialog.get_by_role("button", name="Apply credentials").click()
        dialog.locator("button.btn-done").first.click()

        page.locator(".opblock-summary").filter(has_text="/v1/whoami").click()
        page.locator("button.try-out__btn").click()
        with page.expect_request(lambda request: "/v1/whoami" in request.url) as sent:
            page.locator("button.execute").click()
        assert sent.value.headers.get("authorization") == f"Bearer {API_KEY}"
        status = page.locator(".live-responses-table tbody .response-col_status").first
        status.wait_for()
        assert status.inner_text().strip().startswith("200")

        storage = page.evaluate(
            "() => JSON.stringify([Object.entries(localStorage), Object.entries(sessionStorage)])"
        )
        assert API_KEY not in storage
        assert all(API_KEY not in cookie["value"] for cookie in context.cookies())
        guard.assert_clean()
        assert any(url.endswith("swagger-ui-bundle.js") for url in guard.requests)


@needs_chromium
def test_redoc_renders_offline(chromium: Browser, live_server: LiveServer) -> None:
    with guarded_context(chromium) as (context, guard):
        page = context.new_page()
        page.goto(live_server.url("/redoc"))
        page.get_by_text("Who the key is").first.wait_for()
        guard.assert_clean()
        assert any(url.endswith("redoc.standalone.js") for url in guard.requests)
