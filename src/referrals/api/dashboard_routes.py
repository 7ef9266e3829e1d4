"""The admin dashboard: server-rendered pages under /dashboard, signed in with an admin key.

Security, in the order a request meets it:

- Sign-in takes an admin API key in a form, checks it like the API does (by hash)
  and sets a session cookie: HttpOnly, SameSite=Strict, Path=/dashboard, Secure
  over https, holding a signed, expiring token with the key's id, never the key.
  The signing key comes from `secret_key` (see `web.tokens`); without one, from
  the secret the service keeps in its database (`services.kept_secret`).
- A sign-in with a bad key counts as a failed authentication of the client's
  address (`api.ratelimits`): past the limit, 429 until its window ends.
- Every page reads the session's record and its key (`services.sessions`): signing
  out, revoking the key or its expiry ends the session for every copy of the cookie.
- Every POST carries a CSRF token, a signature of the session's id, checked in
  constant time, and a POST whose `Origin` names another host is refused; a
  refused POST writes nothing.
- Pages are Jinja2 templates with autoescaping; responses forbid framing and
  scripts (CSP), so even a template bug could not run injected script.
- Review decisions and retries are made as the signed-in key: the audit log
  names it.

Bad input is a 4xx page, never a 500.
"""

import re
import time
from typing import Annotated, Any
from urllib.parse import parse_qs

from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from referrals.api import ratelimits
from referrals.api.deps import ServicesDep, mount_point
from referrals.api.problems import STATUS_BY_CODE
from referrals.bootstrap import Services
from referrals.domain.errors import DomainError
from referrals.domain.model import DEFAULT_PROGRAM, EventStatus, ReferralStatus, Role
from referrals.domain.money import format_cents
from referrals.domain.money import format_dollars as dollars
from referrals.domain.periods import PERIOD_REGEX, Period
from referrals.services import audit, dashboard_overview, outbox, payouts, programs, reviews
from referrals.services import sessions as records
from referrals.services.keys import authenticate, record_use
from referrals.web import program_pages, templates, tokens
from referrals.web.charts import bar_chart
from referrals.web.tokens import Session

router = APIRouter(prefix="/dashboard", include_in_schema=False)

COOKIE = "referrals_dashboard"
LOGIN = "/dashboard/login"
# An overview reads the last 30 days of referrals: a few seconds of reuse keeps a
# dashboard left open (or many) from reading them on every refresh.
OVERVIEW_TTL_S = 5.0
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
ULID = re.compile(r"^[0-9A-Z]{26}$")
PERIOD = re.compile(f"^{PERIOD_REGEX}$")
CONTROL = re.compile(r"[\x00-\x1f\x7f]")
NAV = {
    "overview": "/dashboard",
    "payouts": "/dashboard/payouts",
    "reviews": "/dashboard/reviews",
    "notifications": "/dashboard/notifications",
    "programs": "/dashboard/programs",
}
# Messages after a redirect are chosen by a fixed word: the page never echoes the URL.
NOTICES = {
    "approved": "Approved: the next payout run pays it (once its hold is over).",
    "rejected": "Rejected: it will never be paid.",
    "retried": "Queued for delivery again.",
}
STATE_LABELS = {
    ReferralStatus.AWAITING.value: "Awaiting a conversion",
    ReferralStatus.PENDING.value: "Pending: the next run pays it (or its hold ends first)",
    ReferralStatus.HELD.value: "Held for review",
    ReferralStatus.PROCESSING.value: "Being paid by a run",
}


class Refused(Exception):
    """A request the dashboard answers with a page of its own: a 4xx and a message."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def _render(request: Request, template: str, status: int = 200, **context: Any) -> HTMLResponse:
    html = templates.get_template(f"dashboard/{template}.html").render(
        dollars=dollars, root=mount_point(request), **context
    )
    return HTMLResponse(html, status, headers=HEADERS)


def _message(request: Request, status: int, title: str, error: str) -> HTMLResponse:
    return _render(request, "message", status, page_title=title, error=error)


def _redirect(request: Request, path: str) -> RedirectResponse:
    return RedirectResponse(mount_point(request) + path, 303, headers={"Cache-Control": "no-store"})


def _session(request: Request, svc: Services) -> Session | None:
    """The request's live session, or None. Reads the store (not in the event loop)."""
    session = tokens.verify_session(svc.settings, request.cookies.get(COOKIE), svc.clock.now())
    if session is None:
        return None
    key = records.live_key(svc.store, svc.clock, session.key_id, session.id)
    return session if key is not None else None


def _to_login(request: Request) -> RedirectResponse:
    return _redirect(request, LOGIN)


def _signed_in(
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


def _same_origin(request: Request) -> bool:
    """No Origin (an older browser, a same-origin GET), or one naming this host.

    The host is compared, not the scheme: behind a proxy that ends TLS, the app sees
    http for a page the browser loaded over https.
    """
    origin = request.headers.get("origin")
    if origin is None:
        return True
    host = request.headers.get("host", "")
    return bool(host) and origin.partition("://")[2] == host


async def _form(request: Request) -> dict[str, str]:
    """The posted form's fields (the first value of each)."""
    if not _same_origin(request):
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


async def _authorized(request: Request, svc: Services) -> tuple[Session, dict[str, str]]:
    """The session and form of a POST that may change something, or Refused."""
    session = await run_in_threadpool(_session, request, svc)
    if session is None:
        raise Refused(403, "Your session has expired or is not valid: sign in again.")
    form = await _form(request)
    if not tokens.csrf_valid(svc.settings, session, form.get("csrf")):
        raise Refused(403, "This form is out of date or was not sent by the dashboard.")
    return session, form


# Sign-in


@router.get("/login")
def login_page(request: Request, svc: ServicesDep) -> Response:
    if _session(request, svc) is not None:
        return _redirect(request, "/dashboard")
    return _render(request, "login", error=None)


@router.post("/login")
async def login(request: Request, svc: ServicesDep) -> Response:
    try:
        form = await _form(request)
    except Refused as refused:
        return _render(request, "login", refused.status, error=refused.message)
    now = svc.clock.now()
    key = await run_in_threadpool(authenticate, svc.store, form.get("key", "").strip(), now)
    if key is None:
        if (too_many := await run_in_threadpool(ratelimits.count_failure, request)) is not None:
            return too_many
        return _render(request, "login", 401, error="This key is not valid.")
    if key.role is not Role.ADMIN:
        return _render(request, "login", 403, error=f"An {key.role} key cannot open the dashboard.")
    session = tokens.issue_session(svc.settings, key.id, now, until=key.expires_at)

    def start() -> None:
        records.start(svc.store, svc.clock, key, session.id, session.expires_at)
        record_use(svc.store, svc.clock, key)

    await run_in_threadpool(start)
    response = _redirect(request, "/dashboard")
    response.set_cookie(
        COOKIE,
        session.token,
        # Whole seconds, as the token's expiry: no longer than the key lives.
        max_age=max(0, int(session.expires_at.timestamp()) - int(now.timestamp())),
        path=mount_point(request) + "/dashboard",
        secure=request.url.scheme == "https",
        httponly=True,
        samesite="strict",
    )
    return response


@router.post("/logout")
async def logout(request: Request, svc: ServicesDep) -> Response:
    if await run_in_threadpool(_session, request, svc) is not None:
        try:  # a live session ends only by its own form
            session, _ = await _authorized(request, svc)
        except Refused as refused:
            return _message(request, refused.status, "Not signed out", refused.message)
        # On the server: a copy of the cookie is refused from now on, on every server.
        await run_in_threadpool(records.end, svc.store, svc.clock, session.key_id, session.id)
    response = _to_login(request)
    response.delete_cookie(
        COOKIE,
        path=mount_point(request) + "/dashboard",
        secure=request.url.scheme == "https",
        httponly=True,
        samesite="strict",
    )
    return response


# Overview


def _overview(
    request: Request, svc: Services, program: str | None
) -> dashboard_overview.Overview:
    kept: dict[str | None, tuple[float, dashboard_overview.Overview]] = (
        getattr(request.app.state, "dashboard_overview", None) or {}
    )
    cached = kept.get(program)
    if cached is not None and time.monotonic() - cached[0] < OVERVIEW_TTL_S:
        return cached[1]
    # A program's own tiers name its rewards; every program's, the default's (and a
    # program whose first rules are still to come has none: the default's, too).
    try:
        tiers = svc.rules.current(svc.clock, program or DEFAULT_PROGRAM).tiers
    except DomainError:
        tiers = svc.rules.current(svc.clock).tiers
    fresh = dashboard_overview.overview(svc.store, svc.clock, tiers, program)
    request.app.state.dashboard_overview = kept | {program: (time.monotonic(), fresh)}
    return fresh


@router.get("")
def overview_page(request: Request, svc: ServicesDep, program: str = "") -> Response:
    """Every program's figures, or with `?program=` one program's."""
    session = _session(request, svc)
    if session is None:
        return _to_login(request)
    svc.rules.ensure_default()
    choices = [view.program.id for view in programs.list_programs(svc.store)]
    if program and program not in choices:
        return _message(request, 404, "No such program", f"There is no program {program!r}.")
    data = _overview(request, svc, program or None)
    signups = bar_chart(
        [(day.isoformat(), count) for day, count in data.days],
        label_every=7,
        shorten=lambda iso: iso[5:],
    )
    tiers = bar_chart([(dollars(row.reward_cents), row.count) for row in data.tiers], width=400)
    return _render(
        request,
        "overview",
        **_signed_in(svc, session, "overview", "Overview"),
        overview=data,
        programs=choices,
        window_days=dashboard_overview.WINDOW_DAYS,
        signups_chart=signups,
        tier_chart=tiers,
        state_labels=STATE_LABELS,
    )


# Payout runs


@router.get("/payouts")
def payouts_page(request: Request, svc: ServicesDep) -> Response:
    session = _session(request, svc)
    if session is None:
        return _to_login(request)
    runs = payouts.list_runs(svc.store)
    return _render(
        request, "payouts", **_signed_in(svc, session, "payouts", "Payout runs"), runs=runs
    )


@router.get("/payouts/{period}/report")
def report(period: str, request: Request, svc: ServicesDep) -> Response:
    session = _session(request, svc)
    if session is None:
        return _to_login(request)
    if not PERIOD.match(period):
        return _message(request, 404, "No such report", "A period is written YYYY-MM.")
    try:
        data = payouts.get_report(svc.store, svc.reports, Period.parse(period))
    except DomainError as error:
        return _message(
            request, STATUS_BY_CODE.get(error.code, 400), "No such report", error.detail
        )
    headers = {
        "Content-Disposition": f'attachment; filename="payouts-{period}.csv"',
        "Cache-Control": "no-store",
        "X-Content-Type-Options": "nosniff",
    }
    return Response(data, media_type="text/csv; charset=utf-8", headers=headers)


# Review queue


def _reviews(
    request: Request,
    svc: Services,
    session: Session,
    cursor: str | None = None,
    status: int = 200,
    **context: Any,
) -> HTMLResponse:
    try:
        page = reviews.review_queue(svc.store, 50, cursor)
    except DomainError as error:  # a cursor that is not one of ours
        page = reviews.review_queue(svc.store, 50, None)
        context["error"], status = error.detail, 400
    recent = audit.audit_log(svc.store, 20, None).items
    signed_in = _signed_in(svc, session, "reviews", "Review queue")
    return _render(
        request,
        "reviews",
        status,
        **(signed_in | context),
        held=page.items,
        next_cursor=page.next_cursor,
        audit=recent,
    )


@router.get("/reviews")
def reviews_page(
    request: Request, svc: ServicesDep, cursor: str | None = None, done: str | None = None
) -> Response:
    session = _session(request, svc)
    if session is None:
        return _to_login(request)
    return _reviews(request, svc, session, cursor, notice=NOTICES.get(done or ""))


@router.post("/reviews/{referral_id}/{decision}")
async def review(referral_id: str, decision: str, request: Request, svc: ServicesDep) -> Response:
    try:
        session, form = await _authorized(request, svc)
    except Refused as refused:
        return _message(request, refused.status, "Not done", refused.message)
    reason = form.get("reason", "").strip() or None
    try:
        if decision not in ("approve", "reject") or not ULID.match(referral_id):
            raise Refused(404, "There is no such decision or referral.")
        if reason is not None and CONTROL.search(reason):
            raise Refused(400, "A reason cannot contain control characters.")
        if decision == "approve":
            await run_in_threadpool(
                reviews.approve, svc.store, svc.clock, session.key_id, referral_id, reason
            )
        else:
            await run_in_threadpool(
                reviews.reject, svc.store, svc.clock, session.key_id, referral_id, reason or ""
            )
    except Refused as refused:
        return await run_in_threadpool(
            _reviews, request, svc, session, None, refused.status, error=refused.message
        )
    except DomainError as error:  # not held any more, no such referral, a bad reason
        status = STATUS_BY_CODE.get(error.code, 400)
        return await run_in_threadpool(
            _reviews, request, svc, session, None, status, error=f"Not done: {error.detail}."
        )
    done = "approved" if decision == "approve" else "rejected"
    return _redirect(request, f"/dashboard/reviews?done={done}")


# Notifications


def _notifications(
    request: Request, svc: Services, session: Session, status: int = 200, **context: Any
) -> HTMLResponse:
    return _render(
        request,
        "notifications",
        status,
        **(_signed_in(svc, session, "notifications", "Notifications") | context),
        dead=outbox.list_events(svc.store, EventStatus.DEAD, 50),
        recent=outbox.list_events(svc.store, None, 50),
    )


@router.get("/notifications")
def notifications_page(request: Request, svc: ServicesDep, done: str | None = None) -> Response:
    session = _session(request, svc)
    if session is None:
        return _to_login(request)
    return _notifications(request, svc, session, notice=NOTICES.get(done or ""))


@router.post("/notifications/{event_id}/retry")
async def retry(event_id: str, request: Request, svc: ServicesDep) -> Response:
    try:
        session, _ = await _authorized(request, svc)
    except Refused as refused:
        return _message(request, refused.status, "Not done", refused.message)

    def requeue() -> None:
        # As the API does: send it again, and log who did in the same transaction.
        outbox.requeue(svc.store, svc.clock, event_id, actor=session.key_id)

    try:
        if not ULID.match(event_id):
            raise Refused(404, "There is no such event.")
        await run_in_threadpool(requeue)
    except Refused as refused:
        return await run_in_threadpool(
            _notifications, request, svc, session, refused.status, error=refused.message
        )
    except DomainError as error:  # not dead (delivered, or retried already)
        status = STATUS_BY_CODE.get(error.code, 400)
        return await run_in_threadpool(
            _notifications, request, svc, session, status, error=f"Not done: {error.detail}."
        )
    return _redirect(request, "/dashboard/notifications?done=retried")


# Programs


@router.get("/programs")
def programs_page(request: Request, svc: ServicesDep) -> Response:
    """Every program and its chain of rule versions: the one in force, those to come;
    each program's checks report, and a form to simulate other tiers."""
    session = _session(request, svc)
    if session is None:
        return _to_login(request)
    svc.rules.ensure_default()
    views, now = programs.list_programs(svc.store), svc.clock.now()
    kept = request.app.state.__dict__.setdefault("checks_reports", {})
    context = program_pages.programs_context(svc.store, views, now, kept)
    page = _signed_in(svc, session, "programs", "Programs")
    return _render(request, "programs", **page, **context, views=views, now=now, cents=format_cents)


@router.get("/programs/{program_id}/simulate")
def simulation_page(
    program_id: str,
    request: Request,
    svc: ServicesDep,
    tiers: str = "",
    monthly_cap: str = "",
    start: Annotated[str, Query(alias="from")] = "",
    end: Annotated[str, Query(alias="to")] = "",
) -> Response:
    """A proposal's before/after: read only, so a GET form (it can be bookmarked)."""
    session = _session(request, svc)
    if session is None:
        return _to_login(request)
    try:
        view = programs.get_program(svc.store, program_id)
    except DomainError as error:
        return _message(request, 404, "No such program", error.detail)
    form = program_pages.Proposal(tiers, monthly_cap, start, end)
    status, context = program_pages.simulation_context(svc.store, view, svc.clock.now(), form)
    page = _signed_in(svc, session, "programs", f"Simulate: {view.program.name}")
    return _render(request, "simulation", status, **(page | context), cents=format_cents)
