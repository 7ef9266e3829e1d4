"""A run's sums per currency (CurrencyTally): lines of programs in one currency add up,
those of different currencies never do; a user paid in two currencies counts in each."""

from referrals.domain.model import CurrencyTotal, LineKind, PayoutLine
from referrals.services.payout_reports import CurrencyTally

CURRENCIES = {"default": "USD", "partners": "USD", "japan": "JPY"}


def test_lines_are_summed_per_currency_and_users_counted_in_each() -> None:
    tally = CurrencyTally(CURRENCIES)
    for line in [
        PayoutLine("alice", 2, 2500, LineKind.REWARD, "default"),
        PayoutLine("alice", 1, 500, LineKind.REWARD, "japan"),
        PayoutLine("alice", 1, 2000, LineKind.REWARD, "partners"),
        PayoutLine("bob", 1, 700, LineKind.REWARD, "japan"),
        PayoutLine("bob", 1, -200, LineKind.CLAWBACK, "japan"),
    ]:
        tally.add(line)
    assert tally.totals({"JPY": 300}) == (
        CurrencyTotal("JPY", 2, 3, 1000, 200, 300),
        CurrencyTotal("USD", 1, 3, 4500, 0, 0),
    )


def test_a_currency_with_only_money_carried_forward_has_a_total() -> None:
    tally = CurrencyTally(CURRENCIES)
    tally.add(PayoutLine("alice", 1, 1000, LineKind.REWARD, "default"))
    assert tally.totals({"JPY": 400, "EUR": 0}) == (
        CurrencyTotal("JPY", carried_forward_cents=400),
        CurrencyTotal("USD", 1, 1, 1000),
    )


def test_a_program_not_known_pays_in_usd() -> None:
    assert CurrencyTally({}).currency("gone") == "USD"
