"""POST /v1/events: the HTTP door to the ingest road."""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import APIRouter, Request, Response

from app.api.problems import answers
from app.auth.deps import IngestKey
from app.clock import Clock
from app.config import Settings
from app.errors import PayloadTooLarge, Unprocessable, field_error
from app.events.schemas import INGEST_ANSWER_EXAMPLE, INGEST_EXAMPLE, MAX_EVENTS, IngestAnswer
from app.ingest.group_commit import IngestCommitter

router = APIRouter(prefix="/v1", tags=["events"])


async def _read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"the body is over the limit of {limit} bytes", code="body_too_large")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(
                f"the body is over the limit of {limit} bytes", code="body_too_large"
            )
        chunks.append(chunk)
    return b"".join(chunks)


def _envelope_error(detail: str, code: str, field: str = "body.events") -> Unprocessable:
    return field_error(field, code, detail)


def parse_envelope(body: bytes) -> list[Any]:
    """The ``events`` list, or a 422 that names what is wrong with the envelope."""
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise _envelope_error(
            f"the body is not valid JSON: {exc}", "invalid_json", "body"
        ) from None
    if not isinstance(document, dict):
        raise _envelope_error(
            'the body must be a JSON object {"events": [...]}', "invalid_envelope", "body"
        )
    events = document.get("events")
    if events is None:
        raise _envelope_error("events: field required", "missing_events")
    if not isinstance(events, list):
        raise _envelope_error("events must be a list of event objects", "invalid_envelope")
    if not events:
        raise _envelope_error("events must hold at least 1 event", "empty_batch")
    if len(events) > MAX_EVENTS:
        raise _envelope_error(
            f"events holds {len(events)} events; at most {MAX_EVENTS} per request",
            "too_many_events",
        )
    return events


@router.post(
    "/events",
    summary="Ingest order and refund events",
    description=(
        "Takes 1–1000 events. Each is validated on its own and answered in input order: "
        "`accepted` (stored durably: committed before this answer), `duplicate` (same "
        "`event_id` and content seen before) or `rejected` with a code (`unknown_type`, "
        "`unknown_reason`, `unknown_kind`, `naive_occurred_at`, `invalid_occurred_at`, "
        "`occurred_in_future`, `missing_field`, `invalid_field`, `invalid_store_id`, "
        "`invalid_amount`, `event_id_conflict`, …). A bad envelope is refused whole (422), "
        "a body over the size limit with 413. Needs the `ingest` scope."
    ),
    response_model=IngestAnswer,
    operation_id="ingest_events",
    responses=answers(INGEST_ANSWER_EXAMPLE, 401, 403, 413, 422),
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "schema": {"$ref": "#/components/schemas/EventBatch"},
                    "example": INGEST_EXAMPLE,
                }
            },
        }
    },
)
async def ingest_events(request: Request, _key: IngestKey) -> Response:
    # Settings, clock and committer straight from the app: on the hot path every
    # declared dependency costs FastAPI a resolution per request.
    state = request.app.state
    settings: Settings = state.settings
    events = parse_envelope(await _read_body(request, settings.max_body_bytes))
    committer: IngestCommitter = state.ingest
    clock: Clock = state.clock
    answer = await committer.ingest(events, clock.now())
    return Response(answer_json(answer), media_type="application/json")


def answer_json(answer: IngestAnswer) -> bytes:
    """The answer as DESIGN §2 shows it: ``error`` only on rejected events."""
    return orjson.dumps(
        {
            "accepted": answer.accepted,
            "duplicates": answer.duplicates,
            "rejected": answer.rejected,
            "results": [
                {"event_id": r.event_id, "status": r.status}
                if r.error is None
                else {"event_id": r.event_id, "status": r.status, "error": r.error.as_dict()}
                for r in answer.results
            ],
        }
    )
