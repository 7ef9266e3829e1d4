"""Pruning and discarding outbox events: the same behaviour from every store."""

import secrets
from datetime import UTC, datetime, timedelta

from referrals.domain.model import Event, EventStatus, ulid
from referrals.ports import Store

NOW = datetime(2026, 3, 14, 12, 0, tzinfo=UTC)
CUTOFF = NOW - timedelta(days=30)


def minted(at: datetime) -> str:
    """An id minted at `at`, as `new_id` mints one when the event is made."""
    millis = (at - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(milliseconds=1)
    return ulid(millis << 80 | secrets.randbits(80))


def made(at: datetime, status: EventStatus, id_at: datetime | None = None) -> Event:
    pending = status is EventStatus.PENDING
    return Event(
        minted(id_at or at),
        "referral.created",
        {"n": 1},
        at,
        status=status,
        attempts=0 if pending else 1,
        next_attempt_at=at if status is not EventStatus.DELIVERED else None,
        last_error="HTTP 503" if status is EventStatus.DEAD else None,
    )


def add(store: Store, *events: Event) -> None:
    with store.unit_of_work() as uow:
        for event in events:
            uow.outbox.add(event)
        uow.commit()


def prune(store: Store, limit: int) -> int:
    with store.unit_of_work() as uow:
        pruned = uow.outbox.prune_delivered(CUTOFF, limit)
        uow.commit()
    return pruned


def remaining(store: Store) -> set[str]:
    with store.read() as uow:
        return {e.id for e in uow.outbox.list(None, 100)}


def test_outbox_prunes_delivered_events_made_before_the_cutoff_oldest_first(
    store: Store,
) -> None:
    old = [made(CUTOFF - timedelta(days=d), EventStatus.DELIVERED) for d in (3, 1, 2)]
    recent = made(CUTOFF + timedelta(minutes=1), EventStatus.DELIVERED)
    add(store, *old, recent)

    assert prune(store, 2) == 2  # a bounded batch: the two oldest
    assert remaining(store) == {old[1].id, recent.id}
    assert prune(store, 2) == 1
    assert prune(store, 2) == 0
    assert remaining(store) == {recent.id}


def test_outbox_pruning_keeps_pending_and_dead_events_whatever_their_age(store: Store) -> None:
    long_ago = CUTOFF - timedelta(days=365)
    pending = made(long_ago, EventStatus.PENDING)
    dead = made(long_ago, EventStatus.DEAD)
    delivered = made(long_ago, EventStatus.DELIVERED)
    add(store, pending, dead, delivered)

    assert prune(store, 10) == 1
    assert remaining(store) == {pending.id, dead.id}
    with store.read() as uow:
        assert uow.outbox.backlog() == 1
        assert [e.id for e in uow.outbox.list(EventStatus.DEAD, 10)] == [dead.id]


def test_outbox_pruning_keeps_an_event_whose_id_was_minted_after_the_cutoff(
    store: Store,
) -> None:
    # Made before the cutoff by its `created_at` (a clock set back), but its id is
    # recent: both must be old, so that a store may read an id range.
    event = made(CUTOFF - timedelta(days=1), EventStatus.DELIVERED, id_at=NOW)
    add(store, event)

    assert prune(store, 10) == 0
    assert remaining(store) == {event.id}


def test_outbox_prunes_an_event_delivered_through_the_store(store: Store) -> None:
    # Delivered as the dispatcher marks it, not added so: the state pruning looks for.
    event = made(CUTOFF - timedelta(days=1), EventStatus.PENDING)
    add(store, event)
    with store.unit_of_work() as uow:
        uow.outbox.delivered([event.id])
        uow.commit()

    assert prune(store, 10) == 1
    assert remaining(store) == set()


def test_outbox_discards_a_dead_event_only(store: Store) -> None:
    dead = made(NOW, EventStatus.DEAD)
    pending = made(NOW, EventStatus.PENDING)
    add(store, dead, pending)

    with store.unit_of_work() as uow:
        assert not uow.outbox.discard(pending.id)
        assert not uow.outbox.discard("01ZZZZZZZZZZZZZZZZZZZZZZZZ")
        assert uow.outbox.discard(dead.id)
        uow.commit()

    assert remaining(store) == {pending.id}
    with store.unit_of_work() as uow:
        assert not uow.outbox.discard(dead.id)  # gone already
