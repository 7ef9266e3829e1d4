"""The report hash chain, from every store: each run links the latest earlier month paid
(month order) and the run completed just before it (completion order), in the run and
in its manifest, whatever order the months are paid in."""

import json
from datetime import UTC, datetime
from itertools import pairwise

import pytest

from referrals.domain.model import PayoutRun, RunStatus
from referrals.domain.periods import Period
from referrals.domain.program import RuleVersion
from referrals.domain.reports import manifest_key
from referrals.ports import Store
from referrals.services.payouts import LEASE, run_payout
from referrals.services.referrers import enroll
from referrals.services.signups import sign_up
from tests.clocks import FixedClock
from tests.fakes import MemoryReports

NOW = datetime(2026, 12, 6, tzinfo=UTC)
MONTHS = ("2026-08", "2026-09", "2026-10", "2026-11")


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(NOW)


@pytest.fixture
def reports() -> MemoryReports:
    return MemoryReports()


def pay(store: Store, reports: MemoryReports, clock: FixedClock, period: str) -> PayoutRun:
    clock.advance(minutes=1)  # each run completes after the one before
    return run_payout(store, reports, clock, Period.parse(period))


def manifest(reports: MemoryReports, period: str) -> dict[str, object]:
    data = reports.get(manifest_key(period))
    assert data is not None
    parsed: dict[str, object] = json.loads(data)
    return parsed


def links(run: PayoutRun) -> tuple[str | None, str | None, str | None, str | None]:
    return (
        run.previous_month_period,
        run.previous_month_sha256,
        run.previous_period,
        run.previous_sha256,
    )


def test_months_paid_in_order_link_the_same_way_both_ways(
    store: Store, reports: MemoryReports, clock: FixedClock
) -> None:
    code = enroll(store, clock, "alice").referrer.code
    for n, month in enumerate(MONTHS):
        moment = Period.parse(month).start.replace(day=10)
        sign_up(store, clock, RuleVersion(), f"u{n}", code, signed_up_at=moment)
    runs = [pay(store, reports, clock, month) for month in MONTHS]

    assert links(runs[0]) == (None, None, None, None)
    for before, run in pairwise(runs):
        expected = (before.period, before.report_sha256) * 2
        assert links(run) == expected
        assert run.referral_count == 1  # one reward each: the shas differ
        written = manifest(reports, run.period)
        assert (written["previous_month_period"], written["previous_month_sha256"]) == expected[:2]
        assert written["previous_period"] == before.period


def test_a_month_paid_late_names_both_orders(
    store: Store, reports: MemoryReports, clock: FixedClock
) -> None:
    code = enroll(store, clock, "alice").referrer.code
    sign_up(store, clock, RuleVersion(), "u1", code, signed_up_at=datetime(2026, 8, 3, tzinfo=UTC))
    august = pay(store, reports, clock, "2026-08")
    sign_up(store, clock, RuleVersion(), "u2", code, signed_up_at=datetime(2026, 11, 3, tzinfo=UTC))
    november = pay(store, reports, clock, "2026-11")
    # October is imported late, then paid after November.
    sign_up(store, clock, RuleVersion(), "u3", code, signed_up_at=datetime(2026, 10, 3, tzinfo=UTC))
    october = pay(store, reports, clock, "2026-10")

    sha = {r.period: r.report_sha256 for r in (august, november, october)}
    assert len(set(sha.values())) == 3
    # November was paid while October was not: its month link skips to August.
    assert links(november) == ("2026-08", sha["2026-08"], "2026-08", sha["2026-08"])
    # October: the month before it that was paid is August; the run before it, November.
    assert links(october) == ("2026-08", sha["2026-08"], "2026-11", sha["2026-11"])
    written = manifest(reports, "2026-10")
    assert written["previous_month_period"] == "2026-08"
    assert written["previous_month_sha256"] == sha["2026-08"]
    assert written["previous_period"] == "2026-11"
    assert written["previous_sha256"] == sha["2026-11"]
    with store.read() as uow:
        stored = uow.payouts.get("2026-10")
    assert stored is not None and links(stored) == links(october)


def test_completed_before_is_the_latest_completed_earlier_month(
    store: Store, reports: MemoryReports, clock: FixedClock
) -> None:
    august = pay(store, reports, clock, "2026-08")
    september = pay(store, reports, clock, "2026-09")
    pay(store, reports, clock, "2026-11")
    with store.unit_of_work() as uow:  # October: claimed, still running
        october = Period.parse("2026-10")
        assert uow.payouts.claim("2026-10", october.cutoff, "x", NOW, NOW + LEASE)
        uow.commit()
    with store.read() as uow:
        assert uow.payouts.completed_before("2026-08") is None
        assert uow.payouts.completed_before("2026-09") == august
        assert uow.payouts.completed_before("2026-11") == september  # October is running
        later = uow.payouts.completed_before("2027-01")
        assert later is not None and later.period == "2026-11"
        assert later.status is RunStatus.COMPLETED
