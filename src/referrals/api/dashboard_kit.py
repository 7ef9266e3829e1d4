"""What every dashboard page shares: the session cookie, the security headers, rendering a
template around the signed-in frame, and reading a posted form safely (see
api.dashboard_routes for the security model). Not a router: the dashboard's routers
import it, never each other."""

from typing import Any
from urllib.parse import parse_qs

from fastapi import Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse

from referrals.api.deps import mount_point
from referrals.bootstrap import Services
from referrals.domain.money import format_dollars as dollars
from referrals.services import payouts
from referrals.services import sessions as records
from referrals.web import templates, tokens
from referrals.web.tokens import Session

COOKIE = "referrals_dashboard"
LOGIN = "/dashboard/login"
MAX_FORM_FIELDS = 10
HEADERS = {
    "Cache-Control": "no-store",
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'unsafe-inline'; form-action 'self';"
        " frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",  # see the templates: a post must carry its Origin
}
NAV = {
    "overview": "/dashboard",
    "payouts": "/dashboard/payouts",
    "reviews": "/dashboard/reviews",
    "notifications": "/dashboard/notifications",
    "programs": "/dashboard/programs",
}


class Refused(Exception):
    """A request the dashboard answers with a page of its own: a 4xx and a message."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def render(request: Request, template: str, status: int = 200, **context: Any) -> HTMLResponse:
    html = templates.get_template(f"dashboard/{template}.html").render(
        dollars=dollars, root=mount_point(request), **context
    )
    return HTMLResponse(html, status, headers=HEADERS)


def message(request: Request, status: int, title: str, error: str) -> HTMLResponse:
    return render(request, "message", status, page_title=title, error=error)


def redirect(request: Request, path: str) -> RedirectResponse:
    return RedirectResponse(mount_point(request) + path, 303, headers={"Cache-Control": "no-store"})


def session_of(request: Request, svc: Services) -> Session | None:
    """The request's live session, or None. Reads the store (not in the event loop)."""
    session = tokens.verify_session(svc.settings, request.cookies.get(COOKIE), svc.clock.now())
    if session is None:
        return None
    key = records.live_key(svc.store, svc.clock, session.key_id, session.id)
    return session if key is not None else None


def to_login(request: Request) -> RedirectResponse:
    return redirect(request, LOGIN)


def signed_in(
    svc: Services, session: Session, page: str, title: str, **context: Any
) -> dict[str, Any]:
    """What every signed-in page shows around its content, with a banner for each payout
    run that failed or whose report is not published (read from the store: not in the
    event loop)."""
    return {
        "page_title": title,
        "current": NAV[page],
        "key_id": session.key_id,
        "csrf": tokens.csrf_token(svc.settings, session),
        "notice": None,
        "error": None,
        "payout_alerts": payouts.alerts(svc.store),
        **context,
    }


def same_origin(request: Request) -> bool:
    """No Origin (an older browser, a same-origin GET), or one naming this host.

    The host is compared, not the scheme: behind a proxy that ends TLS, the app sees
    http for a page the browser loaded over https.
    """
    origin = request.headers.get("origin")
    if origin is None:
        return True
    host = request.headers.get("host", "")
    return bool(host) and origin.partition("://")[2] == host


async def read_form(request: Request) -> dict[str, str]:
    """The posted form's fields (the first value of each)."""
    if not same_origin(request):
        raise Refused(403, "This form was posted from another site.")
    kind = request.headers.get("content-type", "").partition(";")[0].strip().lower()
    if kind != "application/x-www-form-urlencoded":
        raise Refused(415, "Forms are posted as application/x-www-form-urlencoded.")
    try:
        body = (await request.body()).decode("utf-8")
        fields = parse_qs(body, keep_blank_values=True, max_num_fields=MAX_FORM_FIELDS)
    except (UnicodeDecodeError, ValueError):
        raise Refused(400, "The form could not be read.") from None
    return {name: values[0] for name, values in fields.items()}


async def authorized(request: Request, svc: Services) -> tuple[Session, dict[str, str]]:
    """The session and form of a POST that may change something, or Refused."""
    session = await run_in_threadpool(session_of, request, svc)
    if session is None:
        raise Refused(403, "Your session has expired or is not valid: sign in again.")
    form = await read_form(request)
    if not tokens.csrf_valid(svc.settings, session, form.get("csrf")):
        raise Refused(403, "This form is out of date or was not sent by the dashboard.")
    return session, form
