from decimal import Decimal

import pytest

from referrals.domain.money import cents_to_dollars, format_cents, format_dollars


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
