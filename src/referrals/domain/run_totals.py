"""A payout run's totals per currency (`PayoutRun.totals`), and the single figures
(`total_cents`, `clawback_cents`, `carried_forward_cents`) clients knew before them:
those of the run's one currency, never a sum across currencies."""

from collections.abc import Iterable
from dataclasses import replace

from referrals.domain.model import CurrencyTotal, PayoutRun, RunStatus
from referrals.domain.money import DEFAULT_CURRENCY


def with_totals(run: PayoutRun, totals: Iterable[CurrencyTotal]) -> PayoutRun:
    """`run` with its per-currency `totals`, and its single figures (`total_cents`,
    `clawback_cents`, `carried_forward_cents`) those of its one currency: None when it
    holds several (never a sum across currencies), 0 when it holds none."""
    ordered = tuple(sorted(totals, key=lambda total: total.currency))
    if len(ordered) > 1:
        return replace(
            run, totals=ordered, total_cents=None, clawback_cents=None, carried_forward_cents=None
        )
    one = ordered[0] if ordered else CurrencyTotal(DEFAULT_CURRENCY)
    return replace(
        run,
        totals=ordered,
        total_cents=one.total_cents,
        clawback_cents=one.clawback_cents,
        carried_forward_cents=one.carried_forward_cents,
    )


def recorded_totals(run: PayoutRun, totals: Iterable[CurrencyTotal]) -> PayoutRun:
    """A run as a store read it: with the per-currency `totals` it stored, or, stored by a
    release before those (when every program paid in USD), its single figures as USD."""
    stored = tuple(totals)
    if stored:
        return with_totals(run, stored)
    if run.status is not RunStatus.COMPLETED or not (
        run.referral_count or run.carried_forward_cents
    ):
        return run
    usd = CurrencyTotal(
        DEFAULT_CURRENCY,
        run.referrer_count,
        run.referral_count,
        run.total_cents or 0,
        run.clawback_cents or 0,
        run.carried_forward_cents or 0,
    )
    return with_totals(run, (usd,))
