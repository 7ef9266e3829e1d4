"""Outbox delivery: new outbox items (DynamoDB stream) and a periodic sweep both dispatch.

The stream only says "there is something to deliver"; delivery itself claims
due events conditionally, so concurrent invocations never deliver one event
twice at once, and failed deliveries are retried by the sweep with backoff.
The sweep (every minute) also prunes the delivered events past their retention,
one bounded batch a time: the stream's invocations stay about delivery.
"""

from datetime import timedelta
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from referrals.aws.observability import MeasuredNotifier, logger, metrics, tracer
from referrals.aws.runtime import services
from referrals.services.outbox import dispatch, prune


def deliver_due() -> dict[str, int]:
    svc = services()
    notifier = MeasuredNotifier(svc.notifier, svc.rules.currency)
    delivered = failed = dead = 0
    while True:
        result = dispatch(svc.store, notifier, svc.clock, svc.retry_policy)
        delivered += result.delivered
        failed += result.failed
        dead += result.dead
        if result.delivered + result.failed == 0:
            return {"delivered": delivered, "failed": failed, "dead": dead}


def prune_delivered() -> int:
    svc = services()
    retention = timedelta(days=svc.settings.outbox_retention_days)
    return prune(svc.store, svc.clock, retention, batches=1)


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, int]:
    inserts = sum(r.get("eventName") == "INSERT" for r in event.get("Records", []))
    result = deliver_due()
    if "Records" not in event:  # the scheduled sweep
        result["pruned"] = prune_delivered()
    logger.info("outbox dispatch", extra={"inserts": inserts, **result})
    return result
