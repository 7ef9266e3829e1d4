"""A program's funnel over HTTP: clicks -> signups -> conversions -> revenue -> rewards."""

from datetime import UTC, date, timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Query

from referrals.api import auth
from referrals.api.deps import PROBLEMS, PROGRAM_NOT_FOUND, InProgram, ServicesDep, default_program
from referrals.api.schemas.funnel import FunnelOut
from referrals.domain.model import ApiKey
from referrals.services import funnel

router = APIRouter(tags=["programs"], dependencies=[Depends(default_program)])
DEFAULT_DAYS = 30


@router.get(
    "/v1/programs/{program_id}/funnel",
    response_model=FunnelOut,
    response_model_by_alias=True,
    responses=PROBLEMS | PROGRAM_NOT_FOUND,
)
def program_funnel(
    program_id: InProgram,
    svc: ServicesDep,
    start: Annotated[date | None, Query(alias="from", description="The first UTC day")] = None,
    end: Annotated[
        date | None, Query(alias="to", description="The day after the last; at most 366 on")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=funnel.MAX_REFERRERS)] = 50,
    _: ApiKey = Depends(auth.admin),
) -> FunnelOut:
    """Per UTC day and per referrer: clicks on tracked links, signups, conversions
    (purchases), revenue net of refunds and rewards, with the rates between them, the
    K-factor and the cost per acquired user. Default: the last 30 days, today included."""
    today = svc.clock.now().astimezone(UTC).date()
    last = end or today + timedelta(days=1)
    first = start or last - timedelta(days=DEFAULT_DAYS)
    result = funnel.program_funnel(svc.store, program_id, first, last, limit)
    return FunnelOut.of(program_id, result)
