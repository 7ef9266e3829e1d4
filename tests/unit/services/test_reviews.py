from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import Any

import pytest

from referrals.adapters.memory import MemoryStore
from referrals.domain.errors import InvalidInput, NotFound, NotHeld, NotReversible
from referrals.domain.model import Referral, ReferralStatus, RewardKind
from referrals.domain.periods import Period
from referrals.domain.program import RuleVersion
from referrals.services import reviews
from referrals.services.audit import audit_log
from referrals.services.payouts import run_payout
from referrals.services.referrers import enroll
from referrals.services.signups import sign_up
from tests.clocks import FixedClock
from tests.fakes import MemoryReports


@pytest.fixture
def held(store: MemoryStore, clock: FixedClock, program: RuleVersion) -> Referral:
    enroll(store, clock, "alice", code="ALICE-1")
    referral = sign_up(store, clock, program, "bob", "ALICE-1", "bob@yopmail.com").referral
    assert referral.status is ReferralStatus.HELD
    return referral


def test_approving_a_held_reward_makes_it_pending_and_logs_who_and_why(
    store: MemoryStore, clock: FixedClock, held: Referral
) -> None:
    approved = reviews.approve(store, clock, "key-1", held.id, "checked by phone")
    assert approved.status is ReferralStatus.PENDING and approved.note == "checked by phone"
    [entry] = audit_log(store, 10, None).items
    assert (entry.actor, entry.action, entry.target, entry.reason, entry.at) == (
        "key-1",
        "review.approve",
        f"referral:{held.id}",
        "checked by phone",
        clock.now(),
    )


def test_a_rejected_reward_is_never_paid(
    store: MemoryStore, clock: FixedClock, held: Referral
) -> None:
    reviews.reject(store, clock, "key-1", held.id, "throwaway address")
    clock.advance(days=30)
    run = run_payout(store, MemoryReports(), clock, Period(2026, 3))
    assert run.referral_count == 0
    with store.read() as uow:
        assert uow.referrals.get(held.id).status is ReferralStatus.REJECTED  # type: ignore[union-attr]


def test_only_held_rewards_can_be_reviewed(
    store: MemoryStore, clock: FixedClock, held: Referral
) -> None:
    reviews.approve(store, clock, "key-1", held.id)
    with pytest.raises(NotHeld):
        reviews.reject(store, clock, "key-2", held.id, "too late")
    with pytest.raises(NotFound):
        reviews.approve(store, clock, "key-1", "01NOSUCHREFERRAL0000000000")
    assert [e.action for e in audit_log(store, 10, None).items] == ["review.approve"]


def test_reject_and_reverse_need_a_reason(
    store: MemoryStore, clock: FixedClock, held: Referral
) -> None:
    with pytest.raises(InvalidInput):
        reviews.reject(store, clock, "key-1", held.id, "   ")
    with pytest.raises(InvalidInput):
        reviews.reverse(store, clock, "key-1", held.id, None)  # type: ignore[arg-type]


def test_a_pending_reward_is_reversed_and_a_paid_one_clawed_back(
    store: MemoryStore, clock: FixedClock, program: RuleVersion, held: Referral
) -> None:
    pending = sign_up(store, clock, program, "carol", "ALICE-1").referral
    reversed_ = reviews.reverse(store, clock, "key-1", pending.id, "refunded")
    assert reversed_.status is ReferralStatus.REVERSED
    paid = sign_up(store, clock, program, "dave", "ALICE-1").referral
    clock.advance(days=30)
    run_payout(store, MemoryReports(), clock, Period(2026, 3))
    clawed = reviews.reverse(store, clock, "key-1", paid.id, "chargeback")
    assert clawed.status is ReferralStatus.CLAWED_BACK
    with store.read() as uow:
        [clawback] = uow.rewards.for_referral(paid.id)
    assert (clawback.kind, clawback.user_id, clawback.cents, clawback.status) == (
        RewardKind.CLAWBACK,
        "alice",
        -paid.reward_cents,
        ReferralStatus.PENDING,
    )
    for twice in (paid, pending):
        with pytest.raises(NotReversible):
            reviews.reverse(store, clock, "key-1", twice.id, "twice")


def test_the_clawback_is_taken_in_the_next_run_on_a_line_of_its_own(
    store: MemoryStore, clock: FixedClock, program: RuleVersion, held: Referral
) -> None:
    paid = sign_up(store, clock, program, "dave", "ALICE-1").referral
    clock.advance(days=30)  # April
    reports = MemoryReports()
    run_payout(store, reports, clock, Period(2026, 3))
    reviews.reverse(store, clock, "key-1", paid.id, "chargeback")
    sign_up(store, clock, program, "erin", "ALICE-1")  # Alice's third referral: $10 in April
    clock.advance(days=30)
    april = run_payout(store, reports, clock, Period(2026, 4))
    assert (april.total_cents, april.clawback_cents, april.referral_count) == (0, 1000, 2)
    report = reports.get("payouts/2026-04/report.csv")
    assert report is not None
    assert report.decode().splitlines()[1:] == [
        "2026-04,alice,1,1000,10.00,USD,default",
        "2026-04,alice,1,-1000,-10.00,USD,default",
    ]


def test_two_reviewers_at_once_have_one_winner(
    store: MemoryStore, clock: FixedClock, held: Referral
) -> None:
    def review(n: int) -> str:
        try:
            if n % 2:
                reviews.approve(store, clock, f"key-{n}", held.id, "ok")
            else:
                reviews.reject(store, clock, f"key-{n}", held.id, "no")
        except NotHeld:
            return "lost"
        return "won"

    with ThreadPoolExecutor(4) as pool:
        outcomes = list(pool.map(review, range(8)))
    assert outcomes.count("won") == 1
    assert len(audit_log(store, 10, None).items) == 1


def test_the_review_queue_lists_held_rewards_only(
    store: MemoryStore, clock: FixedClock, program: RuleVersion, held: Referral
) -> None:
    sign_up(store, clock, program, "carol", "ALICE-1")
    assert [r.id for r in reviews.review_queue(store, 10, None).items] == [held.id]


def test_reversing_a_double_sided_referral_claws_back_both_sides(
    store: MemoryStore, clock: FixedClock
) -> None:
    program = RuleVersion(referee_reward_cents=500)
    enroll(store, clock, "alice", code="ALICE-1")
    paid = sign_up(store, clock, program, "dave", "ALICE-1").referral
    clock.advance(days=30)
    run_payout(store, MemoryReports(), clock, Period(2026, 3))
    reviews.reverse(store, clock, "key-1", paid.id, "chargeback")
    with store.read() as uow:
        entries = uow.rewards.for_referral(paid.id)
        alice = uow.referrers.earnings("alice", clock.now())
        dave = uow.referrers.earnings("dave", clock.now())
    clawbacks = sorted((e.user_id, e.cents) for e in entries if e.kind is RewardKind.CLAWBACK)
    assert clawbacks == [("alice", -1000), ("dave", -500)]
    assert [e.status for e in entries if e.kind is RewardKind.REFEREE] == [
        ReferralStatus.CLAWED_BACK
    ]
    assert (alice.paid_cents, alice.clawed_back_cents, alice.earned_cents) == (1000, 1000, 0)
    assert (dave.paid_cents, dave.clawed_back_cents, dave.earned_cents) == (500, 500, 0)


def test_a_reward_being_paid_out_cannot_be_reversed(
    store: MemoryStore, clock: FixedClock, program: RuleVersion
) -> None:
    enroll(store, clock, "alice", code="ALICE-1")
    referral = sign_up(store, clock, program, "dave", "ALICE-1").referral
    with store.unit_of_work() as uow:
        uow.referrals.transition(
            referral.id, {ReferralStatus.PENDING}, ReferralStatus.PROCESSING, None
        )
        uow.commit()
    with pytest.raises(NotReversible, match="after the run"):
        reviews.reverse(store, clock, "key-1", referral.id, "refund")


def test_a_reward_paid_by_a_run_not_yet_completed_cannot_be_reversed(
    store: MemoryStore, clock: FixedClock, program: RuleVersion
) -> None:
    """A store may mark rewards paid in batches before the run completes (DynamoDB)."""
    enroll(store, clock, "alice", code="ALICE-1")
    referral = sign_up(store, clock, program, "dave", "ALICE-1").referral
    with store.unit_of_work() as uow:
        assert uow.payouts.claim("2026-03", clock.now(), "run-1", clock.now(), clock.now())
        uow.referrals.transition(referral.id, {ReferralStatus.PENDING}, ReferralStatus.PAID, None)
        uow.commit()
    store.state.referrals[referral.id] = replace(
        store.state.referrals[referral.id], payout_period="2026-03"
    )
    with pytest.raises(NotReversible, match="after the run"):
        reviews.reverse(store, clock, "key-1", referral.id, "refund")


def _counters(store: MemoryStore) -> tuple[int, str | None, int]:
    with store.read() as uow:
        alice = uow.referrers.get("alice")
    assert alice is not None
    return alice.cap_counters


def test_a_rejected_reward_gives_its_cap_room_back(
    store: MemoryStore, clock: FixedClock, held: Referral
) -> None:
    assert _counters(store) == (1000, "2026-03", 1000)  # a held reward counts until refused
    reviews.reject(store, clock, "admin", held.id, "fraud")
    assert _counters(store) == (0, "2026-03", 0)
    capped = RuleVersion(monthly_cap_cents=1000)
    assert sign_up(store, clock, capped, "carol", "ALICE-1").referral.reward_cents == 1000


def test_an_approved_reward_keeps_counting(
    store: MemoryStore, clock: FixedClock, held: Referral
) -> None:
    reviews.approve(store, clock, "admin", held.id)
    assert _counters(store) == (1000, "2026-03", 1000)


def test_a_reversal_gives_back_to_the_month_it_was_earned_in(
    store: MemoryStore, clock: FixedClock, program: RuleVersion
) -> None:
    enroll(store, clock, "alice", code="ALICE-1")
    march = sign_up(store, clock, program, "bob", "ALICE-1").referral
    clock.advance(days=31)
    sign_up(store, clock, program, "carol", "ALICE-1")
    assert _counters(store) == (2000, "2026-04", 1000)
    reviews.reverse(store, clock, "admin", march.id, "refund")  # March's: April's stays
    assert _counters(store) == (1000, "2026-04", 1000)


REVIEW_EVENTS = {"referral.approved", "referral.rejected", "referral.reversed"}


def _review_event(store: MemoryStore) -> tuple[str, dict[str, object]]:
    """The one review event (ids minted in one millisecond do not order events)."""
    with store.read() as uow:
        [event] = [e for e in uow.outbox.list(None, 100) if e.type in REVIEW_EVENTS]
    return event.type, dict(event.payload)


@pytest.mark.parametrize(
    ("decide", "kind", "status"),
    [
        (reviews.approve, "referral.approved", "pending"),
        (reviews.reject, "referral.rejected", "rejected"),
        (reviews.reverse, "referral.reversed", "reversed"),
    ],
)
def test_every_decision_is_announced_with_its_reason(
    store: MemoryStore, clock: FixedClock, held: Referral, decide: Any, kind: str, status: str
) -> None:
    decide(store, clock, "admin", held.id, "checked by hand")
    event_type, payload = _review_event(store)
    assert event_type == kind
    assert (payload["referral_id"], payload["status"], payload["reason"]) == (
        held.id,
        status,
        "checked by hand",
    )


def test_a_clawback_is_announced_as_such(
    store: MemoryStore, clock: FixedClock, program: RuleVersion
) -> None:
    enroll(store, clock, "alice", code="ALICE-1")
    referral = sign_up(store, clock, program, "bob", "ALICE-1").referral
    clock.advance(days=31)
    run_payout(store, MemoryReports(), clock, Period(2026, 3))
    reviews.reverse(store, clock, "admin", referral.id, "chargeback")
    event_type, payload = _review_event(store)
    assert (event_type, payload["status"], payload["reward_cents"]) == (
        "referral.reversed",
        "clawed_back",
        1000,
    )


def test_a_paid_reward_capped_to_nothing_leaves_no_clawback(
    store: MemoryStore, clock: FixedClock
) -> None:
    capped = RuleVersion(lifetime_cap_cents=1000)
    enroll(store, clock, "alice", code="ALICE-1")
    sign_up(store, clock, capped, "bob", "ALICE-1")
    nothing = sign_up(store, clock, capped, "carol", "ALICE-1").referral
    assert nothing.reward_cents == 0
    clock.advance(days=31)
    run_payout(store, MemoryReports(), clock, Period(2026, 3))
    reverse = reviews.reverse(store, clock, "admin", nothing.id, "refund")
    assert reverse.status is ReferralStatus.CLAWED_BACK
    with store.read() as uow:
        assert list(uow.rewards.for_referral(nothing.id)) == []  # no 0.00 report line
