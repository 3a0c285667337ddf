"""GET /metrics: the Prometheus text exposition (read scope, or open when configured)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST

from app.api.problems import problem_responses
from app.auth.deps import ReadKey
from app.ops.metrics import DatabaseFacts, exposition

SUMMARY = "Prometheus metrics"
DESCRIPTION = (
    "The Prometheus text exposition: events, ingest latency, alerts, deliveries and HTTP "
    "requests (counted after each commit, summed over the uvicorn workers of this host), "
    "and facts read from the database at scrape time: scopes by state, the outbox, each "
    "connector's lag, `refundwatch_database_up`. Needs the `read` scope unless "
    "`REFUNDWATCH_METRICS_PUBLIC=true`. See docs/operations.md#metrics."
)
_TEXT = {"content": {CONTENT_TYPE_LATEST.split(";")[0]: {"schema": {"type": "string"}}}}


async def _answer(request: Request) -> Response:
    facts: DatabaseFacts = request.app.state.database_facts
    return Response(exposition(await facts.read()), media_type=CONTENT_TYPE_LATEST)


def metrics_router(public: bool) -> APIRouter:
    """The ``/metrics`` route, open or behind a read key."""
    router = APIRouter(tags=["operations"])
    if public:

        @router.get(
            "/metrics",
            summary=SUMMARY,
            description=DESCRIPTION,
            operation_id="metrics",
            response_class=Response,
            responses={200: _TEXT},
        )
        async def open_metrics(request: Request) -> Response:
            return await _answer(request)

    else:

        @router.get(
            "/metrics",
            summary=SUMMARY,
            description=DESCRIPTION,
            operation_id="metrics",
            response_class=Response,
            responses={200: _TEXT, **problem_responses(401, 403)},
        )
        async def keyed_metrics(_key: ReadKey, request: Request) -> Response:
            return await _answer(request)

    return router
