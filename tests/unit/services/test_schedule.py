from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import pytest

from referrals.adapters.memory import MemoryStore
from referrals.domain.errors import PayoutFailed
from referrals.domain.model import ReferralStatus, Role, RunStatus
from referrals.domain.periods import Period
from referrals.domain.program import RuleVersion
from referrals.services.keys import create_first_admin_key, create_key
from referrals.services.payouts import run_payout
from referrals.services.referrers import enroll
from referrals.services.schedule import run_due_payout
from referrals.services.signups import sign_up
from tests.clocks import FixedClock
from tests.fakes import MemoryReports

MIDNIGHT = datetime(2026, 11, 1, 0, 0, tzinfo=UTC)


def seed(store: MemoryStore, clock: FixedClock) -> None:
    code = enroll(store, clock, "alice").referrer.code
    for n in range(3):
        sign_up(
            store,
            clock,
            RuleVersion(),
            f"u{n}",
            code,
            signed_up_at=datetime(2026, 10, 9, tzinfo=UTC),
        )


def test_at_midnight_on_the_first_the_month_just_ended_is_paid(store: MemoryStore) -> None:
    clock = FixedClock(datetime(2026, 10, 20, tzinfo=UTC))
    seed(store, clock)
    clock.moment = MIDNIGHT
    run = run_due_payout(store, MemoryReports(), clock)
    assert run is not None and run.period == "2026-10" and run.referral_count == 3


def test_a_completed_month_is_not_run_again(store: MemoryStore) -> None:
    clock = FixedClock(MIDNIGHT)
    reports = MemoryReports()
    assert run_due_payout(store, reports, clock) is not None
    clock.advance(minutes=1)
    assert run_due_payout(store, reports, clock) is None


def test_servers_checking_at_the_same_instant_pay_once(store: MemoryStore) -> None:
    clock = FixedClock(datetime(2026, 10, 20, tzinfo=UTC))
    seed(store, clock)
    clock.moment = MIDNIGHT
    reports = MemoryReports()
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda _: run_due_payout(store, reports, clock), range(4)))
    runs = [r for r in results if r is not None]
    assert len({r.period for r in runs}) == 1
    assert all(r.referral_count == 3 for r in runs)
    paid = [r for r in store.state.referrals.values() if r.status is ReferralStatus.PAID]
    assert len(paid) == 3
    assert [e.type for e in store.state.outbox.values()].count("payout.completed") == 1


def test_a_failed_month_is_retried_by_the_next_check(store: MemoryStore) -> None:
    clock = FixedClock(datetime(2026, 10, 20, tzinfo=UTC))
    seed(store, clock)
    clock.moment = MIDNIGHT
    reports = MemoryReports()
    reports.failing = True
    with pytest.raises(PayoutFailed):  # the worker logs it and checks again a minute later
        run_due_payout(store, reports, clock)
    reports.failing = False
    clock.advance(minutes=1)
    run = run_due_payout(store, reports, clock)
    assert run is not None and run.referral_count == 3


def test_a_month_that_ended_before_the_store_was_put_to_use_is_not_run(
    store: MemoryStore,
) -> None:
    # A server first started on December 6th: November ended before the store existed.
    clock = FixedClock(datetime(2026, 12, 6, 9, tzinfo=UTC))
    assert create_first_admin_key(store, clock) is not None
    reports = MemoryReports()
    assert run_due_payout(store, reports, clock) is None
    assert store.state.runs == {}  # no empty November run completed
    # So November stays open to an import, and is paid as November when run.
    seed_november(store, clock)
    run = run_payout(store, reports, clock, Period(2026, 11))
    assert run.status is RunStatus.COMPLETED and run.referral_count == 3


def test_the_first_month_the_store_lived_through_is_run(store: MemoryStore) -> None:
    clock = FixedClock(datetime(2026, 11, 20, tzinfo=UTC))
    create_key(store, clock, Role.INGEST)  # `keys create` before the first start counts too
    seed_november(store, clock)
    clock.moment = datetime(2026, 12, 1, tzinfo=UTC)
    run = run_due_payout(store, MemoryReports(), clock)
    assert run is not None and run.period == "2026-11" and run.referral_count == 3


def test_a_run_already_begun_is_resumed_even_for_a_month_before_the_store(
    store: MemoryStore,
) -> None:
    clock = FixedClock(datetime(2026, 12, 6, tzinfo=UTC))
    create_first_admin_key(store, clock)
    seed_november(store, clock)
    reports = MemoryReports()
    reports.failing = True
    with pytest.raises(PayoutFailed):  # an operator's run of November failed
        run_payout(store, reports, clock, Period(2026, 11))
    reports.failing = False
    clock.advance(minutes=1)
    run = run_due_payout(store, reports, clock)
    assert run is not None and run.status is RunStatus.COMPLETED and run.referral_count == 3


def seed_november(store: MemoryStore, clock: FixedClock) -> None:
    code = enroll(store, clock, "alice").referrer.code
    for n in range(3):
        moment = datetime(2026, 11, 9, tzinfo=UTC)
        sign_up(store, clock, RuleVersion(), f"u{n}", code, signed_up_at=moment)
