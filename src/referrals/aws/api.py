"""API Gateway (REST, proxy integration) -> Mangum -> the same FastAPI app."""

from typing import Any, cast

from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext
from mangum import Mangum
from mangum.adapter import DEFAULT_TEXT_MIME_TYPES

from referrals.aws.observability import logger, tracer

_adapter: Mangum | None = None
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


def _app() -> Mangum:
    # Built on the first event, not at import: importing opens nothing.
    global _adapter
    if _adapter is None:
        from referrals.api.app import create_app
        from referrals.aws.runtime import services

        # Problem responses are JSON too: send them as text, not base64.
        text = [*DEFAULT_TEXT_MIME_TYPES, "application/problem+json"]
        app = StagePrefix(create_app(services()))
        _adapter = Mangum(app, lifespan="off", text_mime_types=text)
    return _adapter


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    response: dict[str, Any] = _app()(event, cast(Any, context))
    return response
