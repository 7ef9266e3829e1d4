"""API keys, dashboard sessions and kept secrets, in memory."""

from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime

from referrals.adapters.memory.state import State
from referrals.domain.errors import Conflict
from referrals.domain.model import (
    ApiKey,
    DashboardSession,
)


class MemoryApiKeys:
    def __init__(self, state: State) -> None:
        self._s = state

    def add(self, key: ApiKey) -> None:
        if key.key_hash in self._s.api_keys or any(
            k.id == key.id for k in self._s.api_keys.values()
        ):
            raise Conflict("key exists")
        self._s.api_keys[key.key_hash] = key

    def by_hash(self, key_hash: str) -> ApiKey | None:
        return self._s.api_keys.get(key_hash)

    def get(self, key_id: str) -> ApiKey | None:
        return next((k for k in self._s.api_keys.values() if k.id == key_id), None)

    def list(self) -> Sequence[ApiKey]:
        return sorted(self._s.api_keys.values(), key=lambda k: (k.created_at, k.id))

    def revoke(self, key: ApiKey, at: datetime) -> None:
        current = self._s.api_keys.get(key.key_hash)
        if current is None or current.revoked_at is not None:
            raise Conflict("the key was revoked meanwhile")
        self._s.api_keys[key.key_hash] = replace(current, revoked_at=at)

    def expire(self, key: ApiKey, at: datetime) -> None:
        current = self._s.api_keys.get(key.key_hash)
        if current is None or current.revoked_at is not None:
            raise Conflict("the key was revoked meanwhile")
        if current.expires_at != key.expires_at:
            raise Conflict("the key's expiry changed meanwhile")
        self._s.api_keys[key.key_hash] = replace(current, expires_at=at)

    def touch(self, key_hash: str, at: datetime, stale_before: datetime) -> None:
        current = self._s.api_keys.get(key_hash)
        if current is not None and (
            current.last_used_at is None or current.last_used_at <= stale_before
        ):
            self._s.api_keys[key_hash] = replace(current, last_used_at=at)

    def count(self) -> int:
        return len(self._s.api_keys)

    def first_created_at(self) -> datetime | None:
        return min((k.created_at for k in self._s.api_keys.values()), default=None)


class MemorySessions:
    def __init__(self, state: State) -> None:
        self._s = state

    def add(self, session: DashboardSession) -> None:
        if any(s.id == session.id for s in self._s.sessions.values()):
            raise Conflict("session exists")
        self._s.sessions[session.key_id, session.id] = session

    def get(self, key_id: str, session_id: str) -> DashboardSession | None:
        return self._s.sessions.get((key_id, session_id))

    def end(self, session: DashboardSession, at: datetime) -> None:
        current = self._s.sessions.get((session.key_id, session.id))
        if current is not None and current.ended_at is None:
            self._s.sessions[session.key_id, session.id] = replace(current, ended_at=at)


class MemorySecrets:
    def __init__(self, state: State) -> None:
        self._s = state

    def get(self, name: str) -> str | None:
        return self._s.secrets.get(name)

    def add(self, name: str, value: str, created_at: datetime) -> None:
        if name in self._s.secrets:
            raise Conflict(f"secret {name} exists")
        self._s.secrets[name] = value
