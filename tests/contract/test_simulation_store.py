"""Simulations on every store: a backtest reads one program's referrals page by page
(`ReferralRepository.search` in id order) and reproduces what each referrer earned,
whichever store holds them, beside another program's referrals in the same indexes."""

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from referrals.domain.checks import CheckMode, FraudChecks
from referrals.domain.program import Program, RuleVersion
from referrals.domain.simulation import Window
from referrals.domain.tiers import TierSchedule
from referrals.ports import Store
from referrals.services import reviews
from referrals.services.programs import RulesBook, create_program
from referrals.services.referrers import enroll
from referrals.services.signups import sign_up
from referrals.services.simulations import simulate
from tests.clocks import FixedClock

T = datetime(2026, 3, 2, tzinfo=UTC)
MARCH = Window(T, datetime(2026, 4, 1, tzinfo=UTC))
CAPPED = RuleVersion(
    tiers=TierSchedule.parse("1:1000,3:1500"),
    checks=FraudChecks(email_alias=CheckMode.OFF, same_device=CheckMode.OFF),
    monthly_cap_cents=3000,
)
PARTNERS = replace(CAPPED, tiers=TierSchedule.parse("1:5000"), monthly_cap_cents=0)


def test_a_backtest_reproduces_each_program_on_every_store(store: Store) -> None:
    clock = FixedClock(T)
    book = RulesBook(store, clock, CAPPED, ttl=timedelta(0))
    book.ensure_default()
    create_program(store, clock, "test", Program("partners", "Partners"), PARTNERS)
    for user in ("ann", "bob"):
        enroll(store, clock, user, code=f"{user.upper()}-D")
        enroll(store, clock, user, code=f"{user.upper()}-P", program="partners")
    held = None
    for n in range(7):
        code = ("ANN-D", "BOB-D", "ANN-P")[n % 3]
        email = f"u{n}@mailinator.com" if n == 4 else None  # held by the disposable check
        done = sign_up(store, clock, book.for_signup, f"u{n}", code, email)
        held = done.referral if email else held
        clock.advance(hours=5)
    assert held is not None
    reviews.reject(store, clock, "test", held.id, "a throwaway address")

    default = simulate(store, "default", MARCH, None, page=2)
    assert default.scanned == 5 and default.simulated == default.actual
    assert default.changed == 0 and default.actual.count == 5
    partners = simulate(store, "partners", MARCH, None, page=2)
    assert partners.scanned == 2 and partners.simulated == partners.actual
    assert partners.actual.earned_cents == 10_000

    doubled = replace(PARTNERS, tiers=TierSchedule.parse("1:10000"))
    proposal = simulate(store, "partners", MARCH, doubled, page=2)
    assert proposal.simulated.earned_cents == 20_000
    assert [(m.referrer_id, m.change_cents) for m in proposal.movers] == [("ann", 10_000)]
