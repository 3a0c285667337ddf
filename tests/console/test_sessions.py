"""Signing in to the console: the cookie, CSRF, sign-out, expiry, revocation, scopes, throttle."""

from __future__ import annotations

from datetime import timedelta

import httpx
from fastapi import FastAPI
from pydantic import SecretStr
from sqlalchemy import select

from app.clock import FrozenClock
from app.console.models import ConsoleSession
from app.console.sessions import token_hash
from tests.conftest import ADMIN_KEY
from tests.console.helpers import (
    LOGIN_TOKEN,
    csrf_token,
    page_csrf,
    set_cookie_headers,
    sign_in,
    signed_in,
)


async def create_key(client: httpx.AsyncClient, *scopes: str) -> dict[str, str]:
    response = await client.post("/v1/api-keys", json={"name": "op", "scopes": list(scopes)})
    assert response.status_code == 201, response.text
    body: dict[str, str] = response.json()
    return body


async def silences(client: httpx.AsyncClient) -> list[object]:
    items: list[object] = (await client.get("/v1/silences")).json()["items"]
    return items


# --------------------------------------------------------------------------- signing in


async def test_a_browser_without_a_session_is_sent_to_sign_in_and_back(
    console: httpx.AsyncClient,
) -> None:
    response = await console.get("/console/alerts?store_id=s1")
    assert response.status_code == 303
    assert response.headers["location"] == "/console/login?next=%2Fconsole%2Falerts%3Fstore_id%3Ds1"

    signed = await sign_in(console, next_path="/console/alerts?store_id=s1")
    assert signed.status_code == 303
    assert signed.headers["location"] == "/console/alerts?store_id=s1"
    assert (await console.get("/console/alerts?store_id=s1")).status_code == 200


async def test_the_session_cookie_is_httponly_strict_and_scoped_to_the_console(
    console: httpx.AsyncClient,
) -> None:
    response = await sign_in(console)
    cookie = set_cookie_headers(response)["rw_console"]
    flags = [part.strip().lower() for part in cookie.split(";")]
    assert "httponly" in flags
    assert "samesite=strict" in flags
    assert "path=/console" in flags
    assert "max-age=43200" in flags  # 12 hours, the default
    assert "secure" not in flags  # plain http here: a Secure cookie would never come back


async def test_over_https_the_cookie_is_secure_too(app: FastAPI) -> None:
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="https://console.example"
    ) as console:
        cookie = set_cookie_headers(await sign_in(console))["rw_console"]
    assert "secure" in [part.strip().lower() for part in cookie.split(";")]


async def test_the_key_goes_nowhere_but_the_check(console: httpx.AsyncClient, app: FastAPI) -> None:
    response = await sign_in(console)
    assert ADMIN_KEY not in response.headers.get("location", "")
    assert all(ADMIN_KEY not in value for value in response.headers.values())
    token = console.cookies["rw_console"]
    assert token != ADMIN_KEY and ADMIN_KEY not in token
    page = await console.get("/console")
    assert ADMIN_KEY not in page.text
    async with app.state.db.read() as session:
        (record,) = (await session.scalars(select(ConsoleSession))).all()
    assert record.token_hash == token_hash(token)  # the token itself is not stored
    assert token.encode() not in record.token_hash and record.key_name == "bootstrap"


async def test_an_unknown_key_is_refused_with_a_page_saying_so(console: httpx.AsyncClient) -> None:
    response = await sign_in(console, "rw_not_a_key")
    assert response.status_code == 401
    assert "unknown or revoked" in response.text or "不存在或已被吊销" in response.text
    assert "rw_console" not in set_cookie_headers(response)


async def test_an_ingest_key_cannot_open_the_console(
    console: httpx.AsyncClient, client: httpx.AsyncClient
) -> None:
    key = await create_key(client, "ingest")
    response = await sign_in(console, key["key"])
    assert response.status_code == 403
    assert "rw_console" not in set_cookie_headers(response)


async def test_the_sign_in_form_needs_its_own_token(console: httpx.AsyncClient) -> None:
    await console.get("/console/login")
    response = await console.post(
        "/console/login", data={"api_key": ADMIN_KEY, "login_token": "forged", "next": ""}
    )
    assert response.status_code == 403
    assert "rw_console" not in set_cookie_headers(response)


async def test_a_sign_in_posted_from_another_site_is_refused(console: httpx.AsyncClient) -> None:
    form = await console.get("/console/login")
    token = LOGIN_TOKEN.search(form.text)
    assert token is not None
    response = await console.post(
        "/console/login",
        data={"api_key": ADMIN_KEY, "login_token": token.group(1), "next": ""},
        headers={"Origin": "https://evil.example"},
    )
    assert response.status_code == 403
    assert "rw_console" not in set_cookie_headers(response)


async def test_after_sign_in_the_browser_never_leaves_the_console(
    console: httpx.AsyncClient,
) -> None:
    for target in ["https://evil.example/", "//evil.example/console", "/consolex", "/docs"]:
        console.cookies.clear()  # a signed-in browser would be sent on from the form at once
        response = await sign_in(console, next_path=target)
        assert response.headers["location"] == "/console", target


async def test_repeated_failures_pause_sign_in_from_that_client(
    console: httpx.AsyncClient, clock: FrozenClock
) -> None:
    for _ in range(10):
        assert (await sign_in(console, "rw_guess")).status_code == 401
    paused = await sign_in(console, ADMIN_KEY)  # even the right key waits
    assert paused.status_code == 429
    assert int(paused.headers["retry-after"]) > 0
    clock.advance(timedelta(minutes=15, seconds=1))
    assert (await sign_in(console, ADMIN_KEY)).status_code == 303


# --------------------------------------------------------------------------- the session


async def test_the_session_expires_after_the_configured_hours(
    console: httpx.AsyncClient, clock: FrozenClock
) -> None:
    await signed_in(console)
    clock.advance(timedelta(hours=11, minutes=59))
    assert (await console.get("/console")).status_code == 200
    clock.advance(timedelta(minutes=1))
    response = await console.get("/console")
    assert response.status_code == 303
    assert response.headers["location"] == "/console/login?next=%2Fconsole&ended=1"


async def test_sign_out_ends_the_session_even_for_a_copy_of_the_cookie(
    console: httpx.AsyncClient,
) -> None:
    await signed_in(console)
    stolen = console.cookies["rw_console"]
    csrf = await page_csrf(console)
    response = await console.post("/console/logout", data={"csrf_token": csrf})
    assert response.status_code == 303
    assert response.headers["location"] == "/console/login?signed_out=1"
    assert 'rw_console=""' in set_cookie_headers(response)["rw_console"]
    console.cookies.set("rw_console", stolen, domain="test.local", path="/console")
    replay = await console.get("/console")
    assert replay.status_code == 303 and "ended=1" in replay.headers["location"]


async def test_sign_out_needs_the_csrf_token(console: httpx.AsyncClient) -> None:
    await signed_in(console)
    assert (await console.post("/console/logout", data={})).status_code == 403
    assert (await console.get("/console")).status_code == 200


async def test_revoking_the_key_ends_its_sessions_at_once(
    console: httpx.AsyncClient, client: httpx.AsyncClient
) -> None:
    key = await create_key(client, "read")
    await signed_in(console, key["key"])
    assert (await console.get("/console")).status_code == 200
    assert (await client.delete(f"/v1/api-keys/{key['id']}")).status_code == 204
    response = await console.get("/console")
    assert response.status_code == 303 and "ended=1" in response.headers["location"]


async def test_the_setting_sets_how_long_a_session_lasts(
    app: FastAPI, console: httpx.AsyncClient, clock: FrozenClock
) -> None:
    app.state.settings.console_session_hours = 1
    cookie = set_cookie_headers(await sign_in(console))["rw_console"]
    assert "Max-Age=3600" in cookie
    clock.advance(timedelta(hours=1))
    assert (await console.get("/console")).status_code == 303


# --------------------------------------------------------------------------- CSRF and scopes


async def test_a_form_without_the_csrf_token_changes_nothing(
    console: httpx.AsyncClient, client: httpx.AsyncClient
) -> None:
    await signed_in(console)
    form = {"store_id": "s1", "tier": "demotion", "hours": "24"}
    assert (await console.post("/console/silences", data=form)).status_code == 403
    wrong = {**form, "csrf_token": "x" * 43}
    assert (await console.post("/console/silences", data=wrong)).status_code == 403
    assert await silences(client) == []


async def test_the_csrf_token_of_another_session_does_not_pass(
    app: FastAPI, console: httpx.AsyncClient, client: httpx.AsyncClient
) -> None:
    await signed_in(console)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://test"
    ) as other:
        await signed_in(other)
        theirs = await page_csrf(other)
    mine = await page_csrf(console)
    assert theirs != mine
    form = {"hours": "24", "csrf_token": theirs}
    assert (await console.post("/console/silences", data=form)).status_code == 403
    assert await silences(client) == []


async def test_a_form_posted_from_another_origin_is_refused(
    console: httpx.AsyncClient, client: httpx.AsyncClient
) -> None:
    await signed_in(console)
    form = {"hours": "24", "csrf_token": await page_csrf(console)}
    response = await console.post(
        "/console/silences", data=form, headers={"Origin": "https://evil.example"}
    )
    assert response.status_code == 403
    assert await silences(client) == []
    same = await console.post("/console/silences", data=form, headers={"Origin": "http://test"})
    assert same.status_code == 303


async def test_a_read_key_sees_the_pages_but_cannot_act(
    console: httpx.AsyncClient, client: httpx.AsyncClient
) -> None:
    key = await create_key(client, "read")
    await signed_in(console, key["key"])
    page = await console.get("/console/alerts")
    assert page.status_code == 200
    assert 'data-form="silence"' not in page.text
    csrf = csrf_token(page.text)  # the sign-out form still carries one
    response = await console.post("/console/silences", data={"hours": "24", "csrf_token": csrf})
    assert response.status_code == 403
    assert "管理员密钥" in response.text  # "needs an admin key", in the default language
    assert await silences(client) == []


async def test_pages_forbid_framing_and_inline_scripts_and_stay_out_of_caches(
    console: httpx.AsyncClient,
) -> None:
    pages = [await console.get("/console/login")]
    await signed_in(console)
    pages.append(await console.get("/console"))
    for response in pages:
        assert response.status_code == 200
        csp = response.headers["content-security-policy"]
        assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
        assert "unsafe-inline" not in csp
        assert response.headers["x-frame-options"] == "DENY"
        assert response.headers["cache-control"] == "no-store"


async def test_the_console_is_not_in_the_api_schema(client: httpx.AsyncClient) -> None:
    paths = (await client.get("/openapi.json")).json()["paths"]
    assert not [path for path in paths if path.startswith("/console")]


async def test_a_changed_bootstrap_key_ends_the_sessions_it_opened(
    app: FastAPI, console: httpx.AsyncClient
) -> None:
    await signed_in(console)
    app.state.settings.bootstrap_admin_key = SecretStr("rw_another_bootstrap_key_0123456789")
    response = await console.get("/console")
    assert response.status_code == 303 and "ended=1" in response.headers["location"]


async def test_a_link_from_another_site_reloads_once_to_carry_the_strict_cookie(
    console: httpx.AsyncClient,
) -> None:
    # A SameSite=Strict cookie stays behind on a navigation from another site (a chat
    # message's link): the page reloads itself from this origin, which sends it.
    cross_site = {"Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "navigate"}
    first = await console.get("/console/stores/s1", headers=cross_site)
    assert first.status_code == 200
    assert '<meta http-equiv="refresh" content="0">' in first.text
    same_site = {"Sec-Fetch-Site": "same-origin", "Sec-Fetch-Mode": "navigate"}
    again = await console.get("/console/stores/s1", headers=same_site)
    assert again.status_code == 303  # no session really: on to the sign-in page, no loop
    assert again.headers["location"].startswith("/console/login")
