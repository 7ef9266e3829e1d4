"""API Gateway (REST, proxy integration) -> Mangum -> the same FastAPI app.

The app (FastAPI, its routes and schemas) is imported with its first build, on the
first event, or before a SnapStart snapshot (`prime`), never by importing this module.
"""

from typing import TYPE_CHECKING, Any, cast

from aws_lambda_powertools.logging import correlation_paths

from referrals.aws import runtime
from referrals.aws.observability import logger, tracer

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext
    from mangum import Mangum

_adapter: "Mangum | None" = None
EXECUTE_API = ".amazonaws.com"  # API Gateway's default domain: the stage is in every URL


class StagePrefix:
    """Give the app its mount point back, as ASGI's root_path.

    Under API Gateway's default URL a browser sees `/prod/dashboard`, but Mangum hands
    the app `/dashboard`; pages that link to themselves (the dashboard, portal links)
    need the `/prod`. Behind a custom domain mapped at the root there is no prefix.
    """

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            stage = scope.get("aws.event", {}).get("requestContext", {}).get("stage")
            host = dict(scope["headers"]).get(b"host", b"").decode("latin-1")
            if stage and host.endswith(EXECUTE_API):
                root = f"/{stage}"
                scope = {**scope, "root_path": root, "path": root + scope["path"]}
        await self.app(scope, receive, send)


def _app() -> "Mangum":
    # Built on the first event, not at import: importing opens nothing.
    global _adapter
    if _adapter is None:
        from mangum import Mangum
        from mangum.adapter import DEFAULT_TEXT_MIME_TYPES

        from referrals.api.app import create_app

        # Problem responses are JSON too: send them as text, not base64.
        text = [*DEFAULT_TEXT_MIME_TYPES, "application/problem+json"]
        app = StagePrefix(create_app(runtime.services()))
        _adapter = Mangum(app, lifespan="off", text_mime_types=text)
    return _adapter


def prime() -> None:
    """Before a SnapStart snapshot: the app's modules (importing them builds the routes
    and their schemas) and Mangum's; the app itself is built after the restore, with
    the instance's own services."""
    import mangum.adapter  # noqa: F401

    import referrals.api.app  # noqa: F401


def restored() -> None:
    global _adapter
    _adapter = None


runtime.on_snapshot(prime, restored)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: "LambdaContext") -> dict[str, Any]:
    response: dict[str, Any] = _app()(event, cast(Any, context))
    return response
