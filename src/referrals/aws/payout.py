"""One step of the monthly payout, looped by a Step Functions state machine.

The first step gets the EventBridge scheduled event (its `time` names the month
just ended); each step runs batches until the Lambda's time is nearly up, then
returns `{period, owner, done}`. The state machine calls again with the same
owner, which holds the run's lease, until `done`.

An earlier month's run that failed or crashed holds its rewards, and a later month
is not paid before it completes: the steps complete it first, then go on with the
month asked for. The hourly `{"retry": true}` event runs the oldest such run, if any
(`done` at once otherwise), then the month just ended: a failed month is retried
until it completes, and the month the monthly run could not pay behind it follows.
"""

from datetime import datetime
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from referrals.adapters.host import attempt_owner
from referrals.aws.observability import logger, metrics, tracer
from referrals.aws.runtime import services
from referrals.domain.errors import PayoutInProgress
from referrals.domain.model import RunStatus
from referrals.domain.periods import Period, last_ended_period
from referrals.services.payouts import run_payout
from referrals.services.schedule import first_owed, oldest_stopped

SAFETY_MARGIN_MS = 60_000  # report writing and completion run after the last batch


def step(event: dict[str, Any], remaining_ms: Any) -> dict[str, Any]:
    svc = services()
    owner = str(event.get("owner") or attempt_owner(svc.clock.now()))
    if "period" in event:
        period = Period.parse(str(event["period"]))
    elif event.get("retry"):
        stopped = oldest_stopped(svc.store, svc.clock.now())
        if stopped is None:
            return {"period": None, "owner": owner, "done": True, "status": "nothing to retry"}
        # Then on to the month just ended, which the monthly run could not pay before it.
        period = max(stopped, last_ended_period(svc.clock.now()))
    else:
        moment = datetime.fromisoformat(event["time"]) if "time" in event else svc.clock.now()
        period = last_ended_period(moment)
    target = first_owed(svc.store, period, owner, svc.clock.now())
    try:
        run = run_payout(
            svc.store,
            svc.reports,
            svc.clock,
            target,
            owner=owner,
            batch_size=svc.settings.payout_batch_size,
            minimum_cents=svc.rules.minimums(),
            keep_going=lambda: remaining_ms() > SAFETY_MARGIN_MS,
        )
    except PayoutInProgress:
        logger.warning("payout %s is running elsewhere", target)
        return {"period": str(period), "owner": owner, "done": True, "status": "elsewhere"}
    logger.info("payout step", extra={"period": run.period, "status": run.status})
    done = run.status is RunStatus.COMPLETED and target == period
    # An earlier month completed: the next step goes on with the month asked for.
    return {"period": str(period), "owner": owner, "done": done, "status": run.status.value}


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return step(event, context.get_remaining_time_in_millis)
