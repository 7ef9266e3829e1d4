import csv
import io
from datetime import UTC, datetime
from typing import Any

import pytest

from referrals.adapters.clock import SystemClock
from referrals.aws.payout import SAFETY_MARGIN_MS, handler
from referrals.domain.errors import PayoutFailed
from referrals.domain.model import ReferralStatus, RunStatus
from referrals.domain.periods import last_ended_period
from referrals.domain.program import RuleVersion
from referrals.services.referrers import enroll
from referrals.services.signups import sign_up
from tests.aws.conftest import BUCKET, REGION, Aws, LambdaContext, scheduled_event

OCTOBER = datetime(2026, 10, 12, tzinfo=UTC)
NOVEMBER = datetime(2026, 11, 12, tzinfo=UTC)


def seed(aws: Aws, referrers: int, each: int) -> None:
    clock = SystemClock()
    for r in range(referrers):
        code = enroll(aws.store, clock, f"ref{r}").referrer.code
        for n in range(each):
            sign_up(aws.store, clock, RuleVersion(), f"ref{r}-u{n}", code, signed_up_at=OCTOBER)


class ShrinkingBudget(LambdaContext):
    """A Lambda that runs out of time after `batches` checks, so the run must continue."""

    def __init__(self, batches: int) -> None:
        super().__init__()
        self.left = batches

    def get_remaining_time_in_millis(self) -> int:
        self.left -= 1
        return SAFETY_MARGIN_MS + 1 if self.left > 0 else 1000


def test_scheduled_event_pays_the_month_just_ended(aws: Aws) -> None:
    seed(aws, referrers=2, each=3)
    out = handler(scheduled_event("2026-11-01T00:00:00Z"), LambdaContext())
    assert out["period"] == "2026-10" and out["done"] is True
    with aws.store.read() as uow:
        run = uow.payouts.get("2026-10")
    assert run is not None and run.status is RunStatus.COMPLETED and run.referral_count == 6
    report = aws.s3.get_object(Bucket=BUCKET, Key="payouts/2026-10/report.csv")["Body"].read()
    rows = list(csv.DictReader(io.StringIO(report.decode())))
    assert [r["referrer_id"] for r in rows] == ["ref0", "ref1"]
    assert sum(int(r["amount_cents"]) for r in rows) == run.total_cents == 6000


def test_a_small_time_budget_continues_over_several_invocations(aws: Aws, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("REFERRALS_PAYOUT_BATCH_SIZE", "4")
    seed(aws, referrers=3, each=5)
    state = handler(scheduled_event("2026-11-01T00:00:00Z"), ShrinkingBudget(batches=1))
    steps = 1
    while not state["done"]:  # what the state machine's Choice state does
        state = handler({"period": state["period"], "owner": state["owner"]}, ShrinkingBudget(1))
        steps += 1
        assert steps < 20
    assert steps >= 3
    with aws.store.read() as uow:
        paid = uow.referrals.search(ReferralStatus.PAID, None, None, 100)
        run = uow.payouts.get("2026-10")
    assert len(paid) == 15 and run is not None and run.referral_count == 15


def test_a_run_elsewhere_ends_the_loop(aws: Aws) -> None:
    now = SystemClock().now()
    with aws.store.unit_of_work() as uow:
        uow.payouts.claim(
            "2026-10", datetime(2026, 11, 1, tzinfo=UTC), "other", now, now.replace(year=2030)
        )
        uow.commit()
    out = handler(scheduled_event("2026-11-01T00:00:00Z"), LambdaContext())
    assert out["done"] is True and out["status"] == "elsewhere"


def fail_october(aws: Aws) -> None:
    """October's run at 00:00 on November 1st, with the report bucket gone."""
    aws.s3.delete_bucket(Bucket=BUCKET)
    with pytest.raises(PayoutFailed):
        handler(scheduled_event("2026-11-01T00:00:00Z"), LambdaContext())
    aws.s3.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION})
    with aws.store.read() as uow:
        run = uow.payouts.get("2026-10")
    assert run is not None and run.status is RunStatus.FAILED


def loop(state: dict[str, Any]) -> list[dict[str, Any]]:
    """What the state machine does: call again with the period and owner until done."""
    states = [state]
    while not states[-1]["done"]:
        previous = states[-1]
        states.append(
            handler({"period": previous["period"], "owner": previous["owner"]}, LambdaContext())
        )
        assert len(states) < 10
    return states


def test_the_next_schedule_completes_a_failed_month_first(aws: Aws) -> None:
    seed(aws, referrers=2, each=3)
    fail_october(aws)
    code = enroll(aws.store, SystemClock(), "late").referrer.code
    sign_up(aws.store, SystemClock(), RuleVersion(), "nov-u", code, signed_up_at=NOVEMBER)

    first = handler(scheduled_event("2026-12-01T00:00:00Z"), LambdaContext())
    # October completed in this step; the state machine goes on with November.
    assert (first["period"], first["done"], first["status"]) == ("2026-11", False, "completed")
    loop(first)
    with aws.store.read() as uow:
        october, november = uow.payouts.get("2026-10"), uow.payouts.get("2026-11")
        paid = uow.referrals.search(ReferralStatus.PAID, None, None, 100)
    assert october is not None and october.status is RunStatus.COMPLETED
    assert november is not None and november.status is RunStatus.COMPLETED
    assert (october.referral_count, november.referral_count) == (6, 1)
    assert sorted(r.payout_period or "" for r in paid) == ["2026-10"] * 6 + ["2026-11"]
    assert november.previous_period == "2026-10"


def test_the_hourly_retry_completes_a_failed_month_then_the_month_just_ended(aws: Aws) -> None:
    assert handler({"retry": True}, LambdaContext())["status"] == "nothing to retry"
    with aws.store.read() as uow:
        assert uow.payouts.list() == []  # nothing failed: the retry ran nothing

    seed(aws, referrers=1, each=2)
    fail_october(aws)
    states = loop(handler({"retry": True}, LambdaContext()))
    just_ended = str(last_ended_period(SystemClock().now()))
    assert states[-1]["period"] == just_ended and states[-1]["status"] == "completed"
    with aws.store.read() as uow:
        runs = {run.period: run for run in uow.payouts.list()}
    assert runs["2026-10"].status is RunStatus.COMPLETED and runs["2026-10"].referral_count == 2
    assert runs[just_ended].status is RunStatus.COMPLETED
    assert handler({"retry": True}, LambdaContext())["status"] == "nothing to retry"
