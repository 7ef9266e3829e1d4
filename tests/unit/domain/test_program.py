from datetime import UTC, datetime

import pytest

from referrals.domain.model import Referrer
from referrals.domain.program import Program

ALICE = Referrer("alice", "A1", None, 0, datetime(2026, 1, 1, tzinfo=UTC))


def test_no_caps_pay_the_tier() -> None:
    assert Program().capped(2500, ALICE.counting("2026-03", 10**9), "2026-03") == (2500, None)


@pytest.mark.parametrize(
    ("earned", "expected"),
    [(0, (1000, None)), (2000, (1000, None)), (2500, (500, "monthly")), (4000, (0, "monthly"))],
)
def test_the_monthly_cap_cuts_what_exceeds_it(earned: int, expected: tuple[int, str]) -> None:
    program = Program(monthly_cap_cents=3000)
    assert program.capped(1000, ALICE.counting("2026-03", earned), "2026-03") == expected


def test_the_monthly_cap_counts_only_its_month() -> None:
    program = Program(monthly_cap_cents=3000)
    full_march = ALICE.counting("2026-03", 3000)
    assert program.capped(1000, full_march, "2026-04") == (1000, None)
    # A month before the counter's (an import): the monthly cap cannot be checked.
    assert program.capped(1000, ALICE.counting("2026-05", 3000), "2026-03") == (1000, None)


def test_the_lifetime_cap_binds_across_months() -> None:
    program = Program(monthly_cap_cents=3000, lifetime_cap_cents=5000)
    alice = ALICE.counting("2026-01", 3000).counting("2026-02", 1500)
    assert program.capped(1000, alice, "2026-03") == (500, "lifetime")
    assert program.capped(1000, alice.counting("2026-03", 500), "2026-03") == (0, "lifetime")


def test_the_tighter_cap_is_named() -> None:
    program = Program(monthly_cap_cents=1200, lifetime_cap_cents=10_000)
    assert program.capped(1000, ALICE.counting("2026-03", 1000), "2026-03") == (200, "monthly")
