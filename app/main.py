"""create_app(): settings, database, routers, problem handlers, the in-process worker."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from app.alerts.endpoints import router as alerts_router
from app.api import health
from app.api.problems import install_problem_handlers, restore_example_nulls
from app.auth.endpoints import router as keys_router
from app.auth.service import KeyCache
from app.clock import Clock, SystemClock
from app.config import Settings, get_settings
from app.connectors.endpoints import router as connections_router
from app.console import install as install_console
from app.db.engine import Database, check_pooling, create_engine
from app.events.schemas import EventBatch
from app.figures.endpoints import router as figures_router
from app.imports.endpoints import router as imports_router
from app.imports.service import ImportRunner
from app.ingest.endpoints import router as ingest_router
from app.ingest.group_commit import IngestCommitter
from app.ops.endpoints import metrics_router
from app.ops.metrics import DatabaseFacts
from app.ops.requests import install_request_context
from app.policies.endpoints import router as policies_router
from app.risk.endpoints import router as risk_router
from app.stores.endpoints import router as stores_router
from app.webhooks.endpoints import router as webhooks_router
from app.worker.scheduler import Worker

DESCRIPTION = """
refundwatch keeps each store's and product's rolling **quality-refund rate (品质退款率)**
and **count (品质退款单数)** exactly, from the order and refund events you send, and
tells you how far each is from demotion (降权), a listing ban (禁止上新) and delisting (下架).

Authorize with an API key (`Authorization: Bearer rw_…`): scopes `ingest`, `read`, `admin`.
Errors are `application/problem+json` with a machine `code`.
"""


def create_app(
    settings: Settings | None = None,
    *,
    clock: Clock | None = None,
    run_worker: bool = False,
) -> FastAPI:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.db = Database(create_engine(settings))
        await check_pooling(app.state.db, settings)
        app.state.database_facts = DatabaseFacts(app.state.db, app.state.clock)
        worker = None
        app.state.worker = None
        if run_worker:
            worker = Worker(app.state.db, settings, app.state.clock)
            await worker.start()
            app.state.worker = worker
        wake = worker.wake_relay if worker is not None else None
        app.state.syncer = worker.syncer if worker is not None else None
        app.state.ingest = IngestCommitter(app.state.db, settings, on_deliveries=wake)
        app.state.imports = ImportRunner(
            app.state.db, settings, app.state.clock, on_deliveries=wake
        )
        try:
            yield
        finally:
            await app.state.imports.stop()
            if worker is not None:
                await worker.stop()
            await app.state.db.dispose()

    app = FastAPI(
        title="refundwatch",
        version="0.1.0",
        summary="Quality-refund risk monitoring for marketplace sellers",
        description=DESCRIPTION,
        lifespan=lifespan,
        # The explorer's assets ship in the package (app/console/static): no CDN.
        docs_url=None,
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.clock = clock or SystemClock()
    app.state.key_cache = KeyCache(settings.api_key_cache_seconds)
    install_problem_handlers(app)
    install_request_context(app)
    install_console(app)
    for router in routers():
        app.include_router(router)
    app.include_router(metrics_router(settings.metrics_public))
    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]
    return app


def routers() -> list[Any]:
    return [
        health.router,
        ingest_router,
        imports_router,
        connections_router,
        stores_router,
        figures_router,
        risk_router,
        policies_router,
        alerts_router,
        webhooks_router,
        keys_router,
    ]


def _openapi(app: FastAPI) -> dict[str, Any]:
    """The generated schema plus the event union that POST /v1/events documents."""
    if app.openapi_schema:
        return app.openapi_schema
    schema = get_openapi(
        title=app.title,
        version=app.version,
        summary=app.summary,
        description=app.description,
        routes=app.routes,
    )
    restore_example_nulls(schema, app.routes)
    batch = EventBatch.model_json_schema(ref_template="#/components/schemas/{model}")
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    components.update(batch.pop("$defs", {}))
    components["EventBatch"] = batch
    app.openapi_schema = schema
    return schema
