"""A run that stops without completing, and a report that could not be published, on every
store: the stopped month's rewards are never stranded (a later month waits for it, the
schedule runs it again first, every reward is paid exactly once), and a completed run
says whether its report is out until the schedule publishes it."""

from datetime import UTC, datetime, timedelta

import pytest

from referrals.domain.errors import EarlierRunFailed, PayoutFailed
from referrals.domain.model import REPORT_UNPUBLISHED, PayoutRun, ReferralStatus, RunStatus
from referrals.domain.periods import Period
from referrals.domain.program import RuleVersion
from referrals.domain.reports import STAGED_PREFIX, manifest_key, report_key
from referrals.ports import Store
from referrals.services.payouts import LEASE, get_run, run_payout
from referrals.services.referrers import enroll
from referrals.services.schedule import run_due_payout
from referrals.services.signups import sign_up
from tests.clocks import FixedClock
from tests.fakes import MemoryReports

NOVEMBER, DECEMBER = Period(2026, 11), Period(2026, 12)
NOVEMBER_REWARDS, DECEMBER_REWARDS = 3, 2


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(datetime(2026, 11, 20, tzinfo=UTC))


@pytest.fixture
def reports() -> MemoryReports:
    return MemoryReports()


def earn(store: Store, clock: FixedClock, month: Period, count: int, first: int = 0) -> None:
    with store.read() as uow:
        alice = uow.referrers.get("alice")
    code = alice.code if alice else enroll(store, clock, "alice").referrer.code
    moment = month.start.replace(day=10)
    for n in range(first, first + count):
        sign_up(store, clock, RuleVersion(), f"{month}-u{n}", code, signed_up_at=moment)


def paid_by_period(store: Store) -> dict[str | None, int]:
    """How many of alice's referrals each period paid; None: not paid."""
    with store.read() as uow:
        rows = uow.referrals.for_referrer("alice", None, 100)
    counts: dict[str | None, int] = {}
    for row in rows:
        period = row.payout_period if row.status is ReferralStatus.PAID else None
        counts[period] = counts.get(period, 0) + 1
    return counts


def fail_november(store: Store, clock: FixedClock, reports: MemoryReports) -> None:
    """November's rewards, then its run at 00:00 on December 1st with the report store down."""
    earn(store, clock, NOVEMBER, NOVEMBER_REWARDS)
    clock.moment = DECEMBER.start
    reports.failing = True
    with pytest.raises(PayoutFailed):
        run_due_payout(store, reports, clock)
    reports.failing = False
    assert get_run(store, NOVEMBER).status is RunStatus.FAILED
    with store.read() as uow:
        stranded = uow.referrals.search(ReferralStatus.PROCESSING, None, None, 100)
    assert len(stranded) == NOVEMBER_REWARDS  # assigned to the failed run, not paid


def test_a_later_month_is_refused_while_an_earlier_run_is_failed(
    store: Store, clock: FixedClock, reports: MemoryReports
) -> None:
    fail_november(store, clock, reports)
    clock.moment = datetime(2027, 1, 1, 0, 5, tzinfo=UTC)
    earn(store, clock, DECEMBER, DECEMBER_REWARDS)

    with pytest.raises(EarlierRunFailed) as refused:
        run_payout(store, reports, clock, DECEMBER)
    assert refused.value.code == "earlier_run_failed" and refused.value.period == "2026-11"
    assert "2026-11" in refused.value.detail and "OSError" in refused.value.detail
    with store.read() as uow:
        assert uow.payouts.get("2026-12") is None  # refused before its claim: nothing written
    assert paid_by_period(store) == {None: NOVEMBER_REWARDS + DECEMBER_REWARDS}


def test_the_schedule_completes_the_failed_month_first_and_pays_each_reward_once(
    store: Store, clock: FixedClock, reports: MemoryReports
) -> None:
    fail_november(store, clock, reports)
    clock.moment = datetime(2027, 1, 1, 0, 1, tzinfo=UTC)  # December has ended too
    earn(store, clock, DECEMBER, DECEMBER_REWARDS)  # imported as made in December

    first = run_due_payout(store, reports, clock)
    assert first is not None and first.period == "2026-11"
    assert first.status is RunStatus.COMPLETED and first.referral_count == NOVEMBER_REWARDS
    clock.advance(minutes=1)
    second = run_due_payout(store, reports, clock)
    assert second is not None and second.period == "2026-12"
    assert second.referral_count == DECEMBER_REWARDS
    assert (second.previous_period, second.previous_sha256) == ("2026-11", first.report_sha256)
    clock.advance(minutes=1)
    assert run_due_payout(store, reports, clock) is None  # nothing more is owed

    assert paid_by_period(store) == {"2026-11": NOVEMBER_REWARDS, "2026-12": DECEMBER_REWARDS}
    assert get_run(store, NOVEMBER).error is None  # the failure is behind it


def test_the_schedule_retries_a_failed_month_until_it_completes(
    store: Store, clock: FixedClock, reports: MemoryReports
) -> None:
    fail_november(store, clock, reports)
    clock.moment = datetime(2027, 2, 3, tzinfo=UTC)  # two months on, still down
    reports.failing = True
    with pytest.raises(PayoutFailed):
        run_due_payout(store, reports, clock)
    assert [r.period for r in _runs(store)] == ["2026-11"]  # no later month got ahead of it
    reports.failing = False
    clock.advance(minutes=1)
    run = run_due_payout(store, reports, clock)
    assert run is not None and run.period == "2026-11"
    assert paid_by_period(store) == {"2026-11": NOVEMBER_REWARDS}


def test_the_schedule_resumes_a_crashed_run_of_an_earlier_month_first(
    store: Store, clock: FixedClock, reports: MemoryReports
) -> None:
    earn(store, clock, NOVEMBER, NOVEMBER_REWARDS)
    crashed = DECEMBER.start + timedelta(minutes=3)
    with store.unit_of_work() as uow:  # claimed and assigned, then the process died
        assert uow.payouts.claim("2026-11", NOVEMBER.cutoff, "dead", crashed, crashed + LEASE)
        uow.commit()
    with store.unit_of_work() as uow:
        assert uow.payouts.renew("2026-11", "dead", crashed + LEASE)
        moved, _ = uow.payouts.assign_batch("2026-11", NOVEMBER.cutoff, 100)
        assert moved == NOVEMBER_REWARDS
        uow.commit()
    clock.moment = datetime(2027, 1, 1, 0, 1, tzinfo=UTC)
    earn(store, clock, DECEMBER, DECEMBER_REWARDS)
    with pytest.raises(EarlierRunFailed, match="stopped without completing"):
        run_payout(store, reports, clock, DECEMBER)
    first = run_due_payout(store, reports, clock)
    second = run_due_payout(store, reports, clock)
    assert first is not None and second is not None
    assert (first.period, second.period) == ("2026-11", "2026-12")
    assert paid_by_period(store) == {"2026-11": NOVEMBER_REWARDS, "2026-12": DECEMBER_REWARDS}


def test_an_earlier_run_live_elsewhere_does_not_hold_a_later_month(
    store: Store, clock: FixedClock, reports: MemoryReports
) -> None:
    earn(store, clock, NOVEMBER, NOVEMBER_REWARDS)
    clock.moment = datetime(2027, 1, 1, 0, 1, tzinfo=UTC)
    with store.unit_of_work() as uow:
        now = clock.now()
        assert uow.payouts.claim("2026-11", NOVEMBER.cutoff, "alive", now, now + LEASE)
        uow.commit()
    run = run_payout(store, reports, clock, DECEMBER)
    # Not assigned to November's run yet: pending, so December's run pays them.
    assert run.status is RunStatus.COMPLETED and run.referral_count == NOVEMBER_REWARDS


def test_a_completed_run_says_its_report_is_not_published_until_it_is(
    store: Store, clock: FixedClock, reports: MemoryReports
) -> None:
    earn(store, clock, NOVEMBER, NOVEMBER_REWARDS)
    clock.moment = DECEMBER.start
    reports.refused = {report_key("2026-11")}  # staged fine, then the store went down
    run = run_payout(store, reports, clock, NOVEMBER)

    assert run.status is RunStatus.COMPLETED and not run.report_published
    assert run.error is not None and run.error.startswith("report not published: OSError")
    stored = get_run(store, NOVEMBER)
    assert stored.error == run.error and not stored.report_published
    assert paid_by_period(store) == {"2026-11": NOVEMBER_REWARDS}  # paid all the same

    reports.refused = set()
    clock.advance(minutes=1)
    assert run_due_payout(store, reports, clock) is None  # publishing is not a run
    published = get_run(store, NOVEMBER)
    assert published.report_published and published.error is None
    assert reports.get(report_key("2026-11")) is not None
    assert reports.get(manifest_key("2026-11")) is not None
    assert not [key for key in reports.objects if key.startswith(STAGED_PREFIX)]


def test_a_run_completing_says_unpublished_until_its_report_is_out(
    store: Store, clock: FixedClock, reports: MemoryReports
) -> None:
    earn(store, clock, NOVEMBER, NOVEMBER_REWARDS)
    clock.moment = DECEMBER.start
    seen: list[str | None] = []

    def at(step: str) -> None:
        if step in ("completed", "manifest_written"):
            seen.append(get_run(store, NOVEMBER).error)

    run = run_payout(store, reports, clock, NOVEMBER, checkpoint=at)
    # A crash at either point leaves the run saying so; the schedule then publishes it.
    assert seen == [REPORT_UNPUBLISHED, REPORT_UNPUBLISHED]
    assert run.report_published and get_run(store, NOVEMBER).report_published
    assert sorted(reports.objects) == [manifest_key("2026-11"), report_key("2026-11")]


def _runs(store: Store) -> list[PayoutRun]:
    with store.read() as uow:
        return list(uow.payouts.list())
