"""The referrer portal: the API issues a signed link, and `/r/{code}` is the page it opens.

The page is HTML for a person, not the JSON API: it authenticates with the link's
token instead of an API key, and answers refusals with pages, not problem documents
(but for the 429 of an address past its limit of failed authentications, which is
one everywhere: see `api.ratelimits`).
"""

from datetime import UTC, datetime
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Body, Depends, Request, status
from fastapi.responses import HTMLResponse, Response
from pydantic import AwareDatetime, BaseModel, Field

from referrals.api import auth, ratelimits
from referrals.api.deps import PROBLEMS, ServicesDep, mount_point
from referrals.api.schemas.common import RequestBody, UserId, WholeNumber
from referrals.config import Settings
from referrals.domain.errors import NotFound
from referrals.domain.links import InvalidLink
from referrals.domain.model import ApiKey
from referrals.services import portal_views
from referrals.web import portal_pages, tokens

router = APIRouter()

# The token is in the URL: no cache may keep the page, and no link on it may pass the
# URL on as a Referer. The page needs no script, so none may run.
PAGE_HEADERS = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "X-Robots-Tag": "noindex",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
}


TtlSeconds = Annotated[
    int,
    Field(strict=True, ge=portal_views.MIN_TTL_SECONDS, le=portal_views.MAX_TTL_SECONDS),
    WholeNumber,
]


class PortalLinkRequest(RequestBody):
    ttl_seconds: TtlSeconds | None = Field(
        None,
        description="How long the link works; at most the portal_link_ttl_seconds setting, "
        "which is also the default (400 past it).",
    )


def document(schema: dict[str, Any], settings: Settings) -> None:
    """State in the OpenAPI document the bound this app enforces on `ttl_seconds`: the
    portal_link_ttl_seconds setting it was built with, not the most any setting allows."""
    ttl = schema["components"]["schemas"]["PortalLinkRequest"]["properties"]["ttl_seconds"]
    for branch in ttl["anyOf"]:
        if branch.get("type") == "integer":
            branch["maximum"] = settings.portal_link_ttl_seconds


class PortalLinkOut(BaseModel):
    url: str = Field(
        description="The page's path and query (`/r/{code}?token=...`): prefix it with the "
        "address this service is reached at by your users."
    )
    expires_at: AwareDatetime


@router.post(
    "/v1/referrers/{user_id}/portal-link",
    response_model=PortalLinkOut,
    status_code=status.HTTP_201_CREATED,
    tags=["referrers"],
    responses=PROBLEMS | {404: {}},
)
def create_portal_link(
    user_id: UserId,
    request: Request,
    svc: ServicesDep,
    body: Annotated[PortalLinkRequest | None, Body()] = None,
    _: ApiKey = Depends(auth.ingest),
) -> PortalLinkOut:
    """A signed, expiring link to the referrer's own page: their code and share link,
    referrals, earnings and progress to the next tier. Anyone holding the link can
    open the page until it expires: hand it only to the signed-in referrer."""
    settings = svc.settings
    max_ttl = settings.portal_link_ttl_seconds
    ttl = body.ttl_seconds if body is not None and body.ttl_seconds is not None else max_ttl
    claims = portal_views.link_claims(svc.store, svc.clock, user_id, ttl, max_ttl)
    token = tokens.sign_link(settings, claims)
    url = f"{mount_point(request)}/r/{quote(claims.code, safe='')}?token={token}"
    return PortalLinkOut(url=url, expires_at=datetime.fromtimestamp(claims.expires_at, UTC))


# `:path` takes any rest of the path (slashes too), so every URL under /r/ gets a page.
@router.get("/r/{code:path}", include_in_schema=False, response_class=HTMLResponse)
def portal_page(
    code: str, request: Request, svc: ServicesDep, token: str | None = None
) -> Response:
    claims = tokens.verify_link(svc.settings, token, svc.clock.now())
    try:
        view = portal_views.open_portal(
            svc.store,
            svc.clock,
            lambda program: svc.rules.current(svc.clock, program),
            code,
            claims,
        )
    except NotFound:
        return _refused(status.HTTP_404_NOT_FOUND)
    except InvalidLink:  # a failed authentication (this route runs in a worker thread)
        return ratelimits.count_failure(request) or _refused(status.HTTP_403_FORBIDDEN)
    program = svc.rules.view(view.stats.referrer.program_id).program
    share_url = program.share_url_template or svc.settings.share_url
    html = portal_pages.render_page(view, share_url, program.currency)
    return HTMLResponse(html, headers=PAGE_HEADERS)


def _refused(status_code: int) -> HTMLResponse:
    return HTMLResponse(portal_pages.render_refused(status_code), status_code, headers=PAGE_HEADERS)
