"""The outbox and the audit log, in memory."""

from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime

from referrals.adapters.memory.state import State
from referrals.domain.errors import Conflict
from referrals.domain.model import (
    AuditEntry,
    Event,
    EventStatus,
    first_id_at,
)


class MemoryOutbox:
    def __init__(self, state: State) -> None:
        self._s = state

    def add(self, event: Event) -> None:
        if event.id in self._s.outbox:
            raise Conflict("event exists")
        self._s.outbox[event.id] = event

    def get(self, event_id: str) -> Event | None:
        return self._s.outbox.get(event_id)

    def claim_due(self, now: datetime, until: datetime, limit: int) -> Sequence[Event]:
        due = sorted(
            (e for e in self._s.outbox.values() if _is_due(e, now)),
            key=lambda e: (e.next_attempt_at, e.id),
        )[:limit]
        for event in due:
            self._s.outbox[event.id] = replace(event, next_attempt_at=until)
        return sorted((self._s.outbox[e.id] for e in due), key=lambda e: e.id)

    def delivered(self, event_ids: Sequence[str]) -> None:
        for event_id in event_ids:
            event = self._s.outbox[event_id]
            self._s.outbox[event_id] = replace(
                event,
                status=EventStatus.DELIVERED,
                attempts=event.attempts + 1,
                next_attempt_at=None,
                last_error=None,
            )

    def attempt_failed(
        self, event_id: str, error: str, next_attempt_at: datetime, dead: bool
    ) -> None:
        event = self._s.outbox[event_id]
        self._s.outbox[event_id] = replace(
            event,
            status=EventStatus.DEAD if dead else EventStatus.PENDING,
            attempts=event.attempts + 1,
            next_attempt_at=next_attempt_at,
            last_error=error,
        )

    def list(self, status: EventStatus | None, limit: int) -> Sequence[Event]:
        events = sorted(self._s.outbox.values(), key=lambda e: e.id, reverse=True)
        return [e for e in events if status is None or e.status is status][:limit]

    def requeue(self, event_id: str, now: datetime) -> bool:
        event = self._s.outbox.get(event_id)
        if event is None or event.status is not EventStatus.DEAD:
            return False
        self._s.outbox[event_id] = replace(
            event, status=EventStatus.PENDING, attempts=0, next_attempt_at=now
        )
        return True

    def backlog(self) -> int:
        return sum(e.status is EventStatus.PENDING for e in self._s.outbox.values())

    def prune_delivered(self, before: datetime, limit: int) -> int:
        first_kept = first_id_at(before)
        old = sorted(
            event_id
            for event_id, e in self._s.outbox.items()
            if e.status is EventStatus.DELIVERED and e.created_at < before and event_id < first_kept
        )[:limit]
        for event_id in old:
            del self._s.outbox[event_id]
        return len(old)

    def discard(self, event_id: str) -> bool:
        event = self._s.outbox.get(event_id)
        if event is None or event.status is not EventStatus.DEAD:
            return False
        del self._s.outbox[event_id]
        return True


class MemoryAudit:
    def __init__(self, state: State) -> None:
        self._s = state

    def add(self, entry: AuditEntry) -> None:
        if entry.id in self._s.audit:
            raise Conflict("audit entry exists")
        self._s.audit[entry.id] = entry

    def list(self, before_id: str | None, limit: int) -> Sequence[AuditEntry]:
        ids = sorted((i for i in self._s.audit if before_id is None or i < before_id), reverse=True)
        return [self._s.audit[i] for i in ids[:limit]]


def _is_due(event: Event, now: datetime) -> bool:
    return (
        event.status is EventStatus.PENDING
        and event.next_attempt_at is not None
        and event.next_attempt_at <= now
    )
