import logging
from datetime import UTC, datetime, timedelta

import pytest

from referrals.adapters.memory import MemoryStore
from referrals.domain.errors import NotFound
from referrals.domain.model import Event, EventStatus, new_id
from referrals.domain.program import RuleVersion
from referrals.services.outbox import (
    RetryPolicy,
    discard,
    dispatch,
    list_events,
    prune,
    requeue,
)
from referrals.services.referrers import enroll
from referrals.services.signups import sign_up
from tests.clocks import FixedClock
from tests.fakes import RecordingNotifier

POLICY = RetryPolicy(max_attempts=3, first_delay=timedelta(seconds=10))


@pytest.fixture
def signed_up(store: MemoryStore, clock: FixedClock) -> str:
    code = enroll(store, clock, "alice").referrer.code
    return sign_up(store, clock, RuleVersion(), "bob", code).referral.id


def only_event(store: MemoryStore):  # type: ignore[no-untyped-def]
    (event,) = store.state.outbox.values()
    return event


def test_signup_writes_its_event_in_the_same_transaction(
    store: MemoryStore, clock: FixedClock, signed_up: str
) -> None:
    event = only_event(store)
    assert event.type == "referral.created" and event.payload["referral_id"] == signed_up
    assert event.status is EventStatus.PENDING


def test_a_refused_signup_writes_no_event(
    store: MemoryStore, clock: FixedClock, signed_up: str
) -> None:
    code = store.state.referrers["default", "alice"].code
    with pytest.raises(Exception, match="refer themselves"):
        sign_up(store, clock, RuleVersion(), "alice", code)
    sign_up(store, clock, RuleVersion(), "bob", code)  # a replay
    assert len(store.state.outbox) == 1


def test_dispatch_delivers_and_marks(store: MemoryStore, clock: FixedClock, signed_up: str) -> None:
    notifier = RecordingNotifier()
    assert dispatch(store, notifier, clock, POLICY).delivered == 1
    assert [e.payload["referral_id"] for e in notifier.delivered] == [signed_up]
    assert only_event(store).status is EventStatus.DELIVERED
    assert dispatch(store, notifier, clock, POLICY).delivered == 0


def test_failures_back_off_exponentially(
    store: MemoryStore, clock: FixedClock, signed_up: str
) -> None:
    notifier = RecordingNotifier(failures=2)
    start = clock.now()
    dispatch(store, notifier, clock, POLICY)
    assert only_event(store).next_attempt_at == start + timedelta(seconds=10)
    assert dispatch(store, notifier, clock, POLICY).failed == 0  # not due yet
    clock.advance(seconds=10)
    dispatch(store, notifier, clock, POLICY)
    assert only_event(store).next_attempt_at == clock.now() + timedelta(seconds=20)
    clock.advance(seconds=20)
    assert dispatch(store, notifier, clock, POLICY).delivered == 1
    assert only_event(store).attempts == 3


def test_gives_up_into_dead_letters_and_an_admin_can_retry(
    store: MemoryStore, clock: FixedClock, signed_up: str
) -> None:
    notifier = RecordingNotifier(failures=99)
    for _ in range(5):
        dispatch(store, notifier, clock, POLICY)
        clock.advance(hours=1)
    event = only_event(store)
    assert event.status is EventStatus.DEAD and event.attempts == 3
    assert "receiver down" in (event.last_error or "")
    assert [e.id for e in list_events(store, EventStatus.DEAD)] == [event.id]
    notifier.failures = 0
    assert requeue(store, clock, event.id).status is EventStatus.PENDING
    assert dispatch(store, notifier, clock, POLICY).delivered == 1


def test_a_failed_delivery_logs_one_warning_with_the_event_id_and_the_reason(
    store: MemoryStore, clock: FixedClock, signed_up: str, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="referrals.outbox"):
        dispatch(store, RecordingNotifier(failures=1), clock, POLICY)
    event = only_event(store)
    (record,) = [r for r in caplog.records if r.name == "referrals.outbox"]
    assert record.levelno == logging.WARNING
    message = record.getMessage()
    assert event.id in message and "ConnectionError: receiver down" in message
    assert "attempt 1 of 3" in message and "retried in 10 s" in message


def test_a_dead_letter_is_logged_as_a_warning_naming_the_retry_command(
    store: MemoryStore, clock: FixedClock, signed_up: str, caplog: pytest.LogCaptureFixture
) -> None:
    notifier = RecordingNotifier(failures=99)
    with caplog.at_level(logging.INFO, logger="referrals.outbox"):
        for _ in range(POLICY.max_attempts):
            dispatch(store, notifier, clock, POLICY)
            clock.advance(hours=1)
    event = only_event(store)
    # One WARNING per failed attempt, no more; the last one is the dead letter's.
    records = [r for r in caplog.records if r.name == "referrals.outbox"]
    assert [r.levelno for r in records] == [logging.WARNING] * POLICY.max_attempts
    message = records[-1].getMessage()
    assert event.id in message and "referral.created" in message and "receiver down" in message
    assert "dead letter" in message and "dead letter" not in records[-2].getMessage()
    assert f"referrals events retry {event.id}" in message
    assert f"referrals events discard {event.id}" in message


def test_a_requeue_by_an_actor_is_audited_with_it(
    store: MemoryStore, clock: FixedClock, signed_up: str
) -> None:
    notifier = RecordingNotifier(failures=99)
    for _ in range(POLICY.max_attempts):
        dispatch(store, notifier, clock, POLICY)
        clock.advance(hours=1)
    event = only_event(store)
    requeue(store, clock, event.id, actor="cli")
    (entry,) = store.state.audit.values()
    assert (entry.actor, entry.action, entry.target) == ("cli", "event.retry", f"event:{event.id}")
    with pytest.raises(NotFound):  # no longer dead: refused, and nothing more is audited
        requeue(store, clock, event.id, actor="cli")
    assert len(store.state.audit) == 1


def test_requeue_of_a_live_event_is_not_found(
    store: MemoryStore, clock: FixedClock, signed_up: str
) -> None:
    with pytest.raises(NotFound):
        requeue(store, clock, only_event(store).id)


def test_a_crash_after_delivery_delivers_again_with_the_same_id(
    store: MemoryStore, clock: FixedClock, signed_up: str
) -> None:
    notifier = RecordingNotifier()

    def crash(step: str) -> None:
        raise KeyboardInterrupt  # the process dies before marking the event delivered

    with pytest.raises(KeyboardInterrupt):
        dispatch(store, notifier, clock, POLICY, checkpoint=crash)
    assert dispatch(store, notifier, clock, POLICY).delivered == 0  # still claimed
    clock.advance(minutes=2)
    assert dispatch(store, notifier, clock, POLICY).delivered == 1
    first, second = notifier.delivered
    assert first.id == second.id


# --- pruning and discarding -----------------------------------------------------------

RETENTION = timedelta(days=30)


def made(clock: FixedClock, status: EventStatus) -> Event:
    """An event made now, its id minted now: the clock must be the wall clock's time."""
    return Event(new_id(datetime.now(UTC)), "referral.created", {}, clock.now(), status=status)


@pytest.fixture
def wall_clock() -> FixedClock:
    # Pruning reads event ids, minted by the wall clock: the test clock starts there.
    return FixedClock(datetime.now(UTC))


def add(store: MemoryStore, *events: Event) -> None:
    with store.unit_of_work() as uow:
        for event in events:
            uow.outbox.add(event)
        uow.commit()


def test_delivered_events_are_pruned_after_the_retention_pending_and_dead_kept(
    store: MemoryStore, wall_clock: FixedClock
) -> None:
    events = [made(wall_clock, status) for status in EventStatus]
    add(store, *events)

    wall_clock.advance(days=29)
    assert prune(store, wall_clock, RETENTION) == 0
    wall_clock.advance(days=2)
    assert prune(store, wall_clock, RETENTION) == 1
    assert {e.status for e in store.state.outbox.values()} == {
        EventStatus.PENDING,
        EventStatus.DEAD,
    }


def test_pruning_goes_in_bounded_batches(store: MemoryStore, wall_clock: FixedClock) -> None:
    add(store, *(made(wall_clock, EventStatus.DELIVERED) for _ in range(5)))
    wall_clock.advance(days=31)

    assert prune(store, wall_clock, RETENTION, batch=2, batches=2) == 4  # maybe more left
    assert len(store.state.outbox) == 1
    assert prune(store, wall_clock, RETENTION, batch=2, batches=2) == 1
    assert store.state.outbox == {}


def test_a_dead_letter_retried_then_delivered_is_pruned_in_turn(
    store: MemoryStore, wall_clock: FixedClock
) -> None:
    dead = made(wall_clock, EventStatus.DEAD)
    add(store, dead)
    wall_clock.advance(days=31)
    assert prune(store, wall_clock, RETENTION) == 0  # kept until retried or discarded

    requeue(store, wall_clock, dead.id)
    assert dispatch(store, RecordingNotifier(), wall_clock, POLICY).delivered == 1
    assert prune(store, wall_clock, RETENTION) == 1


def test_a_discarded_dead_letter_is_gone_and_audited(store: MemoryStore, clock: FixedClock) -> None:
    dead = made(clock, EventStatus.DEAD)
    add(store, dead)

    discard(store, clock, dead.id, actor="cli")

    assert store.state.outbox == {}
    (entry,) = store.state.audit.values()
    assert (entry.actor, entry.action, entry.target) == ("cli", "event.discard", f"event:{dead.id}")


def test_only_a_dead_letter_may_be_discarded(store: MemoryStore, clock: FixedClock) -> None:
    pending = made(clock, EventStatus.PENDING)
    add(store, pending)
    with pytest.raises(NotFound):
        discard(store, clock, pending.id, actor="cli")
    assert pending.id in store.state.outbox and store.state.audit == {}
