"""RFC 9457 problem responses: one place maps error codes to HTTP."""

import logging
from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, Request, params
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from referrals.domain.errors import DomainError

logger = logging.getLogger("referrals.api")

STATUS_BY_CODE = {
    "validation_error": 400,
    "invalid_signature": 400,
    "currency_mismatch": 400,
    "unauthorized": 401,
    "forbidden": 403,
    "not_found": 404,
    "code_not_found": 404,
    "program_not_found": 404,
    "sale_not_found": 404,
    "click_not_found": 404,
    "method_not_allowed": 405,
    "already_referred": 409,
    "referrer_exists": 409,
    "code_taken": 409,
    "payout_in_progress": 409,
    "earlier_run_failed": 409,
    "not_held": 409,
    "not_reversible": 409,
    "conversion_conflict": 409,
    "sale_conflict": 409,
    "refund_conflict": 409,
    "refund_exceeds_sale": 409,
    "key_not_active": 409,
    "program_exists": 409,
    "program_paused": 409,
    "program_archived": 409,
    "click_mismatch": 409,
    "request_too_large": 413,
    "self_referral": 422,
    "rate_limited": 429,
    "internal_error": 500,
    "payout_failed": 503,
    "unavailable": 503,
    "storage_unavailable": 503,
}
CODE_BY_STATUS = {400: "validation_error", 401: "unauthorized", 403: "forbidden", 404: "not_found"}
CODE_BY_STATUS |= {405: "method_not_allowed", 413: "request_too_large", 429: "rate_limited"}


class ApiError(Exception):
    """An error raised by the HTTP layer itself (authentication, authorization, limits)."""

    def __init__(self, code: str, detail: str, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail
        self.headers = headers  # e.g. a 429's Retry-After


def problem(
    code: str, detail: str, headers: Mapping[str, str] | None = None, **extra: Any
) -> JSONResponse:
    status = STATUS_BY_CODE[code]
    body = {
        "type": f"urn:referrals:problem:{code}",
        "title": code.replace("_", " ").capitalize(),
        "status": status,
        "detail": detail,
        "code": code,
        **extra,
    }
    all_headers = {**(headers or {})}
    if status == 401:
        all_headers["WWW-Authenticate"] = "Bearer"
    return JSONResponse(body, status, headers=all_headers, media_type="application/problem+json")


def install(app: FastAPI) -> None:
    @app.exception_handler(DomainError)
    async def _domain(_: Request, error: DomainError) -> JSONResponse:
        field = getattr(error, "field", None)  # InvalidInput about one input names it
        if field is None:
            return problem(error.code, error.detail)
        return problem(
            error.code, error.detail, errors=[{"loc": field.split("."), "msg": error.detail}]
        )

    @app.exception_handler(ApiError)
    async def _api(_: Request, error: ApiError) -> JSONResponse:
        return problem(error.code, error.detail, headers=error.headers)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, error: RequestValidationError) -> JSONResponse:
        # The offending input is not echoed back: it may be large or sensitive.
        errors = [
            {"loc": [str(part) for part in e.get("loc", ())], "msg": str(e.get("msg", ""))}
            for e in error.errors()
        ]
        content_type = request.headers.get("content-type")
        body_errors = [e for e in errors if e["loc"][:1] == ["body"]]
        if body_errors and _takes_json(request) and not _is_json(content_type):
            return _not_json(content_type, [e for e in errors if e not in body_errors])
        return problem("validation_error", "the request is not valid", errors=errors)

    @app.exception_handler(HTTPException)
    async def _http(request: Request, error: HTTPException) -> JSONResponse:
        code = CODE_BY_STATUS.get(error.status_code, "validation_error")
        headers = dict(error.headers or {})
        if error.status_code == 405:
            headers["Allow"] = _allowed_methods(request)
        return problem(code, str(error.detail), headers=headers)


class UnexpectedErrors:
    """The last word on an exception no handler took: one log line with its traceback,
    and a 500 problem on a connection that stays open for the client's next request.

    Starlette's own handler for `Exception` runs outside every middleware and raises
    the error again once it has answered, so the server logged it a second time and
    closed the keep-alive connection. Installed innermost, this one answers instead.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def watched(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, watched)
        except Exception:
            if started:  # half an answer is out: only closing the connection ends it
                raise
            logger.exception("unexpected error on %s %s", scope["method"], scope["path"])
            await problem("internal_error", "an unexpected error occurred")(scope, receive, send)


METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


def _allowed_methods(request: Request) -> str:
    """Every method some route answers at this path, for a 405's `Allow` (RFC 9110).

    The router names only the methods of the first route whose path matched: POST
    alone for `/v1/payouts`, a POST route and a GET route. So each method is asked of
    the router's routes as the request's was (cheap enough: 405s are rare).
    """

    def answers(method: str) -> bool:
        scope = {**request.scope, "method": method}
        return any(route.matches(scope)[0] is Match.FULL for route in request.app.router.routes)

    return ", ".join(method for method in METHODS if answers(method))


def _takes_json(request: Request) -> bool:
    """Whether the matched route reads a JSON body (not a form)."""
    field = getattr(request.scope.get("route"), "body_field", None)
    return field is not None and not isinstance(field.field_info, params.Form)


def _is_json(content_type: str | None) -> bool:
    media = (content_type or "").split(";")[0].strip().lower()
    return media == "application/json" or (
        media.startswith("application/") and media.endswith("+json")
    )


def _not_json(content_type: str | None, other_errors: list[dict[str, Any]]) -> JSONResponse:
    # FastAPI hands a body not declared as JSON to the model as raw bytes, and the
    # error it reports ("a valid dictionary", "field required") hides the real
    # mistake, typically `curl -d`, which sends application/x-www-form-urlencoded.
    sent = f"it was {content_type}" if content_type else "none was sent"
    detail = f"the body must be JSON, sent with Content-Type: application/json ({sent})"
    errors = [*other_errors, {"loc": ["header", "content-type"], "msg": detail}]
    return problem("validation_error", detail, errors=errors)
