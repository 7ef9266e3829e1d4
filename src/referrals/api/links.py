"""The public tracking routes: tracked referral links (`GET /l/{code}`) and the snippet
that carries their referral to the signup form (`GET /v1/snippet.js`). No key.

A tracked link always redirects (302): a click is recorded only for a person (not a
HEAD request nor a crawler's user agent) from an address under its click limit, on
the code of an active program with a landing URL. Over the limit the visitor is still
sent on, with the code but no click id: the limit keeps one address from filling the
store, never a person from the product. The answer is not cached by anyone (each
visit is its own click) and leaves only the referring page's origin to the landing
page.

A click must cost about nothing: each app keeps the owners of the codes followed
(`services.clicks.LinkOwners`: a code's owner never changes), and under `referrals
serve` the click is written behind the redirect, in batches (`referrals.click_writer`).
Elsewhere (AWS Lambda, an app built without its background work) the redirect writes
its click itself.

The click limit is counted by each process in memory (`CLICKS_PER_ADDRESS` per
window of `rate_limit_window_seconds`), as the public pages' limit is: a shared
count would cost a write per click, which is what it protects against.
"""

import hashlib
import threading
from datetime import timedelta
from functools import cache
from importlib.resources import files
from typing import Annotated

from fastapi import APIRouter, Path, Request, Response, status
from starlette.datastructures import Headers

from referrals.api.deps import PROBLEMS, ServicesDep
from referrals.api.ratelimits import Windows, client_address
from referrals.click_writer import ClickWriter
from referrals.domain.clicks import UTM_FIELDS, is_bot
from referrals.services.clicks import LinkOwners, Visit, follow_link

router = APIRouter(tags=["tracking"])

CLICKS_PER_ADDRESS = 30
NOT_CACHED = {
    "Cache-Control": "no-store",
    # The landing page learns the referring site's origin, never its path.
    "Referrer-Policy": "strict-origin-when-cross-origin",
    "X-Robots-Tag": "noindex",
}
# A week: the snippet changes only with a release, and the ETag revalidates it after.
SNIPPET_MAX_AGE = 7 * 24 * 3600

_creating = threading.Lock()


# HEAD as a route of its own, left out of the OpenAPI document: one route of both
# methods would document two operations under one operationId.
@router.head("/l/{code}", include_in_schema=False)
@router.get(
    "/l/{code}",
    status_code=status.HTTP_302_FOUND,
    response_class=Response,
    responses=PROBLEMS
    | {
        302: {
            "description": "To the program's landing URL, with `ref=<code>` and "
            "`click_id=<id>` added to its query when a click was recorded",
            "headers": {"Location": {"schema": {"type": "string"}}},
        },
        404: {"description": "not_found: the program has no landing URL"},
    },
)
def follow(
    code: Annotated[str, Path(max_length=64, description="A referrer's code, any case")],
    request: Request,
    svc: ServicesDep,
) -> Response:
    """A referrer's tracked link: records a click and redirects to the program's landing
    URL. An unknown code leads to the default program's landing URL, a paused or
    archived program's code to its own, without a click; crawlers and HEAD requests
    are sent on without a click too."""
    visit = _visit(request) if _counts(request, svc) else None
    # `referrals serve` writes clicks behind the redirect; elsewhere (Lambda) the
    # redirect writes its own.
    writer: ClickWriter | None = getattr(request.app.state, "click_writer", None)
    target = follow_link(
        svc.store,
        svc.clock,
        svc.rules,
        svc.fingerprints.key,
        code,
        visit,
        record=writer.record if writer is not None else None,
        owners=_owners(request, svc),
    )
    return Response(
        status_code=status.HTTP_302_FOUND, headers={"Location": target.url, **NOT_CACHED}
    )


def _counts(request: Request, svc: ServicesDep) -> bool:
    """Whether this visit may be a click: a person's GET from an address under its limit."""
    if request.method != "GET" or is_bot(request.headers.get("user-agent")):
        return False
    windows = _click_windows(request, timedelta(seconds=svc.settings.rate_limit_window_seconds))
    count, _ = windows.hit(client_address(request.scope), svc.clock.now())
    return count <= CLICKS_PER_ADDRESS


def _click_windows(request: Request, window: timedelta) -> Windows:
    state = request.app.state
    windows: Windows | None = getattr(state, "click_windows", None)
    if windows is None:
        with _creating:
            windows = getattr(state, "click_windows", None) or Windows(window)
            state.click_windows = windows
    return windows


def _owners(request: Request, svc: ServicesDep) -> LinkOwners:
    """This app's owners of the codes followed (kept across requests)."""
    state = request.app.state
    owners: LinkOwners | None = getattr(state, "link_owners", None)
    if owners is None:
        with _creating:
            owners = getattr(state, "link_owners", None) or LinkOwners(svc.store)
            state.link_owners = owners
    return owners


def _visit(request: Request) -> Visit:
    headers: Headers = request.headers
    query = {
        name: request.query_params[name] for name in UTM_FIELDS if name in request.query_params
    }
    client = request.client
    return Visit(
        ip=client.host if client else None,
        user_agent=headers.get("user-agent"),
        referer=headers.get("referer"),
        query=query,
    )


@cache
def snippet() -> tuple[bytes, str]:
    """The snippet's bytes and their ETag (a digest: it changes only with the file)."""
    body = files("referrals.web").joinpath("static/snippet.js").read_bytes()
    return body, f'"{hashlib.sha256(body).hexdigest()[:32]}"'


@router.get(
    "/v1/snippet.js",
    response_class=Response,
    responses={
        200: {
            "description": "The snippet (see the README: its tag, with its Subresource "
            "Integrity hash)",
            "content": {"text/javascript": {"schema": {"type": "string"}}},
        },
        304: {"description": "The ETag sent in If-None-Match is the snippet's"},
    },
)
def get_snippet(request: Request) -> Response:
    """The script for the product's pages that keeps a tracked link's referral in a
    first-party cookie for the signup form (`referrals.referral()`), with consent."""
    body, etag = snippet()
    headers = {
        "ETag": etag,
        "Cache-Control": f"public, max-age={SNIPPET_MAX_AGE}",
        # Loaded from the product's own origin with `integrity`: the browser checks the
        # hash of a cross-origin script only if it may read it (CORS).
        "Access-Control-Allow-Origin": "*",
        "Cross-Origin-Resource-Policy": "cross-origin",
        "X-Content-Type-Options": "nosniff",
    }
    if etag in request.headers.get("if-none-match", ""):
        return Response(status_code=status.HTTP_304_NOT_MODIFIED, headers=headers)
    return Response(body, media_type="text/javascript", headers=headers)
