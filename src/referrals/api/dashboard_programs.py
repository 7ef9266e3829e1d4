"""The dashboard's program pages: every program and its rule versions, a proposal's
simulation, and a program's funnel (server-rendered, signed in as the rest of the
dashboard: see api.dashboard_routes)."""

from collections.abc import Callable
from datetime import UTC
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from referrals.api.dashboard_kit import message, render, session_of, signed_in, to_login
from referrals.api.deps import ServicesDep
from referrals.bootstrap import Services
from referrals.domain.errors import DomainError
from referrals.domain.money import format_money
from referrals.services import programs
from referrals.services.programs import ProgramView
from referrals.web import funnel_page, program_pages

router = APIRouter(prefix="/dashboard", include_in_schema=False)


@router.get("/programs")
def programs_page(request: Request, svc: ServicesDep) -> Response:
    """Every program and its chain of rule versions: the one in force, those to come;
    each program's checks report, and a form to simulate other tiers."""
    session = session_of(request, svc)
    if session is None:
        return to_login(request)
    svc.rules.ensure_default()
    views, now = programs.list_programs(svc.store), svc.clock.now()
    kept = request.app.state.__dict__.setdefault("checks_reports", {})
    context = program_pages.programs_context(svc.store, views, now, kept)
    page = signed_in(svc, session, "programs", "Programs")
    return render(request, "programs", **page, **context, views=views, now=now, money=format_money)


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

    def page(view: ProgramView) -> tuple[int, dict[str, Any]]:
        form = program_pages.Proposal(tiers, monthly_cap, start, end)
        status, context = program_pages.simulation_context(svc.store, view, svc.clock.now(), form)
        return status, context | {"money": format_money}

    return _program_page(request, svc, program_id, "simulation", "Simulate", page)


@router.get("/programs/{program_id}/funnel")
def program_funnel_page(
    program_id: str,
    request: Request,
    svc: ServicesDep,
    start: Annotated[str, Query(alias="from")] = "",
    end: Annotated[str, Query(alias="to")] = "",
) -> Response:
    """A program's funnel over whole UTC days, the last one included (a GET form)."""

    def page(view: ProgramView) -> tuple[int, dict[str, Any]]:
        today = svc.clock.now().astimezone(UTC).date()
        form = funnel_page.FunnelForm.of(start, end, today)
        status, context = funnel_page.funnel_context(svc.store, program_id, form)
        return status, context | {"program": view.program}

    return _program_page(request, svc, program_id, "funnel", "Funnel", page)


def _program_page(
    request: Request,
    svc: Services,
    program_id: str,
    template: str,
    title: str,
    page: Callable[[ProgramView], tuple[int, dict[str, Any]]],
) -> Response:
    """A signed-in page of one program: 404 for a program that does not exist."""
    session = session_of(request, svc)
    if session is None:
        return to_login(request)
    try:
        view = programs.get_program(svc.store, program_id)
    except DomainError as error:
        return message(request, 404, "No such program", error.detail)
    status, context = page(view)
    frame = signed_in(svc, session, "programs", f"{title}: {view.program.name}")
    return render(request, template, status, **(frame | context))
