"""The application factory: routes, error handlers, metrics, offline docs and the lifespan
that opens the database and, in embedded mode, runs a worker inside the API process."""

from __future__ import annotations

import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.openapi.utils import get_openapi
from fastapi.responses import HTMLResponse
from fastapi.telemetry import TelemetryConfig
from sqlalchemy.orm import Session, sessionmaker
from starlette.concurrency import run_in_threadpool
from starlette.middleware.gzip import DEFAULT_EXCLUDED_CONTENT_TYPES
from starlette.staticfiles import StaticFiles

from service.api import include_api
from service.auth.middleware import AuthMiddleware
from service.batches import repository as batches
from service.compute import ComputePool
from service.db import notify
from service.db.changes import CHANNEL as changes_channel
from service.db.changes import ChangeToken, NotifiedChanges, change_token_for
from service.db.migrate import SchemaGate
from service.db.notify import start_listener
from service.errors import (
    Problem,
    document_insufficient_storage,
    install_error_handlers,
    problem_responses,
)
from service.idempotency import IdempotencyMiddleware
from service.idempotency.openapi import document_idempotency_key
from service.inference import repository as intervals
from service.models import repository as models
from service.models.documents import ModelDocuments, read_after_job
from service.models.endpoints import LOOP_PREDICTION_BYTES
from service.models.fast_predictions import PredictionFastPath
from service.models.fast_reads import ModelReadFastPath
from service.models.prediction_output import PARQUET
from service.models.predictors import PredictorCache
from service.models.service import FINISHED, FIT_JOB
from service.models.shared_reads import SharedReads
from service.models.watch import FinishWatch
from service.ops.bodylimit import BodyLimitMiddleware, BodyLimits
from service.ops.compression import CompressionMiddleware
from service.ops.metrics import Metrics, MetricsMiddleware
from service.ops.ratelimit import (
    RateLimiter,
    RateLimitMiddleware,
    document_rate_limit,
    parse_rate_limit,
)
from service.ops.requests import RequestContextMiddleware, UnhandledErrorMiddleware
from service.ops.schema import SchemaGateMiddleware
from service.ops.security import CrossSiteWriteGuard, add_cors_middleware, docs_csp
from service.settings import Settings, get_settings

logger = logging.getLogger("mixedfit")

GZIP_MINIMUM_BYTES = 1024
# zlib's level 9 (Starlette's default) took 140 ms on a 100,000-row prediction answer
# (1.8 MB), 5 about 70 ms and 1 21 ms, on the event loop, for 0.88, 0.88 and 0.94 MB:
# level 1, nginx's default, compresses JSON of numbers nearly as well as any
GZIP_LEVEL = 1
STATIC_DIR = Path(__file__).resolve().parent / "static"
TITLE = "mixedfit"
DESCRIPTION = (
    "Linear and linear mixed-effects models over HTTP, with R/lme4 semantics. Upload a "
    "dataset, post a formula such as `Mood ~ Exercise + (1 + Exercise | State)`, wait for the "
    "fit, read coefficients and metrics, and predict. Errors are RFC 9457 problem documents."
)


def _version() -> str:
    try:
        return version("mixedfit")
    except PackageNotFoundError:
        return "0.0.0"


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the application; the database is opened when its lifespan starts."""
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        from service.db import reserve
        from service.db.session import create_db_engine, make_session_factory

        engine = create_db_engine(settings.database_url)
        app.state.engine = engine
        app.state.session_factory = make_session_factory(engine)
        app.state.read_session_factory = make_session_factory(engine, reads_only=True)
        gate = SchemaGate(engine)
        problem = await run_in_threadpool(gate.problem)
        if problem is not None:
            # one line at start; until then the routes answer 503 database-not-migrated
            logger.error("%s Until then every route answers 503.", problem)
        else:
            # the space that a full disk gives back so that deletes work (service.db.reserve)
            await run_in_threadpool(reserve.hold, engine, settings.storage_reserve_bytes)
        app.state.schema_gate = gate
        watch = FinishWatch(lambda: app.state.read_session_factory,
                            lambda session, ids: models.finished_among(session, ids, FINISHED))
        app.state.finish_watch = watch
        batch_watch = FinishWatch(lambda: app.state.read_session_factory,
                                  batches.finished_among)
        app.state.batch_watch = batch_watch
        interval_watch = FinishWatch(lambda: app.state.read_session_factory,
                                     intervals.finished_among)
        app.state.interval_watch = interval_watch
        changes: ChangeToken = app.state.changes

        def heard(channel: str, payload: str | None) -> None:
            if channel == changes_channel:
                changes.heard()
            elif payload is not None:  # that model's fit finished: its waiters, no query
                watch.finished(payload)
            else:  # (re)connected: whatever finished meanwhile was not heard
                watch.wake()

        # PostgreSQL: a finished fit notifies (migration 0009), waiters are answered at once;
        # a key written or a model deleted (0013), the caches of both check again
        listener = start_listener(settings.database_url, [notify.FINISHED, changes_channel],
                                  heard)
        if listener is not None and isinstance(changes, NotifiedChanges):
            changes.connected = listener.connected
        worker = None
        if settings.embedded_worker:
            from service.jobs import start_embedded_worker

            def finished_a_job(kind: str, target_id: str) -> None:
                if kind == FIT_JOB:  # its model's waiters, at once and without a query
                    # a client waits (it posted with ?wait=, or polls): the document is
                    # read here, on the worker's thread, not after a trip through the
                    # event loop to the threadpool; kept for the polls, handed to the
                    # client that queued it
                    handed = (read_after_job(app.state.read_session_factory, target_id)
                              if watch.watching(target_id) else None)
                    if handed is not None:
                        app.state.model_documents.keep(handed)
                    watch.finished(target_id, handed)
                else:
                    batch_watch.wake()
                    interval_watch.wake()

            worker = await run_in_threadpool(start_embedded_worker, settings, finished_a_job)
            # a queued fit is claimed at once, not at the worker's next poll
            app.state.wake_workers = worker.wake
            app.state.embedded_worker = worker
        # Everything made so far (numpy, pandas, scipy, matplotlib and the app: millions of
        # objects) lives as long as the process: out of the collector's sight, a full
        # collection scans only what requests made since. Scanning them all took 125-150 ms
        # every few seconds under a plot load, the p99 of every other request then.
        gc.collect()
        gc.freeze()
        # What requests make is still scanned by every full collection: 500 long polls hold
        # 60,000-100,000 objects for their wait, and a full collection of them stopped the
        # event loop for 70 ms or more, three times in a 30 s polls load; a tenth as often,
        # the young generations as before (cycles left by requests are few and small)
        gc.set_threshold(*REQUEST_GC_THRESHOLDS)
        try:
            yield
        finally:
            if worker is not None:
                await run_in_threadpool(worker.stop)
            if listener is not None:
                await run_in_threadpool(listener.stop)
            await watch.close()
            await batch_watch.close()
            await interval_watch.close()
            changes.close()
            await run_in_threadpool(app.state.compute_pool.close)
            engine.dispose()

    app = FastAPI(title=TITLE, version=_version(), description=DESCRIPTION, lifespan=lifespan,
                  docs_url=None, redoc_url=None, telemetry=NO_TELEMETRY)
    app.state.settings = settings
    # tells the caches of key lookups and of models whether the database was written
    changes = change_token_for(settings.database_url)
    app.state.changes = changes
    app.state.predictor_cache = PredictorCache(settings.prediction_cache_bytes, changes)
    app.state.model_documents = ModelDocuments(settings.document_cache_bytes)
    app.state.model_status_reads = SharedReads()
    app.state.compute_pool = ComputePool(
        settings.compute_processes, settings.compute_queue, settings.compute_timeout_seconds,
        settings.compute_memory_bytes)
    app.state.session_factory = None
    app.state.read_session_factory = None
    app.state.schema_gate = None
    # called when a job is queued (embedded mode: the in-process worker's wake)
    app.state.wake_workers = _nobody
    # embedded mode: the in-process worker, which a request may hand its fit to directly
    app.state.embedded_worker = None

    def session_factory() -> sessionmaker[Session] | None:
        factory: sessionmaker[Session] | None = app.state.read_session_factory
        gate: SchemaGate | None = app.state.schema_gate
        if gate is not None and gate.problem() is not None:
            return None  # no tables to count yet: the scrape has the HTTP metrics only
        return factory

    metrics = Metrics(session_factory)
    app.state.metrics = metrics
    install_error_handlers(app)
    include_api(app)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    # the innermost: small predictions from a current cached model skip the routing, after
    # every other middleware has done its part (service.models.fast_predictions)
    app.add_middleware(PredictionFastPath, cache=lambda: app.state.predictor_cache,
                       max_bytes=LOOP_PREDICTION_BYTES,
                       max_rows=settings.max_prediction_rows)
    # and reads of a model, long polls above all, which arrive by the hundred at once
    # (service.models.fast_reads)
    app.add_middleware(ModelReadFastPath)
    # innermost but one (added first), so inside the auth middleware, whose principal they read:
    # the rate limit counts per tenant, and idempotency keys are per tenant
    app.add_middleware(IdempotencyMiddleware, session_factory=lambda: app.state.session_factory,
                       ttl_seconds=settings.idempotency_ttl_seconds,
                       max_body_bytes=settings.max_upload_bytes)
    # outside idempotency, which reads the body: every body is read under its route's limit
    app.add_middleware(BodyLimitMiddleware, limits=BodyLimits(
        upload_bytes=settings.max_upload_bytes, prediction_bytes=settings.max_prediction_bytes,
        other_bytes=settings.max_body_bytes))
    rate_limits = parse_rate_limit(settings.rate_limit)
    if rate_limits:
        app.add_middleware(RateLimitMiddleware,
                           limiter=RateLimiter(rate_limits, settings.rate_limit_storage))
    # who is calling (request.state.principal): inside the schema gate (keys are in the
    # database), outside what needs the caller's tenant (idempotency, rate limits)
    app.add_middleware(AuthMiddleware,
                       session_factory=lambda: app.state.read_session_factory,
                       gate=lambda: app.state.schema_gate, protect_docs=settings.protect_docs,
                       protect_metrics=settings.protect_metrics,
                       cache_seconds=settings.auth_cache_seconds, changes=changes)
    app.add_middleware(SchemaGateMiddleware, gate=lambda: app.state.schema_gate)
    app.add_middleware(MetricsMiddleware, metrics=metrics)

    @app.get("/docs", include_in_schema=False)
    def docs() -> HTMLResponse:
        # FastAPI's default page loads Swagger UI from a CDN; these assets ship in the package
        page = get_swagger_ui_html(
            openapi_url=app.openapi_url or "/openapi.json",
            title=f"{TITLE} API",
            swagger_js_url="/static/swagger-ui/swagger-ui-bundle.js",
            swagger_css_url="/static/swagger-ui/swagger-ui.css",
            swagger_favicon_url="/static/swagger-ui/favicon-32x32.png",
        )
        # its own policy: this server's assets and the page's inline script, nothing else
        page.headers["Content-Security-Policy"] = docs_csp(bytes(page.body).decode())
        return page

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = build_openapi(app)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    # large answers (results, residual tables, SVG) compressed for clients that accept it
    # (zstd or gzip); Parquet is compressed already (Snappy per column): compressing it
    # again would cost time for nothing
    app.add_middleware(CompressionMiddleware, minimum_size=GZIP_MINIMUM_BYTES,
                       compresslevel=GZIP_LEVEL,
                       exclude_content_types=(*DEFAULT_EXCLUDED_CONTENT_TYPES, PARQUET))
    # keep this the last middleware added (the outermost): every answer passes through it
    install_http_edge(app, settings)
    return app


# the collector's thresholds while serving: Python's defaults (700, 10, 10) but for the
# oldest generation, collected after 100 collections of the middle one instead of 10
REQUEST_GC_THRESHOLDS = (700, 10, 100)

# FastAPI's own OpenTelemetry is off: the service has its Prometheus metrics and access
# lines, and the check whether a tracer is configured cost every request microseconds
NO_TELEMETRY: TelemetryConfig = {"tracing": False, "metrics": False, "logs": False,
                                 "operation_spans": False}


def _nobody() -> None:
    """No worker in this process to wake (production workers hear PostgreSQL's NOTIFY)."""


def install_http_edge(app: FastAPI, settings: Settings) -> None:
    """The outermost middleware, outside any added before (auth, rate limits, metrics):
    request ids, logs and security headers (``RequestContextMiddleware``) around CORS,
    around the last-resort 500 and the cross-site write guard, so every answer, a 401 or a
    500 too, carries the request id, the security headers and, for an allowed origin, CORS
    headers; preflights are answered by CORS, inside the request context."""
    app.add_middleware(CrossSiteWriteGuard, allowed_origins=settings.cors_origins)
    app.add_middleware(UnhandledErrorMiddleware)
    if settings.cors_origins:
        add_cors_middleware(app, settings.cors_origins)
    app.add_middleware(RequestContextMiddleware)


def build_openapi(app: FastAPI) -> dict[str, Any]:
    """The OpenAPI document, with the problem schema that error responses refer to."""
    schema = get_openapi(title=app.title, version=app.version, description=app.description,
                         routes=app.routes)
    schemas = schema.setdefault("components", {}).setdefault("schemas", {})
    problem = Problem.model_json_schema(ref_template="#/components/schemas/{model}")
    schemas.update(problem.pop("$defs", {}))
    schemas["Problem"] = problem
    # FastAPI documents its validation errors in its own shape; this app answers them with
    # problem documents (service.errors), so the document says that instead.
    for operations in schema.get("paths", {}).values():
        for operation in operations.values():
            responses = operation.get("responses", {})
            if "422" in responses and "application/json" in responses["422"].get("content", {}):
                responses["422"] = problem_responses(422)[422]
    schemas.pop("HTTPValidationError", None)
    schemas.pop("ValidationError", None)
    document_idempotency_key(schema)
    document_rate_limit(schema)
    document_insufficient_storage(schema)
    return schema
