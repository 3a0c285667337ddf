"""The console's routes: sign-in and out, the pages, and the actions an admin can take.

Pages are GETs that read in one read-only transaction; actions are POSTed forms (CSRF-checked,
admin keys only) that open one transaction, call the same service the API route calls, and
redirect back to the page with a notice (post/redirect/get, so a reload repeats nothing).
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from fastapi import APIRouter, Query, Request
from fastapi import Path as PathParam
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.ext.asyncio import AsyncSession

from app.alerts import service as alerts_service
from app.api.deps import ClockDep, DatabaseDep, ReadSessionDep, SettingsDep
from app.config import Settings
from app.console import pages, service
from app.console.deps import (
    AdminFormDep,
    ConsoleProblem,
    ConsoleRoute,
    OperatorDep,
    SignedFormDep,
    error_page,
)
from app.console.i18n import LANGUAGES, Translator
from app.console.rendering import console_url, language_of, render
from app.console.service import Operator, SignInRefused
from app.console.sessions import (
    LANGUAGE_COOKIE,
    LANGUAGE_COOKIE_SECONDS,
    LOGIN_COOKIE,
    LOGIN_COOKIE_SECONDS,
    SESSION_COOKIE,
    LoginThrottle,
    new_token,
    safe_next,
    same_origin,
    session_cookie,
    tokens_match,
)
from app.imports.formats import FormatError
from app.imports.reading import ReadError
from app.imports.service import ImportRequest, ImportRunner, prepare, start
from app.imports.uploads import save_upload, upload_suffix
from app.policies.tiers import TIER_LABELS_EN
from app.stores.rules import zone
from app.stores.service import require_store
from app.webhooks import service as webhooks_service

router = APIRouter(prefix="/console", include_in_schema=False, route_class=ConsoleRoute)

TIERS = tuple(TIER_LABELS_EN)
ALERT_TYPES = ("alert.breached", "alert.approaching", "alert.resolved", "alert.reminder")
SILENCE_HOURS = (1, 4, 24, 72, 168)
RECOVER_PERIODS = {"1d": timedelta(days=1), "7d": timedelta(days=7), "30d": timedelta(days=30)}
IMPORT_FORMATS = ("pdd-orders", "pdd-aftersales", "events-jsonl", "events-csv")
STORE_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")
DELIVERY_STATUSES = ("pending", "delivering", "delivered", "failed", "cancelled")

NOTICES = {
    "silenced": "notice.silenced",
    "acknowledged": "notice.acknowledged",
    "retried": "notice.retried",
    "recovered": "notice.recovered",
    "imported": "notice.imported",
}
IdPath = Annotated[int, PathParam(ge=1, le=2**31 - 1)]


# --------------------------------------------------------------------------- helpers


def _notice(request: Request) -> str | None:
    """The notice a redirect after an action asked for (known keys, numbers only)."""
    key = request.query_params.get("notice")
    if key not in NOTICES:
        return None
    number = request.query_params.get("n", "")
    if not (number.isdigit() and len(number) <= 10):
        number = "?"
    return Translator(language_of(request))(NOTICES[key], n=number, id=number)


def _back(request: Request, back: str | None, default: str, **notice: object) -> RedirectResponse:
    """Redirect (303) to the page the form was on, with a notice in its query."""
    target = safe_next(back, console_url(request)) if back else console_url(request, default)
    parts = urlsplit(target)
    query = [(k, v) for k, v in parse_qsl(parts.query) if k not in ("notice", "n")]
    query += [(k, str(v)) for k, v in notice.items()]
    return RedirectResponse(urlunsplit(("", "", parts.path, urlencode(query), "")), 303)


def _page(
    request: Request, template: str, operator: Operator, section: str, **context: Any
) -> HTMLResponse:
    return render(
        request,
        template,
        {"notice": _notice(request), "back": _current(request), **context},
        operator=operator,
        section=section,
    )


def _current(request: Request) -> str:
    """This page's path and query without a notice: where a form on it comes back to."""
    query = [(k, v) for k, v in request.query_params.multi_items() if k not in ("notice", "n")]
    return request.url.path + (f"?{urlencode(query)}" if query else "")


def _bootstrap(settings: Settings) -> str | None:
    key = settings.bootstrap_admin_key
    return key.get_secret_value() if key is not None else None


def _client(request: Request) -> str:
    return request.client.host if request.client is not None else "unknown"


def _is_https(request: Request) -> bool:
    return request.url.scheme == "https"


# --------------------------------------------------------------------------- sign-in


def _login_page(
    request: Request,
    settings: Settings,
    *,
    next_path: str,
    message: str | None = None,
    message_kind: str = "error",
    status_code: int = 200,
    headers: dict[str, str] | None = None,
) -> HTMLResponse:
    """The sign-in form, with a fresh double-submit token in a short-lived cookie."""
    login_token = new_token()
    response = render(
        request,
        "login.html",
        {
            "login_token": login_token,
            "next": next_path,
            "message": message,
            "message_kind": message_kind,
            "session_hours": f"{settings.console_session_hours:g}",
        },
        status_code=status_code,
        headers=headers,
    )
    response.set_cookie(
        LOGIN_COOKIE,
        login_token,
        max_age=LOGIN_COOKIE_SECONDS,
        path=console_url(request, "/login"),
        secure=_is_https(request),
        httponly=True,
        samesite="strict",
    )
    return response


@router.get("/login")
async def login_form(
    request: Request,
    session: ReadSessionDep,
    settings: SettingsDep,
    clock: ClockDep,
    next: Annotated[str | None, Query(max_length=2000)] = None,
    ended: Annotated[str | None, Query(max_length=8)] = None,
    signed_out: Annotated[str | None, Query(max_length=8)] = None,
) -> Response:
    """The sign-in page (an operator already signed in goes straight on)."""
    target = safe_next(next, console_url(request))
    token = request.cookies.get(SESSION_COOKIE)
    if token and not ended:
        operator = await service.operator_for(
            session, token, bootstrap_key=_bootstrap(settings), now=clock.now()
        )
        if operator is not None:
            return RedirectResponse(target, status_code=303)
    t = Translator(language_of(request))
    message, kind = None, "error"
    if ended:
        message, kind = t("login.session_over"), "info"
    elif signed_out:
        message, kind = t("login.signed_out"), "ok"
    return _login_page(request, settings, next_path=target, message=message, message_kind=kind)


@router.post("/login")
async def login(
    request: Request, db: DatabaseDep, settings: SettingsDep, clock: ClockDep
) -> Response:
    """Check the key like the API does; on success set the session cookie and go on."""
    t = Translator(language_of(request))
    form = await request.form(max_files=0, max_fields=10)
    try:
        api_key = form.get("api_key")
        next_value = form.get("next")
        given_login_token = form.get("login_token")
    finally:
        await form.close()
    next_path = safe_next(next_value if isinstance(next_value, str) else None, console_url(request))
    if not same_origin(request.headers.get("origin"), request.headers.get("host")) or (
        not tokens_match(
            request.cookies.get(LOGIN_COOKIE) or "",
            given_login_token if isinstance(given_login_token, str) else None,
        )
    ):
        return _login_page(
            request,
            settings,
            next_path=next_path,
            message=t("login.expired_form"),
            status_code=403,
        )
    now = clock.now()
    throttle: LoginThrottle = request.app.state.console_login_throttle
    client = _client(request)
    wait = throttle.retry_after(client, now)
    if wait is not None:
        minutes = max(1, int(wait.total_seconds() // 60) + 1)
        return _login_page(
            request,
            settings,
            next_path=next_path,
            message=t("login.throttled", minutes=minutes),
            status_code=429,
            headers={"Retry-After": str(max(1, int(wait.total_seconds())))},
        )
    if not isinstance(api_key, str) or not api_key.strip():
        return _login_page(
            request,
            settings,
            next_path=next_path,
            message=t("login.missing_key"),
            status_code=400,
        )
    try:
        async with db.transaction() as session:
            token, _operator = await service.sign_in(
                session,
                api_key,
                bootstrap_key=_bootstrap(settings),
                hours=settings.console_session_hours,
                now=now,
            )
    except SignInRefused as refused:
        if refused.reason == "unknown_key":
            throttle.failed(client, now)
        return _login_page(
            request,
            settings,
            next_path=next_path,
            message=t(f"login.{refused.reason}"),
            status_code=401 if refused.reason == "unknown_key" else 403,
        )
    throttle.succeeded(client)
    flags = session_cookie(settings.console_session_hours, https=_is_https(request))
    response = RedirectResponse(next_path, status_code=303)
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=flags.max_age,
        path=console_url(request),
        secure=flags.secure,
        httponly=flags.httponly,
        samesite="strict",
    )
    response.delete_cookie(LOGIN_COOKIE, path=console_url(request, "/login"))
    return response


@router.post("/logout")
async def logout(
    request: Request, signed: SignedFormDep, db: DatabaseDep, clock: ClockDep
) -> Response:
    """End the session in the database (a replayed cookie opens nothing) and drop the cookie."""
    async with db.transaction() as session:
        await service.sign_out(session, signed.operator, clock.now())
    response = RedirectResponse(console_url(request, "/login?signed_out=1"), status_code=303)
    response.delete_cookie(
        SESSION_COOKIE,
        path=console_url(request),
        secure=_is_https(request),
        httponly=True,
        samesite="strict",
    )
    return response


@router.get("/language/{language}")
async def switch_language(
    request: Request,
    language: Annotated[str, PathParam(max_length=8)],
    next: Annotated[str | None, Query(max_length=2000)] = None,
) -> Response:
    """Remember the operator's language (a cookie) and go back to the page."""
    response = RedirectResponse(safe_next(next, console_url(request)), status_code=303)
    if language in LANGUAGES:
        response.set_cookie(
            LANGUAGE_COOKIE,
            language,
            max_age=LANGUAGE_COOKIE_SECONDS,
            path=console_url(request),
            secure=_is_https(request),
            httponly=True,
            samesite="lax",
        )
    return response


# --------------------------------------------------------------------------- pages


@router.get("")
async def overview(
    request: Request,
    operator: OperatorDep,
    session: ReadSessionDep,
    clock: ClockDep,
    state: Annotated[str | None, Query(max_length=16)] = None,
    q: Annotated[str, Query(max_length=100)] = "",
) -> HTMLResponse:
    """Every store in one table, worst first."""
    page = await pages.overview_page(session, clock.now(), state=state, search=q)
    return _page(request, "overview.html", operator, "overview", page=page)


@router.get("/stores/{store_id}")
async def store(
    request: Request,
    store_id: Annotated[str, PathParam(min_length=1, max_length=64)],
    operator: OperatorDep,
    session: ReadSessionDep,
    clock: ClockDep,
) -> HTMLResponse:
    """One store: its chart, products, the refunds that can still be turned."""
    ctx = await require_store(session, store_id)
    t = Translator(language_of(request))
    now = clock.now()
    page = await pages.store_page(
        session,
        ctx,
        now,
        labels={
            "rate": t("chart.rate"),
            "count": t("chart.count"),
            "platform": t("chart.platform"),
        },
        tier_labels={tier: t.tier(tier) for tier in TIERS},
    )
    return _page(request, "store.html", operator, "overview", page=page, now=now)


@router.get("/alerts")
async def alerts(
    request: Request,
    operator: OperatorDep,
    session: ReadSessionDep,
    clock: ClockDep,
    settings: SettingsDep,
    store_id: Annotated[str | None, Query(max_length=64)] = None,
    tier: Annotated[str | None, Query(max_length=32)] = None,
    type: Annotated[str | None, Query(max_length=32)] = None,
    unacknowledged: Annotated[str | None, Query(max_length=4)] = None,
    cursor: Annotated[str | None, Query(max_length=1000)] = None,
) -> HTMLResponse:
    """The alert timeline, with silence and acknowledge."""
    page = await pages.alerts_page(
        session,
        clock.now(),
        settings,
        store_id=store_id or None,
        tier=tier if tier in TIERS else None,
        alert_type=type if type in ALERT_TYPES else None,
        unacknowledged=bool(unacknowledged),
        cursor=cursor or None,
    )
    filter_query = f"?{urlencode(page.filters)}" if page.filters else ""
    return _page(
        request,
        "alerts.html",
        operator,
        "alerts",
        page=page,
        tiers=TIERS,
        alert_types=ALERT_TYPES,
        silence_hours=SILENCE_HOURS,
        cursor=cursor,
        filter_query=filter_query,
        default_zone=zone(settings.default_timezone),
    )


@router.get("/webhooks")
async def webhooks(
    request: Request,
    operator: OperatorDep,
    session: ReadSessionDep,
    settings: SettingsDep,
    webhook: Annotated[int | None, Query(ge=1, le=2**31 - 1)] = None,
    status: Annotated[str | None, Query(max_length=16)] = None,
) -> HTMLResponse:
    """Each subscription's delivery counts, the newest deliveries and their attempts."""
    page = await pages.webhooks_page(
        session,
        settings,
        webhook_id=webhook,
        status=status if status in DELIVERY_STATUSES else None,
    )
    return _page(request, "webhooks.html", operator, "webhooks", page=page)


async def _connections(
    request: Request,
    operator: Operator,
    session: AsyncSession,
    settings: Settings,
    now: datetime,
    *,
    upload_error: str | None = None,
    form_store: str = "",
    form_format: str = "",
    status_code: int = 200,
) -> HTMLResponse:
    page = await pages.connections_page(session, settings, now)
    response = _page(
        request,
        "connections.html",
        operator,
        "connections",
        page=page,
        formats=IMPORT_FORMATS,
        upload_error=upload_error,
        form_store=form_store,
        form_format=form_format,
    )
    response.status_code = status_code
    return response


@router.get("/connections")
async def connections(
    request: Request,
    operator: OperatorDep,
    session: ReadSessionDep,
    settings: SettingsDep,
    clock: ClockDep,
) -> HTMLResponse:
    """Marketplace connections and imports, with the upload form."""
    return await _connections(request, operator, session, settings, clock.now())


@router.get("/imports/{import_id}")
async def import_detail(
    request: Request,
    import_id: IdPath,
    operator: OperatorDep,
    session: ReadSessionDep,
    settings: SettingsDep,
    clock: ClockDep,
) -> HTMLResponse:
    """One import: its counts, skipped rows, unknown labels and refused rows."""
    page = await pages.import_page(session, settings, import_id, clock.now())
    if page is None:
        raise ConsoleProblem(404, "error.not_found")
    return _page(request, "import.html", operator, "connections", page=page)


# --------------------------------------------------------------------------- actions


@router.post("/silences")
async def silence(
    signed: AdminFormDep, request: Request, db: DatabaseDep, clock: ClockDep
) -> Response:
    """Hold back sending for a store / product / tier for some hours (the state still moves)."""
    hours_text = signed.text("hours") or ""
    hours = int(hours_text) if hours_text.isdigit() else 0
    tier = signed.text("tier")
    store_id = signed.text("store_id")
    product_id = signed.text("product_id")
    comment = signed.text("comment")
    if (
        hours not in SILENCE_HOURS
        or (tier is not None and tier not in TIERS)
        or (store_id is not None and not STORE_ID.match(store_id))
        or (product_id is not None and len(product_id) > 128)
        or (comment is not None and len(comment) > 1000)
    ):
        raise ConsoleProblem(422, "error.invalid", detail="store_id, product_id, tier, hours")
    now = clock.now()
    async with db.transaction() as session:
        await alerts_service.create_silence(
            session,
            store_id=store_id,
            product_id=product_id,
            tier=tier,
            until=now + timedelta(hours=hours),
            comment=comment,
            now=now,
        )
    return _back(request, signed.text("back"), "/alerts", notice="silenced", n=hours)


@router.post("/alerts/{alert_id}/acknowledge")
async def acknowledge(
    request: Request,
    alert_id: Annotated[str, PathParam(max_length=40)],
    signed: AdminFormDep,
    db: DatabaseDep,
    clock: ClockDep,
) -> Response:
    """Record that the operator has seen the alert (kept in the console's own table)."""
    async with db.transaction() as session:
        await service.acknowledge_alert(session, alert_id, signed.operator, clock.now())
    return _back(request, signed.text("back"), "/alerts", notice="acknowledged")


@router.post("/deliveries/{delivery_id}/retry")
async def retry_delivery(
    request: Request, delivery_id: IdPath, signed: AdminFormDep, db: DatabaseDep, clock: ClockDep
) -> Response:
    """Send a delivery again now (the relay picks it up on its next round)."""
    async with db.transaction() as session:
        await webhooks_service.retry_delivery(session, delivery_id, clock.now())
    worker = getattr(request.app.state, "worker", None)
    if worker is not None:
        worker.wake_relay()
    return _back(request, signed.text("back"), "/webhooks", notice="retried", n=delivery_id)


@router.post("/webhooks/{webhook_id}/recover")
async def recover(
    request: Request, webhook_id: IdPath, signed: AdminFormDep, db: DatabaseDep, clock: ClockDep
) -> Response:
    """Queue again a subscription's failed deliveries of the chosen period."""
    period = RECOVER_PERIODS.get(signed.text("since") or "")
    if period is None:
        raise ConsoleProblem(422, "error.invalid", detail="since")
    now = clock.now()
    async with db.transaction() as session:
        requeued = await webhooks_service.recover(session, webhook_id, now - period, now)
    worker = getattr(request.app.state, "worker", None)
    if worker is not None and requeued:
        worker.wake_relay()
    return _back(request, signed.text("back"), "/webhooks", notice="recovered", n=requeued)


@router.post("/imports")
async def upload_import(
    request: Request,
    signed: AdminFormDep,
    db: DatabaseDep,
    session: ReadSessionDep,
    settings: SettingsDep,
    clock: ClockDep,
) -> Response:
    """Start an import of an uploaded export, as ``POST /v1/imports`` does."""
    t = Translator(language_of(request))
    upload = signed.file("file")
    store_id = signed.text("store_id")
    import_format = signed.text("format")
    problem = None
    if upload is None:
        problem = t("upload.no_file")
    elif store_id is not None and not STORE_ID.match(store_id):
        problem = t("upload.bad_store")
    elif import_format is not None and import_format not in IMPORT_FORMATS:
        problem = t("upload.bad_format")
    if problem is not None or upload is None:
        return await _connections(
            request,
            signed.operator,
            session,
            settings,
            clock.now(),
            upload_error=problem,
            form_store=store_id or "",
            status_code=422,
        )
    path, digest = await save_upload(upload, settings, upload_suffix(upload.filename))
    job = ImportRequest(
        path=path,
        filename=Path(upload.filename or "upload").name,
        store_id=store_id,
        format=import_format,  # type: ignore[arg-type]  # checked against IMPORT_FORMATS
        dry_run=signed.text("dry_run") == "1",
        source="http",
    )
    try:
        try:
            _ctx, reader = await prepare(db, settings, job)
        except ReadError as exc:  # FormatError included: the file is refused whole
            detail = exc.message
            if isinstance(exc, FormatError) and exc.missing_columns:
                detail += f" ({', '.join(exc.missing_columns)})"
            path.unlink(missing_ok=True)
            return await _connections(
                request,
                signed.operator,
                session,
                settings,
                clock.now(),
                upload_error=detail,
                form_store=store_id or "",
                form_format=import_format or "",
                status_code=422,
            )
        record, skip_to = await start(db, job, reader, clock, digest)
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    assert record is not None  # an upload is never a CLI dry run, so it always has a row
    runner: ImportRunner = request.app.state.imports
    runner.launch(job, reader, record, skip_to)
    return _back(request, None, "/connections", notice="imported", n=record.id)


# --------------------------------------------------------------------------- anything else


@router.get("/{rest:path}")
async def not_found(request: Request, rest: str) -> Response:
    """``/console/`` goes to the front page; any other unknown console path is a 404 page."""
    if rest == "":
        return RedirectResponse(console_url(request), status_code=308)
    return error_page(request, 404, Translator(language_of(request))("error.not_found"))
