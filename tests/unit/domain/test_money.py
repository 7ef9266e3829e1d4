from decimal import Decimal

import pytest

from referrals.domain.money import (
    cents_to_dollars,
    exponent,
    format_amounts,
    format_cents,
    format_dollars,
    format_minor,
    format_money,
)
from referrals.domain.program import currencies


@pytest.mark.parametrize(
    ("cents", "text"),
    [(0, "0.00"), (5, "0.05"), (1000, "10.00"), (1050, "10.50"), (123456789, "1234567.89")],
)
def test_format_cents_is_exact(cents: int, text: str) -> None:
    assert format_cents(cents) == text


def test_format_cents_keeps_the_sign_of_small_negative_amounts() -> None:
    assert format_cents(-5) == "-0.05"
    assert format_cents(-1250) == "-12.50"


@pytest.mark.parametrize(("cents", "text"), [(0, "$0.00"), (1050, "$10.50"), (-5, "-$0.05")])
def test_format_dollars_puts_the_sign_before_the_dollar(cents: int, text: str) -> None:
    assert format_dollars(cents) == text


def test_cents_to_dollars_is_exact_decimal() -> None:
    assert cents_to_dollars(1000) == Decimal(10)
    assert cents_to_dollars(1250) == Decimal("12.5")
    assert cents_to_dollars(1) == Decimal("0.01")
    # A float would give 0.30000000000000004 for 10 + 20 cents; Decimal does not.
    assert cents_to_dollars(10) + cents_to_dollars(20) == Decimal("0.3")


@pytest.mark.parametrize(
    ("minor", "currency", "text"),
    [
        (1234, "USD", "12.34"),
        (1234, "EUR", "12.34"),
        (1234, "JPY", "1234"),
        (-5, "JPY", "-5"),
        (1234, "KWD", "1.234"),
        (5, "BHD", "0.005"),
        (-5, "TND", "-0.005"),
        (100, "CLP", "100"),
    ],
)
def test_format_minor_writes_the_currencys_iso_4217_decimals(
    minor: int, currency: str, text: str
) -> None:
    assert format_minor(minor, currency) == text


def test_every_exception_to_two_decimals_is_an_active_currency() -> None:
    """A typo in the table would leave a real currency at two decimals."""
    odd = {code for code in currencies() if exponent(code) != 2}
    assert {"JPY", "KRW", "VND", "KWD", "BHD", "OMR"} <= odd
    assert {exponent(code) for code in odd} == {0, 3}
    assert exponent("USD") == exponent("EUR") == exponent("GBP") == 2


def test_format_money_keeps_dollars_and_names_other_currencies() -> None:
    assert format_money(1050, "USD") == "$10.50"
    assert format_money(1050, "JPY") == "1050 JPY"
    assert format_money(-1050, "KWD") == "-1.050 KWD"


def test_format_amounts_lists_each_currency_and_never_sums() -> None:
    assert format_amounts([("JPY", 500), ("USD", 1000)]) == "500 JPY, $10.00"
    assert format_amounts([]) == "$0.00"
