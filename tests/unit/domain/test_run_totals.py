"""A run's single figures from its totals per currency: one currency's, or none with
several; a run stored before per-currency totals reads as USD."""

from dataclasses import replace
from datetime import UTC, datetime

from referrals.domain.model import CurrencyTotal, PayoutRun, RunStatus
from referrals.domain.run_totals import recorded_totals, with_totals

RUN_AT = datetime(2026, 11, 1, tzinfo=UTC)


def completed_run(**figures: int) -> PayoutRun:
    return replace(PayoutRun("2026-10", RunStatus.COMPLETED, RUN_AT, started_at=RUN_AT), **figures)


def test_a_run_of_one_currency_has_its_figures_and_of_several_none() -> None:
    yen = CurrencyTotal("JPY", 1, 1, 1500, 0, 300)
    one = with_totals(completed_run(), [yen])
    assert (one.total_cents, one.clawback_cents, one.carried_forward_cents) == (1500, 0, 300)
    both = with_totals(completed_run(), [yen, CurrencyTotal("USD", 1, 2, 2500, 100)])
    assert [t.currency for t in both.totals] == ["JPY", "USD"]  # sorted
    assert (both.total_cents, both.clawback_cents, both.carried_forward_cents) == (None,) * 3
    none = with_totals(completed_run(total_cents=5), [])
    assert (none.totals, none.total_cents) == ((), 0)


def test_a_run_stored_before_per_currency_totals_reads_as_usd() -> None:
    old = completed_run(referrer_count=2, referral_count=3, total_cents=2500, clawback_cents=100)
    assert recorded_totals(old, ()).totals == (CurrencyTotal("USD", 2, 3, 2500, 100, 0),)
    nothing_due = completed_run()
    assert recorded_totals(nothing_due, ()).totals == ()
    running = replace(old, status=RunStatus.RUNNING)
    assert recorded_totals(running, ()) == running
