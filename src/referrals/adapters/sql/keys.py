"""Access records: API keys (stored hashed), dashboard sessions, and the secrets the
service keeps for itself.

A key's changes (revocation, expiry) are conditional updates, so a concurrent
revocation either comes first (nothing changes: Conflict) or waits for the change.
"""

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, func, insert, or_, select, update

from referrals.adapters.sql import rows
from referrals.adapters.sql.repository import Repository
from referrals.adapters.sql.schema import api_keys, service_secrets, sessions
from referrals.domain.model import ApiKey, DashboardSession

# Every authenticated request reads its key by hash.
_KEY_BY_HASH = select(api_keys).where(api_keys.c.key_hash == bindparam("key"))


class SqlApiKeys(Repository):
    def add(self, key: ApiKey) -> None:
        values = {
            "id": key.id,
            "key_hash": key.key_hash,
            "role": key.role.value,
            "created_at": key.created_at,
            "name": key.name,
            "expires_at": key.expires_at,
            "revoked_at": key.revoked_at,
            "last_used_at": key.last_used_at,
        }
        self._execute(insert(api_keys), values)

    def by_hash(self, key_hash: str) -> ApiKey | None:
        row = self._execute(_KEY_BY_HASH, {"key": key_hash}).first()
        return rows.api_key(row) if row else None

    def get(self, key_id: str) -> ApiKey | None:
        row = self._execute(select(api_keys).where(api_keys.c.id == key_id)).first()
        return rows.api_key(row) if row else None

    def list(self) -> Sequence[ApiKey]:
        query = select(api_keys).order_by(api_keys.c.created_at, api_keys.c.id)
        return [rows.api_key(row) for row in self._execute(query)]

    def revoke(self, key: ApiKey, at: datetime) -> None:
        self._change_unrevoked(key, {"revoked_at": at})

    def expire(self, key: ApiKey, at: datetime) -> None:
        read = api_keys.c.expires_at.is_not_distinct_from(key.expires_at)
        self._change_unrevoked(key, {"expires_at": at}, read)

    def _change_unrevoked(self, key: ApiKey, values: dict[str, Any], *conditions: Any) -> None:
        """Change an unrevoked key (on `conditions`), or raise Conflict."""
        statement = (
            update(api_keys)
            .where(api_keys.c.id == key.id, api_keys.c.revoked_at.is_(None), *conditions)
            .values(**values)
        )
        self._change_one(statement, {}, f"key {key.id} changed meanwhile")

    def touch(self, key_hash: str, at: datetime, stale_before: datetime) -> None:
        last = api_keys.c.last_used_at
        self._execute(
            update(api_keys)
            .where(api_keys.c.key_hash == key_hash, or_(last.is_(None), last <= stale_before))
            .values(last_used_at=at)
        )

    def count(self) -> int:
        return int(self._execute(select(func.count()).select_from(api_keys)).scalar_one())

    def first_created_at(self) -> datetime | None:
        first: datetime | None = self._execute(select(func.min(api_keys.c.created_at))).scalar()
        return first


class SqlSessions(Repository):
    def add(self, session: DashboardSession) -> None:
        values = {
            "id": session.id,
            "key_id": session.key_id,
            "created_at": session.created_at,
            "expires_at": session.expires_at,
            "ended_at": session.ended_at,
        }
        self._execute(insert(sessions), values)

    def get(self, key_id: str, session_id: str) -> DashboardSession | None:
        query = select(sessions).where(sessions.c.id == session_id, sessions.c.key_id == key_id)
        row = self._execute(query).first()
        return rows.session(row) if row else None

    def end(self, session: DashboardSession, at: datetime) -> None:
        self._execute(
            update(sessions)
            .where(sessions.c.id == session.id, sessions.c.ended_at.is_(None))
            .values(ended_at=at)
        )


class SqlSecrets(Repository):
    def get(self, name: str) -> str | None:
        query = select(service_secrets.c.value).where(service_secrets.c.name == name)
        value: str | None = self._execute(query).scalar_one_or_none()
        return value

    def add(self, name: str, value: str, created_at: datetime) -> None:
        values = {"name": name, "value": value, "created_at": created_at}
        self._execute(insert(service_secrets), values)
