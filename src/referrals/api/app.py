"""The FastAPI application factory."""

import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from anyio import to_thread
from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from fastapi_offline import FastAPIOffline

from referrals import __version__
from referrals.api import (
    auth,
    dashboard_programs,
    dashboard_routes,
    funnel,
    keys,
    links,
    metrics_routes,
    payouts,
    portal_routes,
    problems,
    programs,
    ratelimits,
    reviews,
    sales,
    stripe_webhook,
)
from referrals.api.limits import BodySizeLimit
from referrals.api.request_id import RequestId
from referrals.api.routes import Readiness, livez, router
from referrals.api.schemas.common import Problem
from referrals.bootstrap import Services, build
from referrals.click_writer import ClickWriter
from referrals.metrics import Metrics


@asynccontextmanager
async def _background(svc: Services, app: FastAPI, app_metrics: Metrics) -> AsyncIterator[None]:
    """The server's background work while it serves: outbox delivery and the schedule
    (referrals.worker), and clicks written behind the redirect (referrals.click_writer),
    flushed at the stop."""
    from referrals.worker import BackgroundWorker

    worker = BackgroundWorker(svc, metrics=app_metrics)
    worker.start()
    clicks = ClickWriter(svc.store, app_metrics) if svc.settings.click_write_behind else None
    if clicks is not None:
        clicks.start()
        app.state.click_writer = clicks
    try:
        yield
    finally:
        worker.stop()
        if clicks is not None:
            app.state.click_writer = None  # a late request writes its own click
            clicks.stop()


def create_app(services: Services | None = None, *, background: bool = False) -> FastAPI:
    """Build the app; with `background`, deliver notifications and run the schedule too."""
    svc = services or build()
    app_metrics = Metrics(svc.store)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        if svc.request_threads:  # the limiter of this event loop, which runs the routes
            to_thread.current_default_thread_limiter().total_tokens = svc.request_threads
        try:
            if not background:
                yield
                return
            async with _background(svc, app, app_metrics):
                yield
        finally:
            if svc.health_probe is not None:
                await svc.health_probe.close()

    # Swagger UI (/docs) and ReDoc (/redoc) load their scripts from this app, not
    # from a CDN, so they work offline. No online validator: Swagger UI would
    # otherwise send the spec's URL to swagger.io from any non-localhost host.
    app = FastAPIOffline(
        title="referrals",
        version=__version__,
        description="Referral codes, tiered rewards and exactly-once monthly payouts.",
        lifespan=lifespan,
        swagger_ui_parameters={"validatorUrl": None},
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    app.state.services = svc
    app.state.key_cache = auth.KeyCache()
    app.state.readiness = Readiness()
    app.state.metrics = app_metrics
    app.state.rate_limits = limits = ratelimits.RateLimits(svc.store, svc.clock, svc.settings)
    problems.install(app)
    app.add_route("/livez", livez, methods=["GET"], include_in_schema=False)
    app.include_router(router)
    # Right after /healthz's: routes are tried in order, each miss costing microseconds,
    # and a click must cost about nothing (BENCHMARKS.md, "Tracked-link clicks").
    app.include_router(links.router)
    app.include_router(payouts.router)
    app.include_router(reviews.router)
    app.include_router(programs.router)
    app.include_router(funnel.router)
    app.include_router(keys.router)
    app.include_router(portal_routes.router)
    app.include_router(metrics_routes.router)
    app.include_router(dashboard_routes.router)
    app.include_router(dashboard_programs.router)
    app.include_router(sales.router)
    app.include_router(stripe_webhook.router)
    # The last added runs first: the request id is set before anything logs, requests
    # refused for their size (413) or a limit (429) are counted, and a refused address's
    # body is not even read.
    app.add_middleware(problems.UnexpectedErrors)
    app.add_middleware(BodySizeLimit, max_bytes=svc.settings.max_body_bytes)
    app.add_middleware(ratelimits.LimitRequests, limits=limits)
    app.add_middleware(metrics_routes.HttpMetrics, metrics=app_metrics)
    app.add_middleware(RequestId)
    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]
    return app


RATE_LIMITED = {
    "description": "Too many failed authentications, or requests to a public route, from "
    "this address (code rate_limited)",
    "headers": {
        "Retry-After": {
            "description": "Seconds until the address's window ends",
            "schema": {"type": "integer", "minimum": 1},
        }
    },
}


# `/livez` is a plain Starlette route, which FastAPI does not document by itself.
HEALTH = {"application/json": {"schema": {"$ref": "#/components/schemas/Health"}}}
LIVEZ = {
    "get": {
        "tags": ["health"],
        "summary": "Livez",
        "description": "200 while the process serves requests: a liveness probe. Touches "
        "nothing else, so it does not fail because the database is away.",
        "operationId": "livez_livez_get",
        "responses": {"200": {"description": "Successful Response", "content": HEALTH}},
    }
}


STORAGE_UNAVAILABLE = {
    "description": "The storage cannot take writes now: disk full, read-only (code "
    "storage_unavailable); nothing was written"
}


def _openapi(app: FastAPI) -> dict[str, Any]:
    """FastAPI's document, with the errors this app really sends.

    FastAPI documents a 422 `HTTPValidationError` on every route that takes
    input; this app answers validation errors with 400 problem documents, and
    a 422 only for a self-referral. Every route but /healthz may answer 429 (see
    `api.ratelimits`), every POST 413 (`api.limits`) and 503 `storage_unavailable`.
    """
    if app.openapi_schema:
        return app.openapi_schema
    schema = get_openapi(
        title=app.title, version=app.version, description=app.description, routes=app.routes
    )
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    components["Problem"] = Problem.model_json_schema()
    schema["paths"]["/livez"] = LIVEZ
    problem = {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}
    operations = (
        (path, method, operation)
        for path, methods in schema["paths"].items()
        for method, operation in methods.items()
    )
    max_body = app.state.services.settings.max_body_bytes
    for path, method, operation in operations:
        responses = operation.get("responses", {})
        if responses.get("422", {}).get("description") == "Validation Error":
            del responses["422"]
        if operation.get("parameters") or operation.get("requestBody"):
            responses.setdefault("400", {"description": "Invalid request"})
        if path not in ratelimits.NEVER_LIMITED:
            responses.setdefault("429", {**RATE_LIMITED})
        if method == "post":  # every POST body is read under the cap; every POST writes
            responses.setdefault("413", {"description": f"The body exceeds {max_body} bytes"})
            responses.setdefault("503", {**STORAGE_UNAVAILABLE})
        for status, response in responses.items():
            if status[0] in "45":
                response["content"] = problem
    for unused in ("HTTPValidationError", "ValidationError"):
        components.pop(unused, None)
    portal_routes.document(schema, app.state.services.settings)  # bounds set by this app's settings
    app.openapi_schema = schema
    return schema


def serve_app() -> FastAPI:
    """The app `referrals serve` runs in each worker process (uvicorn --factory).

    What is built by now (modules, schemas, routes, the store) lives as long as the
    process: frozen, the collector no longer walks it. Each full collection walked it
    all and stopped every request for 35 to 85 ms, a few times a minute under load
    (BENCHMARKS.md, issue 27)."""
    app = create_app(build(), background=True)
    gc.collect()  # what import and build left as garbage is freed, not frozen
    gc.freeze()
    return app
