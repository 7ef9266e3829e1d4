"""API keys, dashboard sessions and the service's own secrets on DynamoDB.

Keys are few (made by hand): they share one partition, `KEYS`, sorted by the key's
hash, so a request's key is a GetItem and the admin's lists read the partition. An
id claim (`KEYID#<id>` / `KEYID`) keeps ids unique; a key's sessions live in that
partition too (`SESSION#<id>`), so the cookie, which names both, finds its session
with a GetItem. A secret (`SECRET#<name>` / `SECRET`) is created once, by the
conditional Put of the commit: of two creators, one gets a Conflict.
"""

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from boto3.dynamodb.conditions import Attr, ConditionBase, Key

from referrals.adapters.dynamodb import items
from referrals.adapters.dynamodb.access import Tables
from referrals.adapters.dynamodb.expressions import Values, update, update_with
from referrals.adapters.dynamodb.transaction import Transaction
from referrals.adapters.times import from_micros, to_micros
from referrals.domain.model import ApiKey, DashboardSession

KEYS = Key("pk").eq("KEYS")


class DynamoApiKeys:
    def __init__(self, tables: Tables, tx: Transaction) -> None:
        self._tables = tables
        self._tx = tx

    def add(self, key: ApiKey) -> None:
        self._tx.create(self._tables.main, items.api_key_item(key))
        # Ids are unique too (the first admin key's fixed id decides races): claim it.
        self._tx.create(self._tables.main, {"pk": f"KEYID#{key.id}", "sk": "KEYID"})

    def by_hash(self, key_hash: str) -> ApiKey | None:
        item = self._tables.get(self._tables.main, items.api_key_key(key_hash))
        return items.api_key(item) if item is not None else None

    def get(self, key_id: str) -> ApiKey | None:
        # An admin's look-up by id reads the partition, filtered, rather than keeping a
        # second item per key in step.
        found = self._tables.query(
            self._tables.main, KEYS, filter=Attr("id").eq(key_id), consistent=True
        )
        return next((items.api_key(item) for item in found), None)

    def list(self) -> Sequence[ApiKey]:
        found = self._tables.query(self._tables.main, KEYS, consistent=True)
        return sorted((items.api_key(item) for item in found), key=lambda k: (k.created_at, k.id))

    def _update(self, key_hash: str, changes: dict[str, Any], condition: ConditionBase) -> None:
        self._tx.write(
            update(
                self._tables.main,
                items.api_key_key(key_hash),
                set=changes,
                condition=Attr("pk").exists() & condition,
            )
        )

    def revoke(self, key: ApiKey, at: datetime) -> None:
        condition = Attr("revoked_at").not_exists()
        self._update(key.key_hash, {"revoked_at": to_micros(at)}, condition)

    def expire(self, key: ApiKey, at: datetime) -> None:
        expires, read = Attr("expires_at"), items.micros(key.expires_at)
        unchanged = expires.not_exists() if read is None else expires.eq(read)
        condition = Attr("revoked_at").not_exists() & unchanged
        self._update(key.key_hash, {"expires_at": to_micros(at)}, condition)

    def touch(self, key_hash: str, at: datetime, stale_before: datetime) -> None:
        # A touch that lost to another server's fails its condition: a Conflict on commit.
        used = Attr("last_used_at")
        condition = used.not_exists() | used.lte(to_micros(stale_before))
        self._update(key_hash, {"last_used_at": to_micros(at)}, condition)

    def count(self) -> int:
        return self._tables.count(self._tables.main, KEYS, consistent=True)

    def first_created_at(self) -> datetime | None:
        # Sorted by hash: read their times and take the least.
        found = self._tables.query(self._tables.main, KEYS, project="created_at", consistent=True)
        return min((from_micros(int(item["created_at"])) for item in found), default=None)


class DynamoSessions:
    def __init__(self, tables: Tables, tx: Transaction) -> None:
        self._tables = tables
        self._tx = tx

    def add(self, session: DashboardSession) -> None:
        self._tx.create(self._tables.main, items.session_item(session))

    def get(self, key_id: str, session_id: str) -> DashboardSession | None:
        item = self._tables.get(self._tables.main, items.session_key(key_id, session_id))
        return items.session(item) if item is not None else None

    def end(self, session: DashboardSession, at: datetime) -> None:
        # Ended twice at once, a session keeps the first end.
        self._tx.write(
            update_with(
                self._tables.main,
                items.session_key(session.key_id, session.id),
                "SET ended_at = if_not_exists(ended_at, :at)",
                {":at": to_micros(at)},
                condition=Attr("pk").exists(),
            )
        )


class DynamoSecrets:
    def __init__(self, tables: Tables, tx: Transaction) -> None:
        self._tables = tables
        self._tx = tx

    @staticmethod
    def _key(name: str) -> Values:
        return {"pk": f"SECRET#{name}", "sk": "SECRET"}

    def get(self, name: str) -> str | None:
        item = self._tables.get(self._tables.main, self._key(name))
        return item["secret_value"] if item is not None else None

    def add(self, name: str, value: str, created_at: datetime) -> None:
        item = {
            **self._key(name),
            "secret_value": value,  # `value` is a reserved word in expressions
            "created_at": to_micros(created_at),
        }
        self._tx.create(self._tables.main, item)
