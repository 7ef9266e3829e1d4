"""What the routers share: the app's services and metrics, the mount point, the paging
parameters and the problem responses every route documents.

Routers import from here (and from `auth`, `problems`, `ratelimits`, `schemas`), never
from each other.
"""

from typing import Annotated, Any

from fastapi import Depends, Path, Query, Request

from referrals.api.schemas.common import ProgramId
from referrals.bootstrap import Services
from referrals.metrics import Metrics
from referrals.services import queries


# `async`: FastAPI runs a plain `def` dependency in its thread pool, and a thread hop
# costs more than reading an attribute (docs/decisions/api-request-path.md).
async def services(request: Request) -> Services:
    app_services: Services = request.app.state.services
    return app_services


ServicesDep = Annotated[Services, Depends(services)]


def metrics_of(request: Request) -> Metrics:
    metrics: Metrics = request.app.state.metrics
    return metrics


def mount_point(request: Request) -> str:
    """Where the app is mounted (ASGI root_path): `/prod` under API Gateway's default URL
    (see aws/api.py), empty under `referrals serve`. Links the app hands out to browsers
    (dashboard pages, portal links) start with it."""
    return str(request.scope.get("root_path", "")).rstrip("/")


Limit = Annotated[int, Query(ge=1, le=queries.MAX_PAGE)]
# Opaque: the `next_cursor` of the page before. Any other is refused (400 invalid cursor).
Cursor = Annotated[
    str | None,
    Query(
        max_length=queries.MAX_CURSOR_LENGTH,
        pattern=r"^[A-Za-z0-9_-]+$",
        description="The `next_cursor` of the previous page",
    ),
]

PROBLEMS: dict[int | str, dict[str, Any]] = {
    400: {"description": "Invalid request (problem+json, code validation_error)"},
    401: {"description": "Missing or invalid API key"},
    403: {"description": "The key's role may not do this"},
}


def default_program(svc: ServicesDep) -> None:
    """The `default` program exists before a route reads programs or signs up: a
    process built without migrating (a Lambda function) makes it on first need, here,
    before the route's unit of work begins (a signup reads its program in its own)."""
    svc.rules.ensure_default()


# A program's id in a path (the routes under /v1/programs/{program_id}), and the answer
# to one that names no program.
InProgram = Annotated[ProgramId, Path(description="The program's id")]
PROGRAM_NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"description": "program_not_found"}}
