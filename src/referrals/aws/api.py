"""API Gateway (REST, proxy integration) -> Mangum -> the same FastAPI app."""

from typing import Any, cast

from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext
from mangum import Mangum
from mangum.adapter import DEFAULT_TEXT_MIME_TYPES

from referrals.aws.observability import logger, tracer

_adapter: Mangum | None = None


def _app() -> Mangum:
    # Built on the first event, not at import: importing opens nothing.
    global _adapter
    if _adapter is None:
        from referrals.api.app import create_app
        from referrals.aws.runtime import services

        # Problem responses are JSON too: send them as text, not base64.
        text = [*DEFAULT_TEXT_MIME_TYPES, "application/problem+json"]
        _adapter = Mangum(create_app(services()), lifespan="off", text_mime_types=text)
    return _adapter


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    response: dict[str, Any] = _app()(event, cast(Any, context))
    return response
