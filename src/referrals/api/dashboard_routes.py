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
from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, Response

from referrals.api import ratelimits
from referrals.api.dashboard_kit import (
    COOKIE,
    Refused,
    authorized,
    message,
    read_form,
    redirect,
    render,
    session_of,
    signed_in,
    to_login,
)
from referrals.api.deps import ServicesDep, mount_point
from referrals.api.problems import STATUS_BY_CODE
from referrals.bootstrap import Services
from referrals.domain.errors import DomainError
from referrals.domain.model import DEFAULT_PROGRAM, EventStatus, ReferralStatus, Role
from referrals.domain.money import format_amounts, format_money
from referrals.domain.periods import PERIOD_REGEX, Period
from referrals.services import (
    audit,
    dashboard_overview,
    outbox,
    payout_reports,
    payouts,
    programs,
    reviews,
    sales,
)
from referrals.services import sessions as records
from referrals.services.keys import authenticate, record_use
from referrals.web import tokens
from referrals.web.charts import bar_chart
from referrals.web.tokens import Session

router = APIRouter(prefix="/dashboard", include_in_schema=False)


# An overview reads the last 30 days of referrals: a few seconds of reuse keeps a
# dashboard left open (or many) from reading them on every refresh.
OVERVIEW_TTL_S = 5.0

ULID = re.compile(r"^[0-9A-Z]{26}$")

PERIOD = re.compile(f"^{PERIOD_REGEX}$")

CONTROL = re.compile(r"[\x00-\x1f\x7f]")

# Messages after a redirect are chosen by a fixed word: the page never echoes the URL.
NOTICES = {
    "approved": "Approved: the next payout run pays it (once its hold is over).",
    "rejected": "Rejected: it will never be paid.",
    "retried": "Queued for delivery again.",
    "share_approved": "Approved: the share is payable again.",
    "share_rejected": "Rejected: the share will never be paid.",
}

STATE_LABELS = {
    ReferralStatus.AWAITING.value: "Awaiting a conversion",
    ReferralStatus.PENDING.value: "Pending: the next run pays it (or its hold ends first)",
    ReferralStatus.HELD.value: "Held for review",
    ReferralStatus.PROCESSING.value: "Being paid by a run",
}


# Sign-in


@router.get("/login")
def login_page(request: Request, svc: ServicesDep) -> Response:
    if session_of(request, svc) is not None:
        return redirect(request, "/dashboard")
    return render(request, "login", error=None)


@router.post("/login")
async def login(request: Request, svc: ServicesDep) -> Response:
    try:
        form = await read_form(request)
    except Refused as refused:
        return render(request, "login", refused.status, error=refused.message)
    now = svc.clock.now()
    key = await run_in_threadpool(authenticate, svc.store, form.get("key", "").strip(), now)
    if key is None:
        if (too_many := await run_in_threadpool(ratelimits.count_failure, request)) is not None:
            return too_many
        return render(request, "login", 401, error="This key is not valid.")
    if key.role is not Role.ADMIN:
        return render(request, "login", 403, error=f"An {key.role} key cannot open the dashboard.")
    session = tokens.issue_session(svc.settings, key.id, now, until=key.expires_at)

    def start() -> None:
        records.start(svc.store, svc.clock, key, session.id, session.expires_at)
        record_use(svc.store, svc.clock, key)

    await run_in_threadpool(start)
    response = redirect(request, "/dashboard")
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
    if await run_in_threadpool(session_of, request, svc) is not None:
        try:  # a live session ends only by its own form
            session, _ = await authorized(request, svc)
        except Refused as refused:
            return message(request, refused.status, "Not signed out", refused.message)
        # On the server: a copy of the cookie is refused from now on, on every server.
        await run_in_threadpool(records.end, svc.store, svc.clock, session.key_id, session.id)
    response = to_login(request)
    response.delete_cookie(
        COOKIE,
        path=mount_point(request) + "/dashboard",
        secure=request.url.scheme == "https",
        httponly=True,
        samesite="strict",
    )
    return response


# Overview


def _overview(request: Request, svc: Services, program: str | None) -> dashboard_overview.Overview:
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
    session = session_of(request, svc)
    if session is None:
        return to_login(request)
    svc.rules.ensure_default()
    choices = [view.program.id for view in programs.list_programs(svc.store)]
    if program and program not in choices:
        return message(request, 404, "No such program", f"There is no program {program!r}.")
    data = _overview(request, svc, program or None)
    signups = bar_chart(
        [(day.isoformat(), count) for day, count in data.days],
        label_every=7,
        shorten=lambda iso: iso[5:],
    )
    tiers = bar_chart(
        [(format_money(row.reward_cents, row.currency), row.count) for row in data.tiers],
        width=400,
    )
    return render(
        request,
        "overview",
        **signed_in(svc, session, "overview", "Overview"),
        overview=data,
        programs=choices,
        window_days=dashboard_overview.WINDOW_DAYS,
        signups_chart=signups,
        tier_chart=tiers,
        state_labels=STATE_LABELS,
        money=format_money,
        amounts=format_amounts,
    )


# Payout runs


@router.get("/payouts")
def payouts_page(request: Request, svc: ServicesDep) -> Response:
    session = session_of(request, svc)
    if session is None:
        return to_login(request)
    runs = payouts.list_runs(svc.store)
    return render(
        request,
        "payouts",
        **signed_in(svc, session, "payouts", "Payout runs"),
        runs=runs,
        money=format_money,
    )


@router.get("/payouts/{period}/report")
def report(period: str, request: Request, svc: ServicesDep) -> Response:
    session = session_of(request, svc)
    if session is None:
        return to_login(request)
    if not PERIOD.match(period):
        return message(request, 404, "No such report", "A period is written YYYY-MM.")
    try:
        data = payout_reports.get_report(svc.store, svc.reports, Period.parse(period))
    except DomainError as error:
        return message(request, STATUS_BY_CODE.get(error.code, 400), "No such report", error.detail)
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
    shares_cursor: str | None = None,
    **context: Any,
) -> HTMLResponse:
    try:
        page = reviews.review_queue(svc.store, 50, cursor)
        shares = sales.held_shares(svc.store, 50, shares_cursor)
    except DomainError as error:  # a cursor that is not one of ours
        page = reviews.review_queue(svc.store, 50, None)
        shares = sales.held_shares(svc.store, 50, None)
        context["error"], status = error.detail, 400
    recent = audit.audit_log(svc.store, 20, None).items
    frame = signed_in(svc, session, "reviews", "Review queue")

    def money_in(cents: int, program_id: str) -> str:  # each program's in its currency
        return format_money(cents, svc.rules.currency(program_id))

    return render(
        request,
        "reviews",
        status,
        **(frame | context),
        held=page.items,
        next_cursor=page.next_cursor,
        shares=shares.items,
        shares_next_cursor=shares.next_cursor,
        money_in=money_in,
        audit=recent,
    )


@router.get("/reviews")
def reviews_page(
    request: Request,
    svc: ServicesDep,
    cursor: str | None = None,
    shares_cursor: str | None = None,
    done: str | None = None,
) -> Response:
    session = session_of(request, svc)
    if session is None:
        return to_login(request)
    notice = NOTICES.get(done or "")
    return _reviews(request, svc, session, cursor, shares_cursor=shares_cursor, notice=notice)


# What a review decision, posted, says when it is done: the queue's notice (NOTICES).
DONE = {"approve": "approved", "reject": "rejected"}
# A decision, run once the form is checked: (the signed-in key's id, the reason, the form).
Decide = Callable[[str, str, dict[str, str]], object]


async def _decided(
    request: Request,
    svc: Services,
    decision: str,
    decide: Decide | None,
    missing: str,
    notice: str = "",
) -> Response:
    """A review queue's form, posted: the session and its CSRF token are checked, then
    that `decision` is one and what it is on exists (`decide` is None if not: 404
    `missing`), then the reason. A refusal shows the queue again with why; a decision
    redirects to the queue with its notice (`notice` + approved or rejected)."""
    try:
        session, form = await authorized(request, svc)
    except Refused as refused:
        return message(request, refused.status, "Not done", refused.message)
    reason = form.get("reason", "").strip()
    try:
        if decide is None or decision not in DONE:
            raise Refused(404, missing)
        if CONTROL.search(reason):
            raise Refused(400, "A reason cannot contain control characters.")
        await run_in_threadpool(decide, session.key_id, reason, form)
    except Refused as refused:
        return await run_in_threadpool(
            _reviews, request, svc, session, None, refused.status, error=refused.message
        )
    except DomainError as error:  # not held any more, nothing of that id, a bad reason
        status = STATUS_BY_CODE.get(error.code, 400)
        return await run_in_threadpool(
            _reviews, request, svc, session, None, status, error=f"Not done: {error.detail}."
        )
    return redirect(request, f"/dashboard/reviews?done={notice}{DONE[decision]}")


# Before the referrals' route below, whose path would take "shares" for a referral id.
# The sale's id is a form field: a billing system's ids may hold a "/".
@router.post("/reviews/shares/{decision}")
async def review_share(decision: str, request: Request, svc: ServicesDep) -> Response:
    def decide(key_id: str, reason: str, form: dict[str, str]) -> None:
        sale_id, approve = form.get("sale_id", ""), decision == "approve"
        sales.review_share(svc.store, svc.clock, key_id, sale_id, approve, reason)

    return await _decided(
        request, svc, decision, decide, "There is no such decision.", notice="share_"
    )


@router.post("/reviews/{referral_id}/{decision}")
async def review(referral_id: str, decision: str, request: Request, svc: ServicesDep) -> Response:
    def decide(key_id: str, reason: str, _: dict[str, str]) -> None:
        if decision == "approve":  # the reason is optional
            reviews.approve(svc.store, svc.clock, key_id, referral_id, reason or None)
        else:
            reviews.reject(svc.store, svc.clock, key_id, referral_id, reason)

    missing = "There is no such decision or referral."
    return await _decided(
        request, svc, decision, decide if ULID.match(referral_id) else None, missing
    )


# Notifications


def _notifications(
    request: Request, svc: Services, session: Session, status: int = 200, **context: Any
) -> HTMLResponse:
    return render(
        request,
        "notifications",
        status,
        **(signed_in(svc, session, "notifications", "Notifications") | context),
        dead=outbox.list_events(svc.store, EventStatus.DEAD, 50),
        recent=outbox.list_events(svc.store, None, 50),
    )


@router.get("/notifications")
def notifications_page(request: Request, svc: ServicesDep, done: str | None = None) -> Response:
    session = session_of(request, svc)
    if session is None:
        return to_login(request)
    return _notifications(request, svc, session, notice=NOTICES.get(done or ""))


@router.post("/notifications/{event_id}/retry")
async def retry(event_id: str, request: Request, svc: ServicesDep) -> Response:
    try:
        session, _ = await authorized(request, svc)
    except Refused as refused:
        return message(request, refused.status, "Not done", refused.message)

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
    return redirect(request, "/dashboard/notifications?done=retried")
