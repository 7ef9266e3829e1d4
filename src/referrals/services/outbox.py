"""Delivering outbox events at least once, with backoff, into a dead-letter state at the
limit; pruning the delivered ones after their retention."""

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta

from referrals.domain.errors import InvalidInput, NotFound
from referrals.domain.model import Event, EventStatus
from referrals.ports import Clock, Notifier, Store
from referrals.services.audit import add_entry

logger = logging.getLogger("referrals.outbox")
CLAIM = timedelta(seconds=60)  # an event claimed by a dispatcher that died is retried after this
# Delivered events deleted per transaction, and transactions per `prune` call: each
# one short (a SQLite write lock held for milliseconds), the whole call bounded.
PRUNE_BATCH = 500
PRUNE_BATCHES = 20


def _no_checkpoint(_: str) -> None:
    return None


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    max_attempts: int = 8
    first_delay: timedelta = timedelta(seconds=2)
    max_delay: timedelta = timedelta(minutes=30)

    def delay(self, attempts: int) -> timedelta:
        """Exponential backoff: 2 s, 4 s, 8 s ... capped."""
        return min(self.first_delay * (1 << min(max(attempts - 1, 0), 30)), self.max_delay)


@dataclass(frozen=True, slots=True)
class DispatchResult:
    delivered: int = 0
    failed: int = 0
    dead: int = 0


def dispatch(
    store: Store,
    notifier: Notifier,
    clock: Clock,
    policy: RetryPolicy = RetryPolicy(),
    limit: int = 100,
    checkpoint: Callable[[str], None] = _no_checkpoint,
) -> DispatchResult:
    """Deliver the events that are due.

    Events are claimed (hidden for CLAIM) in one transaction, delivered outside
    any transaction, then marked, the delivered ones together in one more
    transaction (one per event made delivery cost as much as a signup). A crash
    between delivery and marking delivers those events again later, with the
    same ids: at least once, never lost.
    """
    now = clock.now()
    with store.unit_of_work() as uow:
        claimed = uow.outbox.claim_due(now, now + CLAIM, limit)
        uow.commit()
    delivered: list[str] = []
    failed = dead = 0
    for event in claimed:
        try:
            notifier.deliver(event)
        except Exception as error:
            attempts = event.attempts + 1
            give_up = attempts >= policy.max_attempts
            with store.unit_of_work() as uow:
                uow.outbox.attempt_failed(
                    event.id, _describe(error), clock.now() + policy.delay(attempts), give_up
                )
                uow.commit()
            failed += 1
            dead += give_up
            # One line per failed attempt, where operators look; the last one says
            # what to do, since nothing retries a dead letter by itself.
            if give_up:
                logger.warning(
                    "event %s (%s) is a dead letter after %d attempts: %s; "
                    "`referrals events retry %s` sends it again, "
                    "`referrals events discard %s` drops it",
                    event.id,
                    event.type,
                    attempts,
                    _describe(error),
                    event.id,
                    event.id,
                )
            else:
                logger.warning(
                    "event %s (%s) delivery failed (attempt %d of %d): %s; retried in %d s",
                    event.id,
                    event.type,
                    attempts,
                    policy.max_attempts,
                    _describe(error),
                    policy.delay(attempts).total_seconds(),
                )
            continue
        checkpoint("delivered")
        delivered.append(event.id)
    if delivered:
        with store.unit_of_work() as uow:
            uow.outbox.delivered(delivered)
            uow.commit()
    return DispatchResult(len(delivered), failed, dead)


def list_events(store: Store, status: EventStatus | None, limit: int = 100) -> Sequence[Event]:
    if not 1 <= limit <= 500:
        raise InvalidInput("limit must be between 1 and 500")
    with store.read() as uow:
        return uow.outbox.list(status, limit)


def requeue(store: Store, clock: Clock, event_id: str, actor: str | None = None) -> Event:
    """Send a dead-lettered event again; with `actor`, audited in the same transaction."""
    with store.unit_of_work() as uow:
        if not uow.outbox.requeue(event_id, clock.now()):
            raise NotFound(f"no dead event {event_id!r}")
        event = uow.outbox.get(event_id)
        if actor is not None:
            add_entry(uow, clock, actor, "event.retry", f"event:{event_id}", None)
        uow.commit()
    assert event is not None
    return event


def discard(store: Store, clock: Clock, event_id: str, actor: str | None = None) -> None:
    """Drop a dead-lettered event for good; with `actor`, audited in the same transaction."""
    with store.unit_of_work() as uow:
        if not uow.outbox.discard(event_id):
            raise NotFound(f"no dead event {event_id!r}")
        if actor is not None:
            add_entry(uow, clock, actor, "event.discard", f"event:{event_id}", None)
        uow.commit()


def prune(
    store: Store,
    clock: Clock,
    retention: timedelta,
    batch: int = PRUNE_BATCH,
    batches: int = PRUNE_BATCHES,
) -> int:
    """Delete the delivered events made more than `retention` ago, `batch` a transaction,
    at most `batches` transactions; how many were deleted (`batch * batches`: maybe
    more are left). Pending and dead events stay, whatever their age: a dead letter
    goes only when an operator retries (then it is delivered, and pruned in turn) or
    discards it."""
    before = clock.now() - retention
    pruned = 0
    for _ in range(batches):
        with store.unit_of_work() as uow:
            deleted = uow.outbox.prune_delivered(before, batch)
            uow.commit()
        pruned += deleted
        if deleted < batch:
            break
    return pruned


def _describe(error: Exception) -> str:
    return f"{type(error).__name__}: {error}"[:1000]
