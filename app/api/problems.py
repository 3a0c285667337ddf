"""The error hierarchy of ``app.errors``, rendered as application/problem+json (RFC 9457)."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator, Sequence
from functools import lru_cache
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from pydantic import BaseModel
from sqlalchemy.exc import DataError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import BaseRoute

from app.errors import AppError, FieldProblem

log = logging.getLogger("refundwatch")

PROBLEM_JSON = "application/problem+json"


class Problem(BaseModel):
    """RFC 9457 problem details, with a machine ``code`` and per-field errors."""

    type: str = "about:blank"
    title: str
    status: int
    detail: str
    code: str
    errors: list[FieldProblem] | None = None


def problem_response(
    status: int,
    title: str,
    detail: str,
    code: str,
    errors: list[FieldProblem] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    body: dict[str, Any] = {
        "type": "about:blank",
        "title": title,
        "status": status,
        "detail": detail,
        "code": code,
    }
    if errors is not None:
        body["errors"] = [e.model_dump() for e in errors]
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def field_problems(errors: Any) -> list[FieldProblem]:
    return [
        FieldProblem(
            field=".".join(str(part) for part in err["loc"]),
            code=str(err["type"]),
            message=str(err["msg"]),
        )
        for err in errors
    ]


_STATUS_CODES = {
    400: ("bad_request", "Bad request"),
    401: ("unauthorized", "Unauthorized"),
    403: ("forbidden", "Forbidden"),
    404: ("not_found", "Not found"),
    405: ("method_not_allowed", "Method not allowed"),
    409: ("conflict", "Conflict"),
    413: ("payload_too_large", "Payload too large"),
    415: ("unsupported_media_type", "Unsupported media type"),
    422: ("validation_error", "Unprocessable content"),
    503: ("unavailable", "Service unavailable"),
}


def install_problem_handlers(app: FastAPI) -> None:
    @app.exception_handler(AppError)
    async def _app_error(_request: Request, exc: AppError) -> JSONResponse:
        headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
        return problem_response(exc.status, exc.title, exc.detail, exc.code, exc.errors, headers)

    @app.exception_handler(RequestValidationError)
    async def _validation(_request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = field_problems(exc.errors())
        detail = "; ".join(f"{p.field}: {p.message}" for p in problems[:5])
        return problem_response(422, "Unprocessable content", detail, "validation_error", problems)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 400:
            # FastAPI and Starlette answer 400 when a body cannot even be parsed (JSON
            # that is not UTF-8, a broken multipart form). Every route documents 422
            # for a body it cannot use, so that is what a client gets.
            return _unparsable_body(exc)
        code, title = _STATUS_CODES.get(exc.status_code, ("http_error", "HTTP error"))
        # Keep the exception's headers: a 405 must say which methods are allowed.
        headers = dict(exc.headers) if exc.headers else None
        if exc.status_code == 405:
            # Starlette names the methods of the first route of the path only.
            allowed = _allowed_methods(request)
            if allowed:
                headers = {**(headers or {}), "Allow": ", ".join(allowed)}
        return problem_response(exc.status_code, title, str(exc.detail), code, headers=headers)

    @app.exception_handler(DataError)
    @app.exception_handler(OverflowError)
    async def _not_storable(request: Request, exc: Exception) -> JSONResponse:
        # A safety net, not the mechanism: the types of app.api.params refuse such
        # values with a 422 naming the field. Reaching here means a field lacks its
        # type; the warning (with the traceback) says which, and the client still
        # gets a 422 rather than a 500.
        log.warning(
            "unvalidated value reached the database: %s %s",
            request.method,
            request.url.path,
            exc_info=exc,
        )
        return problem_response(
            422,
            "Unprocessable content",
            "a value in the request is outside what can be stored (too large a number, a "
            "NUL character, a date beyond the calendar)",
            "value_not_storable",
        )

    @app.exception_handler(Exception)
    async def _unexpected(_request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error", exc_info=exc)
        return problem_response(
            500, "Internal server error", "an unexpected error occurred", "internal_error"
        )


def _allowed_methods(request: Request) -> list[str]:
    """Every method the API documents for this path (RFC 9110: a 405 lists them all)."""
    path = request.scope.get("path", "")
    for template, operations in request.app.openapi().get("paths", {}).items():
        if _template(template).fullmatch(path):
            return sorted(method.upper() for method in operations)
    return []


@lru_cache(maxsize=256)
def _template(path: str) -> re.Pattern[str]:
    parts = re.split(r"(\{[^}]+\})", path)
    return re.compile("".join("[^/]+" if p.startswith("{") else re.escape(p) for p in parts))


def _unparsable_body(exc: StarletteHTTPException) -> JSONResponse:
    cause = exc.__cause__
    if isinstance(cause, UnicodeDecodeError):
        code, detail = "invalid_json", "the body is not valid JSON: it must be UTF-8 text"
    else:
        code, detail = "invalid_body", f"the body cannot be parsed: {exc.detail}"
    problem = FieldProblem(field="body", code=code, message=detail)
    return problem_response(422, "Unprocessable content", detail, code, [problem])


# What each documented problem looks like, for /docs (the codes are the common ones).
_PROBLEM_EXAMPLES: dict[int, tuple[str, str]] = {
    401: ("missing_key", "send an API key: Authorization: Bearer <key>"),
    403: ("insufficient_scope", "this key lacks the 'admin' scope"),
    404: ("not_found", "no such resource"),
    409: ("conflict", "the request conflicts with the current state"),
    413: ("payload_too_large", "the body is over the limit of 5242880 bytes"),
    422: ("validation_error", "query.limit: Input should be less than or equal to 500"),
    503: ("unavailable", "the service cannot do this right now"),
}


def problem_example(status: int) -> dict[str, Any]:
    """An example problem+json body of this status."""
    code, detail = _PROBLEM_EXAMPLES.get(status, ("http_error", "the request failed"))
    title = _STATUS_CODES.get(status, ("", "Error"))[1]
    body: dict[str, Any] = {
        "type": "about:blank",
        "title": title,
        "status": status,
        "detail": detail,
        "code": code,
    }
    if status == 422:
        body["errors"] = [
            {
                "field": "query.limit",
                "code": "less_than_equal",
                "message": "Input should be less than or equal to 500",
            }
        ]
    return body


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """`responses=` entries so /docs lists each route's expected problems."""
    return {
        status: {
            "model": Problem,
            "description": _STATUS_CODES.get(status, ("", "Error"))[1],
            "content": {PROBLEM_JSON: {"example": problem_example(status)}},
        }
        for status in statuses
    }


def restore_example_nulls(schema: dict[str, Any], routes: Sequence[BaseRoute]) -> None:
    """Put back the nulls FastAPI drops from response examples.

    ``get_openapi`` serialises the whole document with ``exclude_none``, so an
    example's ``"product_id": null`` would vanish and the example would no longer
    fit its schema (the field is required, nullable). The route still holds the
    example as written: copy it back, operation by operation.
    """
    declared = {route.operation_id: route for route in api_routes(routes) if route.operation_id}
    for operations in schema.get("paths", {}).values():
        for operation in operations.values():
            route = declared.get(operation.get("operationId"))
            if route is None:
                continue
            for status, answer in operation.get("responses", {}).items():
                given = route.responses.get(int(status)) or route.responses.get(status) or {}
                for media, content in (given.get("content") or {}).items():
                    if "example" in content and media in answer.get("content", {}):
                        answer["content"][media]["example"] = content["example"]


def api_routes(routes: Sequence[BaseRoute]) -> Iterator[APIRoute]:
    """Every API route, those of included routers too."""
    for route in routes:
        if isinstance(route, APIRoute):
            yield route
        included = getattr(route, "original_router", None)  # FastAPI's included routers
        if included is not None:
            yield from api_routes(included.routes)


def answers(
    example: Any, *problems: int, status: int = 200, description: str | None = None
) -> dict[int | str, dict[str, Any]]:
    """`responses=` for a route: an example of its answer, then its expected problems.

    FastAPI adds the response model's schema beside the example, so /docs shows
    both; tests check every example against its operation's response model.
    """
    answer: dict[str, Any] = {"content": {"application/json": {"example": example}}}
    if description is not None:
        answer["description"] = description
    return {status: answer, **problem_responses(*problems)}
