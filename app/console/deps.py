"""The console's dependencies and its route class: who is signed in, forms that change state.

- :data:`OperatorDep` — the signed-in operator, from the session cookie (else the browser is
  sent to the sign-in page).
- :data:`SignedFormDep` — a POSTed form whose CSRF token matches the session's (sign-out).
- :data:`AdminFormDep` — the same, from an operator whose key has the ``admin`` scope: every
  action that changes something (silence, acknowledge, retry, recover, upload).
- :class:`ConsoleRoute` — turns what the dependencies and services raise into pages: a
  redirect to sign in, or an error page in the operator's language, never problem+json.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable, Coroutine
from dataclasses import dataclass
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import Depends, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.routing import APIRoute
from starlette.datastructures import FormData, UploadFile

from app.api.deps import ClockDep, ReadSessionDep, SettingsDep
from app.console import service
from app.console.i18n import Translator
from app.console.rendering import console_url, language_of, render
from app.console.service import Operator
from app.console.sessions import CSRF_FIELD, SESSION_COOKIE, same_origin, tokens_match
from app.errors import AppError

log = logging.getLogger("refundwatch.console")

MAX_FORM_FIELDS = 30
MAX_FORM_FILES = 1


class SignInRequired(Exception):
    """No session, or one that is over: the browser goes to the sign-in page."""

    def __init__(self, *, ended: bool) -> None:
        super().__init__("sign in")
        self.ended = ended


class ConsoleProblem(Exception):
    """An error page: its status and the message key (with fields) it shows."""

    def __init__(self, status: int, message: str, **fields: object) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.fields = fields


async def current_operator(
    request: Request, session: ReadSessionDep, settings: SettingsDep, clock: ClockDep
) -> Operator:
    """The operator of the request's session cookie; raises :class:`SignInRequired`."""
    token = request.cookies.get(SESSION_COOKIE)
    operator = None
    if token:
        bootstrap = settings.bootstrap_admin_key
        operator = await service.operator_for(
            session,
            token,
            bootstrap_key=bootstrap.get_secret_value() if bootstrap else None,
            now=clock.now(),
        )
    if operator is None:
        raise SignInRequired(ended=bool(token))
    request.state.console_operator = operator
    return operator


OperatorDep = Annotated[Operator, Depends(current_operator)]


@dataclass(frozen=True, slots=True)
class SignedForm:
    """A form that passed the CSRF check, with the operator who sent it."""

    operator: Operator
    form: FormData

    def text(self, name: str) -> str | None:
        """A text field, stripped; None when absent or empty."""
        value = self.form.get(name)
        if not isinstance(value, str):
            return None
        value = value.strip()
        return value or None

    def file(self, name: str) -> UploadFile | None:
        value = self.form.get(name)
        if isinstance(value, UploadFile) and value.filename:
            return value
        return None


async def _checked_form(request: Request, operator: Operator) -> FormData:
    # SameSite=Strict already keeps the cookie off cross-site requests; the Origin check and
    # the per-session token are the two further locks a forged form would have to pass.
    if not same_origin(request.headers.get("origin"), request.headers.get("host")):
        raise ConsoleProblem(403, "error.csrf")
    form = await request.form(max_files=MAX_FORM_FILES, max_fields=MAX_FORM_FIELDS)
    given = form.get(CSRF_FIELD)
    if not tokens_match(operator.csrf_token, given if isinstance(given, str) else None):
        await form.close()
        raise ConsoleProblem(403, "error.csrf")
    return form


async def signed_form(request: Request, operator: OperatorDep) -> AsyncIterator[SignedForm]:
    """A POSTed form with this session's CSRF token (any signed-in operator)."""
    form = await _checked_form(request, operator)
    try:
        yield SignedForm(operator, form)
    finally:
        await form.close()


async def admin_form(request: Request, operator: OperatorDep) -> AsyncIterator[SignedForm]:
    """A POSTed form with this session's CSRF token, from an admin key."""
    if not operator.is_admin:
        raise ConsoleProblem(403, "error.forbidden_admin")
    form = await _checked_form(request, operator)
    try:
        yield SignedForm(operator, form)
    finally:
        await form.close()


SignedFormDep = Annotated[SignedForm, Depends(signed_form)]
AdminFormDep = Annotated[SignedForm, Depends(admin_form)]


def sign_in_redirect(request: Request, *, ended: bool) -> Response:
    """Send the browser to sign in, coming back here afterwards.

    A link from another site (a chat message with an alert, say) arrives without the
    SameSite=Strict cookie even when the operator is signed in. Such a first request gets a
    page that reloads itself: the reload comes from this origin, so it carries the cookie.
    """
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    if (
        request.method == "GET"
        and not ended
        and request.headers.get("sec-fetch-site") == "cross-site"
        and request.headers.get("sec-fetch-mode") == "navigate"
    ):
        return render(request, "reload.html", {"target": target}, status_code=200)
    query = {"next": target} if request.method == "GET" else {}
    if ended:
        query["ended"] = "1"
    login = console_url(request, "/login") + (f"?{urlencode(query)}" if query else "")
    response = RedirectResponse(login, status_code=303)
    if ended:
        response.delete_cookie(SESSION_COOKIE, path=console_url(request))
    return response


def error_page(request: Request, status: int, message: str) -> HTMLResponse:
    """An error page in the request's language, with the operator's frame when signed in."""
    operator = getattr(request.state, "console_operator", None)
    return render(
        request,
        "error.html",
        {"status": status, "message": message},
        operator=operator,
        status_code=status,
    )


class ConsoleRoute(APIRoute):
    """A route whose failures are pages: sign-in redirects, or errors in the operator's words."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def console_handler(request: Request) -> Response:
            t = Translator(language_of(request))
            try:
                return await handler(request)
            except SignInRequired as exc:
                return sign_in_redirect(request, ended=exc.ended)
            except ConsoleProblem as exc:
                return error_page(request, exc.status, t(exc.message, **exc.fields))
            except AppError as exc:
                return error_page(request, exc.status, exc.detail)
            except RequestValidationError as exc:
                detail = "; ".join(
                    f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}"
                    for err in exc.errors()[:3]
                )
                return error_page(request, 422, t("error.invalid", detail=detail))

        return console_handler
