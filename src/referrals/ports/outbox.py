"""Events written with the state they announce, and what delivers them."""

from collections.abc import Sequence
from datetime import datetime
from typing import Protocol

from referrals.domain.model import (
    Event,
    EventStatus,
)


class OutboxRepository(Protocol):
    def add(self, event: Event) -> None: ...

    def get(self, event_id: str) -> Event | None: ...

    def claim_due(self, now: datetime, until: datetime, limit: int) -> Sequence[Event]:
        """Pending events due by `now`, hidden from other dispatchers until `until`."""
        ...

    def delivered(self, event_ids: Sequence[str]) -> None: ...

    def attempt_failed(
        self, event_id: str, error: str, next_attempt_at: datetime, dead: bool
    ) -> None: ...

    def list(self, status: EventStatus | None, limit: int) -> Sequence[Event]:
        """Events, newest first."""
        ...

    def requeue(self, event_id: str, now: datetime) -> bool:
        """Send a dead event again; False if there is no such dead event."""
        ...

    def backlog(self) -> int:
        """How many events wait for delivery."""
        ...

    def prune_delivered(self, before: datetime, limit: int) -> int:
        """Delete at most `limit` delivered events made before `before`, the oldest first;
        how many were deleted. Made before means both `created_at` and the id (a ULID,
        minted as the event is made) fall before it, so a store reads an id range, not
        every delivered event. Pending and dead events are kept whatever their age."""
        ...

    def discard(self, event_id: str) -> bool:
        """Delete a dead event (the operator gave up on it); False if there is no such
        dead event."""
        ...


class Notifier(Protocol):
    def deliver(self, event: Event) -> None:
        """Deliver one event or raise; delivery is retried, so receivers dedupe by event id."""
        ...
