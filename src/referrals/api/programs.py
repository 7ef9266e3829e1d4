"""Programs and their rule versions (admin only)."""

from typing import Annotated

from fastapi import APIRouter, Depends, Query, status
from pydantic import AwareDatetime

from referrals.api import auth
from referrals.api.deps import PROBLEMS, PROGRAM_NOT_FOUND, InProgram, ServicesDep, default_program
from referrals.api.schemas.programs import (
    ProgramChange,
    ProgramCreate,
    ProgramList,
    ProgramOut,
    RulesSchedule,
    RuleVersionList,
    RuleVersionOut,
)
from referrals.api.schemas.simulations import ChecksReportOut, SimulationOut, SimulationRequest
from referrals.domain.model import ApiKey
from referrals.domain.simulation import Window
from referrals.services import programs, simulations

router = APIRouter(tags=["programs"], dependencies=[Depends(default_program)])


@router.post(
    "/v1/programs",
    response_model=ProgramOut,
    status_code=status.HTTP_201_CREATED,
    responses=PROBLEMS | {409: {"description": "program_exists"}},
)
def create_program(
    body: ProgramCreate, svc: ServicesDep, key: ApiKey = Depends(auth.admin)
) -> ProgramOut:
    """A new program, active, its rules in force at once (version 1)."""
    view = programs.create_program(
        svc.store, svc.clock, key.id, body.program(), body.rules.version()
    )
    return ProgramOut.of(view, svc.clock.now())


@router.get("/v1/programs", response_model=ProgramList, responses=PROBLEMS)
def list_programs(svc: ServicesDep, _: ApiKey = Depends(auth.admin)) -> ProgramList:
    now = svc.clock.now()
    return ProgramList(items=[ProgramOut.of(v, now) for v in programs.list_programs(svc.store)])


@router.get(
    "/v1/programs/{program_id}", response_model=ProgramOut, responses=PROBLEMS | PROGRAM_NOT_FOUND
)
def get_program(
    program_id: InProgram, svc: ServicesDep, _: ApiKey = Depends(auth.admin)
) -> ProgramOut:
    return ProgramOut.of(programs.get_program(svc.store, program_id), svc.clock.now())


@router.patch(
    "/v1/programs/{program_id}",
    response_model=ProgramOut,
    responses=PROBLEMS | PROGRAM_NOT_FOUND | {409: {"description": "program_archived"}},
)
def change_program(
    program_id: InProgram,
    body: ProgramChange,
    svc: ServicesDep,
    key: ApiKey = Depends(auth.admin),
) -> ProgramOut:
    """Rename it, pause it (new signups get 409 `program_paused`; what was earned is still
    paid), resume or archive it (for good), or change its share link, its tracked
    links' landing URL or its attribution settings. Every server sees a change within
    2 s."""
    sent = body.model_fields_set
    view = programs.update_program(
        svc.store,
        svc.clock,
        key.id,
        program_id,
        name=body.name,
        status=body.status,
        share_url_template=body.share_url_template,
        clear_share_url="share_url_template" in sent and body.share_url_template is None,
        landing_url=body.landing_url,
        clear_landing_url="landing_url" in sent and body.landing_url is None,
        attribution_window_days=body.attribution_window_days,
        attribution=body.attribution,
    )
    svc.rules.forget(program_id)
    return ProgramOut.of(view, svc.clock.now())


@router.post(
    "/v1/programs/{program_id}/rules",
    response_model=RuleVersionOut,
    status_code=status.HTTP_201_CREATED,
    responses=PROBLEMS | PROGRAM_NOT_FOUND,
)
def schedule_rules(
    program_id: InProgram,
    body: RulesSchedule,
    svc: ServicesDep,
    key: ApiKey = Depends(auth.admin),
) -> RuleVersionOut:
    """Schedule the program's next rule version. It prices the rewards earned from
    `effective_from` on; rewards earned before keep the price they were given."""
    version = programs.schedule_rules(
        svc.store, svc.clock, key.id, program_id, body.rules.version(), body.effective_from
    )
    svc.rules.forget(program_id)
    return RuleVersionOut.of(version)


@router.get(
    "/v1/programs/{program_id}/rules",
    response_model=RuleVersionList,
    responses=PROBLEMS | PROGRAM_NOT_FOUND,
)
def list_rules(
    program_id: InProgram, svc: ServicesDep, _: ApiKey = Depends(auth.admin)
) -> RuleVersionList:
    """Every version, oldest first."""
    view = programs.get_program(svc.store, program_id)
    return RuleVersionList(items=[RuleVersionOut.of(v) for v in view.versions])


@router.post(
    "/v1/programs/{program_id}/rules/simulate",
    response_model=SimulationOut,
    responses=PROBLEMS | PROGRAM_NOT_FOUND,
)
def simulate_rules(
    program_id: InProgram,
    body: SimulationRequest,
    svc: ServicesDep,
    _: ApiKey = Depends(auth.admin),
) -> SimulationOut:
    """What the rewards earned from `from` to `to` would have been under the proposed
    rules, beside what they were: totals and the referrers whose rewards change most.
    Read only. The program's referrals up to `to` are read (the caps price each reward
    against what its referrer earned before it); without `rules`, the versions that
    priced the window price it again, which reproduces what was earned. Referral rewards
    only: revenue shares of sales are not replayed."""
    window = Window.of(body.start, body.end)
    proposal = body.rules.version() if body.rules is not None else None
    result = simulations.simulate(svc.store, program_id, window, proposal, body.limit)
    return SimulationOut.of(program_id, result, backtest=proposal is None)


@router.get(
    "/v1/programs/{program_id}/checks/report",
    response_model=ChecksReportOut,
    responses=PROBLEMS | PROGRAM_NOT_FOUND,
)
def checks_report(
    program_id: InProgram,
    svc: ServicesDep,
    start: Annotated[AwareDatetime, Query(alias="from", description="RFC 3339, with a time zone")],
    end: Annotated[AwareDatetime, Query(alias="to", description="Excluded; at most 366 days on")],
    _: ApiKey = Depends(auth.admin),
) -> ChecksReportOut:
    """Per fraud check and mode, the rewards signed up in the window it flagged and
    passed, by the outcome of their reviews: its precision (flagged rewards rejected or
    reversed, of those decided) beside the same share among those it passed."""
    report = simulations.checks_report(svc.store, program_id, Window.of(start, end))
    return ChecksReportOut.of(program_id, report)
