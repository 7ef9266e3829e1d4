"""Who may do what: API keys, dashboard sessions, the service's secrets, the audit log."""

from collections.abc import Sequence
from datetime import datetime
from typing import Protocol

from referrals.domain.model import (
    ApiKey,
    AuditEntry,
    DashboardSession,
)


class ApiKeyRepository(Protocol):
    def add(self, key: ApiKey) -> None:
        """Insert; raises Conflict if the id or the hash is taken."""
        ...

    def by_hash(self, key_hash: str) -> ApiKey | None:
        """The key of this hash, in whatever state (the caller checks `ApiKey.active`)."""
        ...

    def get(self, key_id: str) -> ApiKey | None: ...

    def list(self) -> Sequence[ApiKey]:
        """Every key, revoked and expired ones too, oldest first (then by id)."""
        ...

    def revoke(self, key: ApiKey, at: datetime) -> None:
        """Mark `key` (as read) revoked at `at`. Conditional on it not being revoked:
        raises Conflict otherwise, at the latest on commit."""
        ...

    def expire(self, key: ApiKey, at: datetime) -> None:
        """Make `key` (as read) expire at `at`. Conditional on it not being revoked and
        its expiry being unchanged since read: raises Conflict otherwise, at the latest
        on commit."""
        ...

    def touch(self, key_hash: str, at: datetime, stale_before: datetime) -> None:
        """Record a use: set `last_used_at` to `at` if it is unset or not after `stale_before`,
        else change nothing. A store may raise Conflict on commit when a concurrent touch
        won; nothing is lost then."""
        ...

    def count(self) -> int: ...

    def first_created_at(self) -> datetime | None:
        """When the oldest key was made, or None if there is none: when the store was
        put to use (the first `serve` makes a key, and so does `keys create` before it)."""
        ...


class SessionRepository(Protocol):
    """Dashboard sessions, found by the key that signed in and the session's id."""

    def add(self, session: DashboardSession) -> None:
        """Insert; raises Conflict if the id is taken."""
        ...

    def get(self, key_id: str, session_id: str) -> DashboardSession | None: ...

    def end(self, session: DashboardSession, at: datetime) -> None:
        """Mark `session` ended at `at`, unless it has ended already."""
        ...


class SecretRepository(Protocol):
    """Secrets the service keeps for itself, by name (the signing secret when none is
    configured). Whoever reads the store reads them."""

    def get(self, name: str) -> str | None: ...

    def add(self, name: str, value: str, created_at: datetime) -> None:
        """Insert; raises Conflict (at the latest on commit) if `name` is taken."""
        ...


class AuditRepository(Protocol):
    def add(self, entry: AuditEntry) -> None: ...

    def list(self, before_id: str | None, limit: int) -> Sequence[AuditEntry]:
        """Entries newest first (by id), those before `before_id`."""
        ...
