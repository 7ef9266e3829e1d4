"""Payout runs and the outbox: the same behaviour from every store."""

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from referrals.domain.errors import NotFound
from referrals.domain.model import Event, EventStatus, Referral, ReferralStatus, RunStatus, new_id
from referrals.ports import LeaseLost, Store
from referrals.services import outbox
from tests.clocks import FixedClock
from tests.contract.test_store import add_referrer, referral, referrer

CUTOFF = datetime(2026, 11, 1, tzinfo=UTC)
NOW = datetime(2026, 11, 25, tzinfo=UTC)
LEASE = timedelta(seconds=30)


def seed(store: Store, rows: list[Referral]) -> None:
    with store.unit_of_work() as uow:
        for r in rows:
            uow.referrals.add(r)
        uow.commit()


@pytest.fixture
def rewards(store: Store) -> list[Referral]:
    for user in ("alice", "bob"):
        add_referrer(store, referrer(user, user.upper()))
    just_before = CUTOFF - timedelta(microseconds=1)
    rows = [
        referral("bob", "b1", 1, created_at=just_before, reward_cents=1000),
        referral("alice", "a1", 1, created_at=datetime(2026, 3, 1, tzinfo=UTC), reward_cents=1000),
        referral("alice", "a2", 2, created_at=just_before, reward_cents=1500),
        referral("alice", "a3", 3, created_at=CUTOFF, reward_cents=2000),
    ]
    seed(store, rows)
    return rows


def claim(store: Store, owner: str, now: datetime = NOW, period: str = "2026-10") -> bool:
    with store.unit_of_work() as uow:
        taken = uow.payouts.claim(period, CUTOFF, owner, now, now + LEASE)
        uow.commit()
    return taken


def assign(store: Store, limit: int, period: str = "2026-10", owner: str = "one") -> list[int]:
    """Assign in batches of `limit` until done, as a run does: lease renewed in each
    batch, each batch starting where the store said the last one stopped."""
    moved = []
    after: str | None = None
    while True:
        with store.unit_of_work() as uow:
            assert uow.payouts.renew(period, owner, NOW + LEASE)
            count, after = uow.payouts.assign_batch(period, CUTOFF, limit, after)
            moved.append(count)
            uow.commit()
        if moved[-1] < limit:
            return moved


def test_claim_creates_a_running_run(store: Store) -> None:
    assert claim(store, "one")
    with store.read() as uow:
        run = uow.payouts.get("2026-10")
    assert run is not None and run.status is RunStatus.RUNNING
    assert run.lease_owner == "one" and run.lease_expires_at == NOW + LEASE
    assert run.cutoff == CUTOFF and run.started_at == NOW


def test_a_live_lease_cannot_be_claimed_by_another_owner(store: Store) -> None:
    assert claim(store, "one")
    assert not claim(store, "two", NOW + LEASE - timedelta(seconds=1))
    assert claim(store, "one", NOW + timedelta(seconds=5))  # the holder may resume


def test_an_expired_lease_can_be_taken_over(store: Store) -> None:
    assert claim(store, "one")
    assert claim(store, "two", NOW + LEASE + timedelta(seconds=1))
    with store.unit_of_work() as uow:
        assert not uow.payouts.renew("2026-10", "one", NOW + LEASE * 3)
        assert uow.payouts.renew("2026-10", "two", NOW + LEASE * 3)
        uow.commit()


def test_assign_moves_pending_rewards_before_the_cutoff_in_batches(
    store: Store, rewards: list[Referral]
) -> None:
    claim(store, "one")
    assert assign(store, 2) == [2, 1]
    with store.read() as uow:
        got = {
            r.referee_id: (r.status, r.payout_period)
            for r in uow.referrals.search(None, None, None, 10)
        }
    processing = (ReferralStatus.PROCESSING, "2026-10")
    assert got == {
        "a1": processing,
        "a2": processing,
        "b1": processing,
        "a3": (ReferralStatus.PENDING, None),
    }


def test_a_reward_assigned_to_one_run_is_not_assigned_to_another(
    store: Store, rewards: list[Referral]
) -> None:
    claim(store, "one", period="2026-09")
    claim(store, "one")
    assert assign(store, 10, period="2026-09") == [3]
    assert assign(store, 10) == [0]


def test_lines_aggregate_assigned_rewards_by_referrer_id(
    store: Store, rewards: list[Referral]
) -> None:
    claim(store, "one")
    assign(store, 10)
    with store.read() as uow:
        lines = [
            (x.referrer_id, x.referral_count, x.amount_cents) for x in uow.payouts.lines("2026-10")
        ]
    assert lines == [("alice", 2, 2500), ("bob", 1, 1000)]


def test_preview_shows_assigned_and_eligible_pending(store: Store, rewards: list[Referral]) -> None:
    claim(store, "one")
    with store.unit_of_work() as uow:
        uow.payouts.renew("2026-10", "one", NOW + LEASE)
        assert uow.payouts.assign_batch("2026-10", CUTOFF, 1)[0] == 1
        uow.commit()
    with store.read() as uow:
        lines = [(x.referrer_id, x.amount_cents) for x in uow.payouts.preview("2026-10", CUTOFF)]
    assert lines == [("alice", 2500), ("bob", 1000)]


def test_complete_marks_paid_only_for_the_lease_holder(
    store: Store, rewards: list[Referral]
) -> None:
    claim(store, "one")
    assign(store, 10)
    with store.read() as uow:
        run = uow.payouts.get("2026-10")
    assert run is not None
    done = replace(run, status=RunStatus.COMPLETED, total_cents=3500, completed_at=NOW)
    with store.unit_of_work() as uow, pytest.raises(LeaseLost):
        uow.payouts.complete(done, "two")
    with store.unit_of_work() as uow:
        assert uow.payouts.complete(done, "one") == 3
        uow.commit()
    with store.read() as uow:
        stored = uow.payouts.get("2026-10")
        assert stored is not None and stored.status is RunStatus.COMPLETED
        assert stored.total_cents == 3500 and stored.lease_owner is None
        assert uow.payouts.last_completed() == stored
        assert uow.referrers.earnings("alice", NOW).paid_cents == 2500
        assert not claim(store, "three", NOW + LEASE * 10)


def test_fail_releases_the_lease(store: Store) -> None:
    claim(store, "one")
    with store.unit_of_work() as uow:
        uow.payouts.fail("2026-10", "one", "S3 down")
        uow.commit()
    with store.read() as uow:
        run = uow.payouts.get("2026-10")
    assert run is not None and run.status is RunStatus.FAILED and run.error == "S3 down"
    assert claim(store, "two")


def test_runs_list_newest_period_first(store: Store) -> None:
    with store.unit_of_work() as uow:
        for period in ("2026-08", "2026-10", "2026-09"):
            uow.payouts.claim(period, CUTOFF, "one", NOW, NOW + LEASE)
        uow.commit()
    with store.read() as uow:
        assert [r.period for r in uow.payouts.list()] == ["2026-10", "2026-09", "2026-08"]


def event(at: datetime, **changes: object) -> Event:
    base = Event(
        new_id(datetime.now(UTC)), "referral.created", {"n": 1, "s": "x"}, at, next_attempt_at=at
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def test_outbox_round_trips_and_claims_due_events_once(store: Store) -> None:
    due, later = event(NOW), event(NOW, next_attempt_at=NOW + timedelta(minutes=5))
    with store.unit_of_work() as uow:
        uow.outbox.add(due)
        uow.outbox.add(later)
        uow.commit()
    with store.read() as uow:
        assert uow.outbox.get(due.id) == due
        assert uow.outbox.backlog() == 2
    with store.unit_of_work() as uow:
        claimed = uow.outbox.claim_due(NOW, NOW + timedelta(seconds=60), 10)
        uow.commit()
    assert claimed == [replace(due, next_attempt_at=NOW + timedelta(seconds=60))]
    with store.unit_of_work() as uow:
        assert uow.outbox.claim_due(NOW, NOW + timedelta(seconds=60), 10) == []


def test_outbox_claims_at_most_the_limit_oldest_due_first(store: Store) -> None:
    events = [event(NOW, next_attempt_at=NOW - timedelta(seconds=s)) for s in (1, 4, 3, 2)]
    until = NOW + timedelta(seconds=60)
    with store.unit_of_work() as uow:
        for e in events:
            uow.outbox.add(e)
        uow.commit()
    claims = []
    for _ in range(3):
        with store.unit_of_work() as uow:
            claims.append(uow.outbox.claim_due(NOW, until, 2))
            uow.commit()
    # Claimed in the order they fell due; each claim hides its events until `until`.
    assert [{e.id for e in claim} for claim in claims] == [
        {events[1].id, events[2].id},
        {events[3].id, events[0].id},
        set(),
    ]
    assert {e.next_attempt_at for claim in claims for e in claim} == {until}


def test_outbox_marks_several_events_delivered_at_once(store: Store) -> None:
    events = [event(NOW) for _ in range(3)]
    with store.unit_of_work() as uow:
        for e in events:
            uow.outbox.add(e)
        uow.commit()
    with store.unit_of_work() as uow:
        uow.outbox.delivered([events[0].id, events[2].id])
        uow.commit()
    with store.read() as uow:
        marked = [uow.outbox.get(e.id) for e in events]
        assert uow.outbox.backlog() == 1
    assert [e.status if e else None for e in marked] == [
        EventStatus.DELIVERED,
        EventStatus.PENDING,
        EventStatus.DELIVERED,
    ]
    assert [e.attempts if e else None for e in marked] == [1, 0, 1]


def test_outbox_failure_dead_letter_and_requeue(store: Store) -> None:
    e = event(NOW)
    with store.unit_of_work() as uow:
        uow.outbox.add(e)
        uow.commit()
    with store.unit_of_work() as uow:
        uow.outbox.attempt_failed(e.id, "503", NOW + timedelta(seconds=4), dead=False)
        uow.commit()
    with store.read() as uow:
        failed = uow.outbox.get(e.id)
    assert failed is not None and failed.attempts == 1 and failed.last_error == "503"
    assert failed.next_attempt_at == NOW + timedelta(seconds=4)
    with store.unit_of_work() as uow:
        assert not uow.outbox.requeue(e.id, NOW)  # not dead yet
        uow.outbox.attempt_failed(e.id, "503", NOW, dead=True)
        uow.commit()
    with store.unit_of_work() as uow:
        assert [x.id for x in uow.outbox.list(EventStatus.DEAD, 10)] == [e.id]
        assert uow.outbox.backlog() == 0
        assert uow.outbox.requeue(e.id, NOW)
        uow.outbox.delivered([e.id])
        uow.commit()
    with store.read() as uow:
        delivered = uow.outbox.get(e.id)
    assert delivered is not None and delivered.status is EventStatus.DELIVERED


def test_a_requeue_and_its_audit_entry_commit_together(store: Store) -> None:
    e = event(NOW)
    with store.unit_of_work() as uow:
        uow.outbox.add(e)
        uow.commit()
    with store.unit_of_work() as uow:
        uow.outbox.attempt_failed(e.id, "503", NOW, dead=True)
        uow.commit()
    clock = FixedClock(NOW)
    assert outbox.requeue(store, clock, e.id, actor="cli").status is EventStatus.PENDING
    with pytest.raises(NotFound):
        outbox.requeue(store, clock, e.id, actor="cli")  # not dead now: refused, not audited
    with store.read() as uow:
        entries = [(a.actor, a.action, a.target) for a in uow.audit.list(None, 10)]
    assert entries == [("cli", "event.retry", f"event:{e.id}")]


def test_lines_are_in_byte_order_of_referrer_ids_whatever_the_collation(store: Store) -> None:
    # A locale collation would sort these _y, -x, a, B; the report must not depend on it.
    ids = ["B", "a", "-x", "_y"]
    for n, user in enumerate(ids):
        add_referrer(store, referrer(user, f"CODE{n}"))
    seed(store, [referral(user, f"referee-{n}", 1) for n, user in enumerate(ids)])
    claim(store, "one")
    assign(store, 10)
    with store.read() as uow:
        assert [x.referrer_id for x in uow.payouts.lines("2026-10")] == ["-x", "B", "_y", "a"]
        preview = [x.referrer_id for x in uow.payouts.preview("2026-10", CUTOFF)]
    assert preview == ["-x", "B", "_y", "a"]
