"""start_payout: what a request answers at once where a run works elsewhere (AWS)."""

from datetime import UTC, datetime, timedelta

import pytest

from referrals.adapters.memory import MemoryStore
from referrals.domain.errors import InvalidInput
from referrals.domain.model import PayoutRun, RunStatus
from referrals.domain.periods import Period
from referrals.services.payout_start import PayoutStarted, start_payout
from referrals.services.payouts import run_payout
from tests.clocks import FixedClock
from tests.fakes import MemoryReports

NOVEMBER_5 = datetime(2026, 11, 5, tzinfo=UTC)
OCTOBER = Period.parse("2026-10")


class RecordingStarter:
    """Records the periods it is asked to start (the real one: adapters/stepfunctions)."""

    def __init__(self) -> None:
        self.started: list[str] = []

    def start(self, period: str) -> str:
        self.started.append(period)
        return f"execution:{period}"


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(NOVEMBER_5)


def test_an_ended_unpaid_month_is_started_and_nothing_is_paid_here(
    store: MemoryStore, clock: FixedClock
) -> None:
    starter = RecordingStarter()
    started = start_payout(store, MemoryReports(), clock, starter, OCTOBER)
    assert started == PayoutStarted("2026-10", "execution:2026-10")
    assert starter.started == ["2026-10"]
    with store.read() as uow:
        assert uow.payouts.get("2026-10") is None


def test_a_month_not_ended_is_refused_before_anything_starts(
    store: MemoryStore, clock: FixedClock
) -> None:
    starter = RecordingStarter()
    with pytest.raises(InvalidInput, match="has not ended"):
        start_payout(store, MemoryReports(), clock, starter, Period.parse("2026-11"))
    assert starter.started == []


def test_a_paid_month_answers_its_run_and_starts_nothing(
    store: MemoryStore, clock: FixedClock
) -> None:
    reports = MemoryReports()
    paid = run_payout(store, reports, clock, OCTOBER)
    starter = RecordingStarter()
    answered = start_payout(store, reports, clock, starter, OCTOBER)
    assert isinstance(answered, PayoutRun) and answered == paid
    assert answered.status is RunStatus.COMPLETED
    assert starter.started == []


def test_a_paid_months_unpublished_report_is_published_as_it_answers(
    store: MemoryStore, clock: FixedClock
) -> None:
    reports = MemoryReports()
    reports.refused.add("payouts/2026-10/report.csv")
    assert run_payout(store, reports, clock, OCTOBER).report_published is False
    reports.refused.clear()
    answered = start_payout(store, reports, clock, RecordingStarter(), OCTOBER)
    assert isinstance(answered, PayoutRun) and answered.report_published is True
    assert "payouts/2026-10/report.csv" in reports.objects


def test_an_earlier_failed_month_is_no_reason_to_refuse(
    store: MemoryStore, clock: FixedClock
) -> None:
    # Where the request runs the payout, this is 409 earlier_run_failed; the started
    # run completes September first (schedule.first_owed), then October.
    september = Period.parse("2026-09")
    with store.unit_of_work() as uow:
        now = clock.now()
        assert uow.payouts.claim("2026-09", september.cutoff, "a", now, now + timedelta(seconds=30))
        uow.payouts.fail("2026-09", "a", "OSError: report store unavailable")
        uow.commit()
    starter = RecordingStarter()
    assert isinstance(start_payout(store, MemoryReports(), clock, starter, OCTOBER), PayoutStarted)
    assert starter.started == ["2026-10"]
