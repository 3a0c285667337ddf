"""Helpers of the console's HTTP tests: sign in as a browser would, read a page's markers."""

from __future__ import annotations

import json
import re
from typing import Any

import httpx

from tests.conftest import ADMIN_KEY

LOGIN_TOKEN = re.compile(r'name="login_token" value="([^"]+)"')
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
STORE_ROW = re.compile(r'<tr data-store-id="([^"]+)" data-state="([^"]+)"')


async def sign_in(
    console: httpx.AsyncClient, key: str = ADMIN_KEY, *, next_path: str | None = None
) -> httpx.Response:
    """Open the sign-in form (its cookie and token), then post the key with them."""
    form = await console.get("/console/login", params={"next": next_path} if next_path else None)
    assert form.status_code == 200, form.text
    token = LOGIN_TOKEN.search(form.text)
    assert token is not None
    return await console.post(
        "/console/login",
        data={"api_key": key, "login_token": token.group(1), "next": next_path or ""},
    )


async def signed_in(console: httpx.AsyncClient, key: str = ADMIN_KEY) -> None:
    response = await sign_in(console, key)
    assert response.status_code == 303, response.text
    assert response.headers["location"] == "/console"


def csrf_token(html: str) -> str:
    found = CSRF.search(html)
    assert found is not None, "the page has no form with a CSRF token"
    return found.group(1)


async def page_csrf(console: httpx.AsyncClient, path: str = "/console") -> str:
    response = await console.get(path)
    assert response.status_code == 200, response.text
    return csrf_token(response.text)


def store_rows(html: str) -> list[tuple[str, str]]:
    """(store_id, data-state) of every overview row, in page order."""
    return STORE_ROW.findall(html)


def chart_data(html: str) -> Any:
    found = re.search(
        r'<script type="application/json" id="rate-history-data">(.*?)</script>', html, re.S
    )
    assert found is not None
    return json.loads(found.group(1))


def set_cookie_headers(response: httpx.Response) -> dict[str, str]:
    """Each Set-Cookie header by cookie name."""
    found: dict[str, str] = {}
    for header in response.headers.get_list("set-cookie"):
        found[header.split("=", 1)[0]] = header
    return found
