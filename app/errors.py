"""One error hierarchy for the whole service, with no HTTP in it.

Services and repositories raise these; ``app.api.problems`` renders them as
``application/problem+json`` (RFC 9457). Each class carries the HTTP status it
maps to, a machine ``code`` and, for validation errors, the fields at fault.
"""

from __future__ import annotations

from pydantic import BaseModel, Field


class FieldProblem(BaseModel):
    field: str = Field(description="Dotted path of the field at fault, e.g. body.events.0.kind")
    code: str
    message: str


class AppError(Exception):
    status = 400
    code = "bad_request"
    title = "Bad request"

    def __init__(
        self, detail: str, *, code: str | None = None, errors: list[FieldProblem] | None = None
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        if code is not None:
            self.code = code
        self.errors = errors


class Unauthorized(AppError):
    status, code, title = 401, "unauthorized", "Unauthorized"


class Forbidden(AppError):
    status, code, title = 403, "forbidden", "Forbidden"


class NotFound(AppError):
    status, code, title = 404, "not_found", "Not found"


class Conflict(AppError):
    status, code, title = 409, "conflict", "Conflict"


class Unprocessable(AppError):
    status, code, title = 422, "validation_error", "Unprocessable content"


class PayloadTooLarge(AppError):
    status, code, title = 413, "payload_too_large", "Payload too large"


def field_error(field: str, code: str, detail: str) -> Unprocessable:
    """A 422 naming the one field at fault, with its code (the common refusal)."""
    return Unprocessable(
        detail, code=code, errors=[FieldProblem(field=field, code=code, message=detail)]
    )
