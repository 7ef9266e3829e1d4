"""Metrics over HTTP: the middleware that counts and times each request, and the
`/metrics` route Prometheus scrapes. The counters themselves are in `referrals.metrics`."""

import time

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from referrals.api import auth
from referrals.api.deps import metrics_of
from referrals.metrics import Metrics

UNMATCHED = "unmatched"  # no route: 404s, and bodies refused (413) before routing
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


class HttpMetrics:
    """Counts and times each request by its route template, never its raw path.

    A pure ASGI middleware: no task and stream per request, as BaseHTTPMiddleware
    would add to every route. The template keeps user ids and emails, which may be in
    the path, out of the labels, and their count bounded.
    """

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics
        # id(endpoint) -> route template, see _route; endpoints live as long as the app.
        self._templates: dict[int, str] = {}

    def _route(self, scope: Scope) -> str:
        """The template of the route that answered, or UNMATCHED.

        FastAPI's own routes leave themselves in the scope; plain Starlette routes (the
        docs: /docs, /redoc, /openapi.json) and mounts leave only their endpoint, so
        those are looked up among the app's routes, once each.
        """
        template = getattr(scope.get("route"), "path_format", None)
        if template:
            return str(template)
        endpoint = scope.get("endpoint")
        if endpoint is None:
            return UNMATCHED
        key = id(endpoint)
        if key not in self._templates:
            routes = getattr(scope.get("app"), "routes", ())
            found = (
                getattr(route, "path_format", None)
                for route in routes
                if endpoint is getattr(route, "endpoint", None)
                or endpoint is getattr(route, "app", None)
            )
            self._templates[key] = next(found, None) or UNMATCHED
        return self._templates[key]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # what the server answers if the app raises before responding

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            # The router stores the matched route in the scope it was given, this one.
            route = self._route(scope)
            method = scope["method"] if scope["method"] in METHODS else "other"
            self.metrics.observe_request(method, route, status, time.perf_counter() - started)


router = APIRouter()


# Not in the OpenAPI document: it is for Prometheus, in its text format, not the JSON API.
@router.get("/metrics", include_in_schema=False, dependencies=[Depends(auth.admin)])
def scrape(request: Request) -> Response:
    """The metrics in Prometheus' text format (admin key: Prometheus sends it as a bearer)."""
    return Response(generate_latest(metrics_of(request).registry), media_type=CONTENT_TYPE_LATEST)
