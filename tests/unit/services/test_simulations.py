"""Simulations and the checks report against the in-memory store, records made by the real
signup, conversion and review paths."""

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from referrals.adapters.memory import MemoryStore
from referrals.domain.checks import CheckMode, FraudChecks
from referrals.domain.errors import InvalidInput, ProgramNotFound
from referrals.domain.model import ReferralStatus
from referrals.domain.program import Program, RuleVersion, Trigger
from referrals.domain.simulation import Window
from referrals.domain.tiers import TierSchedule
from referrals.services import reviews
from referrals.services.conversions import record_conversion
from referrals.services.programs import SCHEDULE_LEAD, RulesBook, create_program, schedule_rules
from referrals.services.referrers import enroll
from referrals.services.signups import sign_up
from referrals.services.simulations import checks_report, simulate
from tests.clocks import FixedClock

T = datetime(2026, 3, 2, tzinfo=UTC)
MARCH = Window(T, datetime(2026, 4, 1, tzinfo=UTC))
FLAT = RuleVersion(
    tiers=TierSchedule.parse("1:1000"),
    checks=FraudChecks(email_alias=CheckMode.OFF, same_device=CheckMode.OFF),
    monthly_cap_cents=1500,
)


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(T)


@pytest.fixture
def book(store: MemoryStore, clock: FixedClock) -> RulesBook:
    rules = RulesBook(store, clock, FLAT, ttl=timedelta(0))
    rules.ensure_default()
    enroll(store, clock, "ann", code="ANN-1")
    return rules


def test_an_unknown_program_is_not_found(store: MemoryStore) -> None:
    with pytest.raises(ProgramNotFound):
        simulate(store, "nope", MARCH, None)
    with pytest.raises(ProgramNotFound):
        checks_report(store, "nope", MARCH)


def test_the_list_of_referrers_is_bounded(store: MemoryStore, book: RulesBook) -> None:
    with pytest.raises(InvalidInput) as refused:
        simulate(store, "default", MARCH, None, limit=501)
    assert refused.value.field == "limit"


def test_a_history_longer_than_the_budget_is_refused(
    store: MemoryStore, clock: FixedClock, book: RulesBook
) -> None:
    for n in range(5):
        sign_up(store, clock, book.for_signup, f"u{n}", "ANN-1")
    with pytest.raises(InvalidInput) as refused:
        simulate(store, "default", MARCH, None, page=2, max_rows=4)
    assert refused.value.field == "to"
    assert simulate(store, "default", MARCH, None, page=2, max_rows=5).scanned == 5


def test_only_the_programs_referrals_up_to_the_windows_end_are_read(
    store: MemoryStore, clock: FixedClock, book: RulesBook
) -> None:
    create_program(store, clock, "test", Program("partners", "Partners"), FLAT)
    enroll(store, clock, "ann", code="ANN-P", program="partners")
    sign_up(store, clock, book.for_signup, "u1", "ANN-1")
    sign_up(store, clock, book.for_signup, "u2", "ANN-P")
    clock.advance(days=40)  # after March and its slack
    sign_up(store, clock, book.for_signup, "u3", "ANN-1")
    result = simulate(store, "default", MARCH, None)
    assert (result.scanned, result.actual.count) == (1, 1)


def test_a_proposal_is_compared_with_what_was_earned(
    store: MemoryStore, clock: FixedClock, book: RulesBook
) -> None:
    for n in range(3):
        sign_up(store, clock, book.for_signup, f"u{n}", "ANN-1")
    proposal = replace(FLAT, tiers=TierSchedule.parse("1:2000"), monthly_cap_cents=0)
    result = simulate(store, "default", MARCH, proposal)
    assert (result.actual.earned_cents, result.actual.capped_cents) == (1500, 1500)
    assert (result.simulated.earned_cents, result.simulated.capped_cents) == (6000, 0)
    assert [(d.referrer_id, d.change_cents) for d in result.movers] == [("ann", 4500)]
    with store.read() as uow:  # read only: the records are as they were
        recorded = uow.referrals.for_referrer("ann", None, 9)
    assert [r.reward_cents for r in recorded] == [1000, 500, 0]


def test_a_backtest_reproduces_a_conversion_program_across_a_change_of_trigger(
    store: MemoryStore, clock: FixedClock, book: RulesBook
) -> None:
    sign_up(store, clock, book.for_signup, "u1", "ANN-1")  # earned at its signup
    on_purchase = replace(FLAT, trigger=Trigger.CONVERSION, tiers=TierSchedule.parse("1:700"))
    schedule_rules(store, clock, "test", "default", on_purchase, clock.now() + SCHEDULE_LEAD)
    clock.advance(days=1)
    for n in (2, 3, 4):
        sign_up(store, clock, book.for_signup, f"u{n}", "ANN-1")  # awaiting
    clock.advance(days=2)
    for n in (2, 3):
        rules = book.in_force("default", clock.now())
        record_conversion(store, clock, rules, f"u{n}", "purchase", f"order-{n}", 5000)
    result = simulate(store, "default", MARCH, None)
    assert (result.actual.count, result.actual.earned_cents) == (3, 1500)  # 1000 + 500 capped + 0
    assert result.simulated == result.actual and result.changed == 0


def test_a_review_before_a_capped_reward_is_replayed_exactly(
    store: MemoryStore, clock: FixedClock, book: RulesBook
) -> None:
    held = sign_up(store, clock, book.for_signup, "u1", "ANN-1", "u1@mailinator.com").referral
    reviews.reject(store, clock, "test", held.id, "a throwaway address")
    clock.advance(hours=1)
    sign_up(store, clock, book.for_signup, "u2", "ANN-1")  # the room given back: 1000
    result = simulate(store, "default", MARCH, None)
    assert result.simulated == result.actual and result.changed == 0


def test_a_review_after_a_capped_reward_shows_as_a_change(
    store: MemoryStore, clock: FixedClock, book: RulesBook
) -> None:
    """The limit domain.simulation documents: the replay gives a rejected reward's room
    back at once, while the reward priced before the review met the cap with it."""
    held = sign_up(store, clock, book.for_signup, "u1", "ANN-1", "u1@mailinator.com").referral
    clock.advance(hours=1)
    capped = sign_up(store, clock, book.for_signup, "u2", "ANN-1").referral
    reviews.reject(store, clock, "test", held.id, "a throwaway address")
    assert capped.reward_cents == 500
    (ann,) = simulate(store, "default", MARCH, None).movers
    assert (ann.actual_cents, ann.simulated_cents) == (1500, 2000)


def test_the_checks_report_weighs_each_checks_flags_against_their_reviews(
    store: MemoryStore, clock: FixedClock, book: RulesBook
) -> None:
    shadow = replace(FLAT, checks=replace(FLAT.checks, disposable_email=CheckMode.SHADOW))
    schedule_rules(store, clock, "test", "default", shadow, clock.now() + SCHEDULE_LEAD)
    held = sign_up(store, clock, book.for_signup, "u1", "ANN-1", "u1@mailinator.com").referral
    approved = sign_up(store, clock, book.for_signup, "u2", "ANN-1", "u2@mailinator.com").referral
    sign_up(store, clock, book.for_signup, "u3", "ANN-1", "u3@example.com")
    reviews.reject(store, clock, "test", held.id, "throwaway")
    reviews.approve(store, clock, "test", approved.id)
    clock.advance(seconds=10)  # the shadow version is in force
    flagged = [
        sign_up(store, clock, book.for_signup, f"s{n}", "ANN-1", f"s{n}@mailinator.com").referral
        for n in range(3)
    ]
    sign_up(store, clock, book.for_signup, "s9", "ANN-1", "s9@example.com")
    reviews.reverse(store, clock, "test", flagged[0].id, "refunded")

    report = checks_report(store, "default", MARCH)
    rows = {(row.name, row.mode): row for row in report.rows}
    assert list(rows) == [("disposable_email", "shadow"), ("disposable_email", "hold")]
    hold, shadow_row = rows["disposable_email", "hold"], rows["disposable_email", "shadow"]
    assert (hold.flagged.rewards, hold.flagged.rejected, hold.flagged.approved) == (2, 1, 1)
    assert (hold.checked, hold.precision, hold.baseline) == (3, 0.5, 0.0)
    assert (shadow_row.flagged.rewards, shadow_row.flagged.reversed) == (3, 1)
    assert shadow_row.precision == pytest.approx(1 / 3)
    assert report.rewards == 7


def test_the_checks_report_counts_only_the_window(
    store: MemoryStore, clock: FixedClock, book: RulesBook
) -> None:
    sign_up(store, clock, book.for_signup, "u1", "ANN-1", "u1@mailinator.com")
    clock.advance(days=31)
    sign_up(store, clock, book.for_signup, "u2", "ANN-1", "u2@mailinator.com")
    report = checks_report(store, "default", MARCH)
    (row,) = report.rows
    assert (report.rewards, row.flagged.rewards, row.flagged.in_review) == (1, 1, 1)
    assert row.precision is None  # nothing decided yet


def test_a_conversion_keeps_the_verdicts_its_signup_was_judged_by(
    store: MemoryStore, clock: FixedClock, book: RulesBook
) -> None:
    """The checks run at the signup: a version in force at the conversion prices the
    reward, but its check modes do not judge the signup's verdicts again."""
    shadow = replace(
        FLAT,
        trigger=Trigger.CONVERSION,
        checks=replace(FLAT.checks, disposable_email=CheckMode.SHADOW),
    )
    schedule_rules(store, clock, "test", "default", shadow, clock.now() + SCHEDULE_LEAD)
    clock.advance(minutes=1)
    sign_up(store, clock, book.for_signup, "u1", "ANN-1", "u1@mailinator.com")
    hold = replace(shadow, checks=FLAT.checks)  # disposable_email: hold
    schedule_rules(store, clock, "test", "default", hold, clock.now() + SCHEDULE_LEAD)
    clock.advance(minutes=1)
    rules = book.in_force("default", clock.now())
    converted = record_conversion(store, clock, rules, "u1", "purchase", "order-1", 100).referral
    assert converted is not None and converted.status is ReferralStatus.PENDING
    result = simulate(store, "default", MARCH, None)
    assert result.simulated == result.actual and result.actual.held_count == 0
