"""Reward states beyond paid, receipts, hold periods and the audit log, on every store."""

from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from referrals.domain.errors import Conflict
from referrals.domain.model import (
    AuditEntry,
    Check,
    Earnings,
    Receipt,
    Referral,
    ReferralStatus,
    Referrer,
    SignupParties,
    new_id,
)
from referrals.ports import Store
from referrals.services.retry import retry_on_conflict
from tests.contract.test_payout_store import CUTOFF, assign, claim, seed
from tests.contract.test_store import T0, add_referrer, referral, referrer

HELD, PENDING = ReferralStatus.HELD, ReferralStatus.PENDING
RECEIPT = Receipt(
    rule="signup",
    tier_threshold=5,
    tier_cents=1500,
    hold_days=14,
    checks=(Check("email_alias", True), Check("disposable_email", False, "mailinator.com")),
)


def held(referrer_id: str, referee_id: str, ordinal: int, **changes: object) -> Referral:
    return referral(referrer_id, referee_id, ordinal, status=HELD, receipt=RECEIPT, **changes)


def get(store: Store, referral_id: str) -> Referral:
    with store.read() as uow:
        found = uow.referrals.get(referral_id)
    assert found is not None
    return found


def transition(
    store: Store, referral_id: str, allowed: set[ReferralStatus], to: ReferralStatus, note: str
) -> Referral | None:
    def attempt() -> Referral | None:
        with store.unit_of_work() as uow:
            changed = uow.referrals.transition(referral_id, allowed, to, note)
            uow.commit()
            return changed

    return retry_on_conflict(attempt)


def test_receipt_hold_and_note_round_trip(store: Store) -> None:
    add_referrer(store, referrer("alice", "A1"))
    r = held("alice", "bob", 1, hold=timedelta(days=14), note="why not")
    seed(store, [r])
    assert get(store, r.id) == r
    assert r.receipt is not None and r.receipt.failed == (RECEIPT.checks[1],)


def test_a_reward_without_hold_is_payable_at_once(store: Store) -> None:
    add_referrer(store, referrer("alice", "A1"))
    r = referral("alice", "bob", 1)
    seed(store, [r])
    assert get(store, r.id).payable_at == r.created_at == T0
    assert get(store, r.id).receipt is None


def test_referrer_fingerprints_round_trip_and_come_with_the_parties(store: Store) -> None:
    alice = Referrer("alice", "A1", None, 0, T0, ip_hash="ip-1", device_hash="dev-1")
    add_referrer(store, alice)
    with store.read() as uow:
        assert uow.referrers.get("alice") == alice
    with store.unit_of_work() as uow:
        counted = replace(alice, referral_count=1)
        assert uow.referrals.parties_counted("a1", "bob") == SignupParties(counted, None, None)


def test_transition_moves_an_allowed_state_and_records_the_note(store: Store) -> None:
    add_referrer(store, referrer("alice", "A1"))
    r = held("alice", "bob", 1)
    seed(store, [r])
    changed = transition(store, r.id, {HELD}, PENDING, "looks fine")
    assert changed is not None and changed.status is PENDING and changed.note == "looks fine"
    assert get(store, r.id) == changed
    assert changed.receipt == RECEIPT and changed.reward_cents == r.reward_cents


def test_transition_from_another_state_changes_nothing(store: Store) -> None:
    add_referrer(store, referrer("alice", "A1"))
    r = referral("alice", "bob", 1, status=ReferralStatus.PAID, payout_period="2026-01")
    seed(store, [r])
    assert transition(store, r.id, {HELD, PENDING}, ReferralStatus.REVERSED, "no") is None
    assert transition(store, "01NOSUCHREFERRAL0000000000", {HELD}, PENDING, "no") is None
    assert get(store, r.id) == r


def test_concurrent_reviews_of_one_reward_have_one_winner(store: Store) -> None:
    add_referrer(store, referrer("alice", "A1"))
    r = held("alice", "bob", 1)
    seed(store, [r])
    outcomes = [PENDING, ReferralStatus.REJECTED] * 4

    def review(to: ReferralStatus) -> Referral | None:
        return transition(store, r.id, {HELD}, to, f"to {to}")

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(review, outcomes))
    winners = [result for result in results if result is not None]
    assert len(winners) == 1
    assert get(store, r.id) == winners[0]


def test_held_rejected_and_reversed_rewards_are_never_assigned(store: Store) -> None:
    add_referrer(store, referrer("alice", "A1"))
    rows = [
        held("alice", "held", 1),
        referral("alice", "rejected", 2, status=ReferralStatus.REJECTED),
        referral("alice", "reversed", 3, status=ReferralStatus.REVERSED),
        referral("alice", "pending", 4, reward_cents=2500),
    ]
    seed(store, rows)
    with store.read() as uow:
        assert [
            (line.referral_count, line.amount_cents)
            for line in uow.payouts.preview("2026-10", CUTOFF)
        ] == [(1, 2500)]
    assert claim(store, "one")
    assert sum(assign(store, 10)) == 1
    assert [get(store, r.id).status for r in rows[:3]] == [HELD, *(r.status for r in rows[1:3])]


def test_an_approved_reward_is_paid_by_the_next_run(store: Store) -> None:
    add_referrer(store, referrer("alice", "A1"))
    r = held("alice", "bob", 1)
    seed(store, [r])
    assert transition(store, r.id, {HELD}, PENDING, "ok") is not None
    assert claim(store, "one")
    assert assign(store, 10) == [1]
    assert get(store, r.id).status is ReferralStatus.PROCESSING


def test_a_reward_still_on_hold_at_the_cutoff_waits_for_a_later_run(store: Store) -> None:
    add_referrer(store, referrer("alice", "A1"))
    just_before = CUTOFF - timedelta(days=14)
    on_hold = referral("alice", "bob", 1, created_at=just_before, hold=timedelta(days=14))
    free = referral(
        "alice", "carol", 2, created_at=just_before, hold=timedelta(days=14, microseconds=-1)
    )
    seed(store, [on_hold, free])
    with store.read() as uow:
        assert [line.referral_count for line in uow.payouts.preview("2026-10", CUTOFF)] == [1]
    assert claim(store, "one")
    assert assign(store, 10) == [1]
    assert get(store, on_hold.id).status is PENDING
    assert get(store, free.id).status is ReferralStatus.PROCESSING


def test_earnings_count_held_apart_and_ignore_rejected_and_reversed(store: Store) -> None:
    add_referrer(store, referrer("alice", "A1"))
    seed(
        store,
        [
            held("alice", "a1", 1, reward_cents=1000),
            referral("alice", "a2", 2, reward_cents=1500),
            referral("alice", "a3", 3, reward_cents=2000, status=ReferralStatus.PAID),
            referral("alice", "a4", 4, reward_cents=4000, status=ReferralStatus.REJECTED),
            referral("alice", "a5", 5, reward_cents=8000, status=ReferralStatus.REVERSED),
        ],
    )
    with store.read() as uow:
        assert uow.referrers.earnings("alice", T0) == Earnings(
            payable_cents=1500, paid_cents=2000, held_cents=1000
        )


def test_the_review_queue_is_the_held_rewards_in_id_order(store: Store) -> None:
    add_referrer(store, referrer("alice", "A1"))
    rows = [held("alice", f"h{n}", n) if n % 2 else referral("alice", f"p{n}", n) for n in range(6)]
    seed(store, rows)
    with store.read() as uow:
        first = uow.referrals.search(HELD, None, None, 2)
        rest = uow.referrals.search(HELD, None, first[-1].id, 10)
    assert [r.id for r in [*first, *rest]] == sorted(r.id for r in rows if r.status is HELD)


def entry(action: str, **changes: object) -> AuditEntry:
    values: dict[str, object] = {
        "id": new_id(datetime.now(UTC)),
        "at": T0,
        "actor": "key-1",
        "action": action,
        "target": "referral:01ABC",
        "reason": None,
    }
    values.update(changes)
    return AuditEntry(**values)  # type: ignore[arg-type]


def test_audit_entries_list_newest_first_in_pages(store: Store) -> None:
    entries = [entry(f"action.{n}", reason=f"because {n}" if n % 2 else None) for n in range(5)]
    with store.unit_of_work() as uow:
        for e in entries:
            uow.audit.add(e)
        uow.commit()
    newest_first = sorted(entries, key=lambda e: e.id, reverse=True)
    with store.read() as uow:
        page = uow.audit.list(None, 3)
        assert list(page) == newest_first[:3]
        assert list(uow.audit.list(page[-1].id, 3)) == newest_first[3:]


def test_audit_entries_are_written_with_the_work_they_record(store: Store) -> None:
    with pytest.raises(RuntimeError), store.unit_of_work() as uow:
        uow.audit.add(entry("payout.run"))
        raise RuntimeError("the action failed")
    with store.read() as uow:
        assert list(uow.audit.list(None, 10)) == []


def test_an_audit_entry_id_is_written_once(store: Store) -> None:
    first = entry("one")
    with store.unit_of_work() as uow:
        uow.audit.add(first)
        uow.commit()
    with pytest.raises(Conflict), store.unit_of_work() as uow:
        uow.audit.add(entry("two", id=first.id))
        uow.commit()
