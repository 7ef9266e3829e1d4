"""Payout runs, their reports, and the notification outbox (admin only)."""

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import JSONResponse, Response

from referrals.api import auth
from referrals.api.deps import PROBLEMS, ServicesDep, metrics_of, mount_point
from referrals.api.schemas.payouts import (
    EventList,
    EventOut,
    PayoutPreviewOut,
    PayoutRequest,
    PayoutRunList,
    PayoutRunOut,
    PayoutStartedOut,
)
from referrals.bootstrap import Services
from referrals.domain.model import ApiKey, EventStatus, PayoutRun
from referrals.domain.periods import PERIOD_REGEX, Period, last_ended_period
from referrals.domain.reports import HEADER
from referrals.ports import PayoutStarter
from referrals.services import audit, outbox, payout_reports, payout_start, payouts

router = APIRouter(tags=["payouts"])
PeriodPath = Annotated[str, Path(pattern=f"^{PERIOD_REGEX}$")]
EventId = Annotated[str, Path(pattern=r"^[0-9A-Z]{26}$")]


STARTED = {
    "model": PayoutStartedOut,
    "description": "Where runs work off the request path (AWS: the payout state machine):"
    " the run is started, or was already under way; a completed period answers 200. A"
    " month before it whose run stopped is completed first, by the same execution",
    "headers": {
        "Location": {"description": "the run: /v1/payouts/{period}", "schema": {"type": "string"}}
    },
}


@router.post(
    "/v1/payouts",
    response_model=PayoutRunOut | PayoutPreviewOut,
    responses=PROBLEMS
    | {
        200: {
            "description": "The completed run (run to completion within the request, or"
            " completed before), or with `dry_run` the preview"
        },
        202: STARTED,
        409: {
            "description": "Only where the request runs the payout: payout_in_progress, or"
            " earlier_run_failed: an earlier month's run failed or stopped, and holds its"
            " rewards until it completes (run it first)"
        },
        503: {},
    },
)
def run_payout(
    body: PayoutRequest, svc: ServicesDep, request: Request, key: ApiKey = Depends(auth.admin)
) -> PayoutRunOut | PayoutPreviewOut | JSONResponse:
    """Run the payout for a period to completion (or preview it with `dry_run`: of a
    completed period, the preview says so in `status` and shows what the run paid).
    On AWS a run is started instead, and the answer is 202 with its URL; a dry run is
    answered at once everywhere (it reads, and is bounded)."""
    period = Period.parse(body.period) if body.period else last_ended_period(svc.clock.now())
    if body.dry_run:
        return PayoutPreviewOut.of(
            payouts.preview_payout(svc.store, svc.clock, period, svc.rules.minimums())
        )
    if svc.payout_starter is not None:
        return _start(svc, svc.payout_starter, period, request, key)
    run = metrics_of(request).payout(
        svc.clock,
        lambda: payouts.run_payout(
            svc.store,
            svc.reports,
            svc.clock,
            period,
            batch_size=svc.settings.payout_batch_size,
            minimum_cents=svc.rules.minimums(),
        ),
    )
    audit.record(svc.store, svc.clock, key.id, "payout.run", f"payout:{run.period}")
    return PayoutRunOut.of(run)


def _start(
    svc: Services, starter: PayoutStarter, period: Period, request: Request, key: ApiKey
) -> PayoutRunOut | JSONResponse:
    started = payout_start.start_payout(svc.store, svc.reports, svc.clock, starter, period)
    if isinstance(started, PayoutRun):
        return PayoutRunOut.of(started)
    audit.record(svc.store, svc.clock, key.id, "payout.start", f"payout:{started.period}")
    url = f"{mount_point(request)}/v1/payouts/{started.period}"
    body = PayoutStartedOut(
        period=started.period, status="started", url=url, execution_arn=started.execution
    )
    return JSONResponse(body.model_dump(mode="json"), status_code=202, headers={"Location": url})


@router.get("/v1/payouts", response_model=PayoutRunList, responses=PROBLEMS)
def list_payouts(svc: ServicesDep, _: ApiKey = Depends(auth.admin)) -> PayoutRunList:
    return PayoutRunList(items=[PayoutRunOut.of(r) for r in payouts.list_runs(svc.store)])


@router.get("/v1/payouts/{period}", response_model=PayoutRunOut, responses=PROBLEMS | {404: {}})
def get_payout(
    period: PeriodPath, svc: ServicesDep, _: ApiKey = Depends(auth.admin)
) -> PayoutRunOut:
    return PayoutRunOut.of(payouts.get_run(svc.store, Period.parse(period)))


REPORT = {
    "description": f"The CSV report, under the header {','.join(HEADER)}: a line per user"
    " and program, `amount_cents` in minor units of the line's `currency` (its program's)"
    " and `amount` with that currency's decimals (JPY none, USD 2, KWD 3)",
    "content": {"text/csv": {"schema": {"type": "string"}}},
    "headers": {
        "Content-Disposition": {
            "description": 'attachment; filename="payouts-YYYY-MM.csv"',
            "schema": {"type": "string"},
        }
    },
}


@router.get(
    "/v1/payouts/{period}/report",
    response_class=Response,
    responses=PROBLEMS | {200: REPORT, 404: {}},
)
def get_report(period: PeriodPath, svc: ServicesDep, _: ApiKey = Depends(auth.admin)) -> Response:
    data = payout_reports.get_report(svc.store, svc.reports, Period.parse(period))
    headers = {"Content-Disposition": f'attachment; filename="payouts-{period}.csv"'}
    return Response(data, media_type="text/csv; charset=utf-8", headers=headers)


@router.get("/v1/events", response_model=EventList, tags=["events"], responses=PROBLEMS)
def list_events(
    svc: ServicesDep,
    status: EventStatus | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    _: ApiKey = Depends(auth.admin),
) -> EventList:
    """Notification events, newest first; `status=dead` lists the dead letters."""
    return EventList(items=[EventOut.of(e) for e in outbox.list_events(svc.store, status, limit)])


@router.post(
    "/v1/events/{event_id}/retry",
    response_model=EventOut,
    tags=["events"],
    responses=PROBLEMS | {404: {}},
)
def retry_event(event_id: EventId, svc: ServicesDep, key: ApiKey = Depends(auth.admin)) -> EventOut:
    """Send a dead-lettered event again."""
    return EventOut.of(outbox.requeue(svc.store, svc.clock, event_id, actor=key.id))
