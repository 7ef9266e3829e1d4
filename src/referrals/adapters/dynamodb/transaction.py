"""The writes of one unit of work, collected as they are made and sent as one
TransactWriteItems at commit.

DynamoDB lets a transaction touch an item once, so the collection knows which items
it touches: a repository that would write one twice either joins the writes (the
referrer's profile) or refuses. Creations are Puts conditioned on the item's
absence, so a taken key (a referee already referred, a code already claimed) makes
the whole commit a Conflict, and nothing of it is written.

Some creations need no atomicity with the rest and are put on their own just before
the transaction, in the order given (a write in a transaction costs twice as much):

- an id claim (`claim_id`: the small item that finds a referral or an entry by its
  id). Put first, it exists before the item it names; if the transaction then fails,
  the claim names an item that does not exist or has another id, which a look-up by
  the claim checks, so it reads as nothing (an orphan of a few bytes, left behind
  only by a lost race or a crash);
- the enrollment of a referee by their own signup (`send_first`: code claim, then
  profile; see DynamoReferrers.enroll_first). If the transaction then fails, the
  user is enrolled but not referred, which a retry of the signup finds and keeps.
"""

import json
from typing import Any

from boto3.dynamodb.conditions import Attr

from referrals.adapters.dynamodb.access import ConditionFailed, Tables
from referrals.adapters.dynamodb.expressions import Values, Write, put, to_item
from referrals.domain.errors import Conflict


class Transaction:
    def __init__(self, tables: Tables) -> None:
        self._tables = tables
        self._writes: list[Write] = []
        self._first: list[Write] = []  # Puts sent on their own before the transaction
        self._keys: set[tuple[str, str]] = set()

    def touches(self, table: str, key: Values) -> bool:
        return _identity(table, to_item(key)) in self._keys

    def write(self, write: Write) -> None:
        """An Update, Delete or ConditionCheck, sent at commit."""
        [body] = write.values()
        self._keys.add(_identity(body["TableName"], body["Key"]))
        self._writes.append(write)

    def unwrite(self, write: Write) -> None:
        """Takes back a write given to `write`, as if it never had been."""
        [body] = write.values()
        self._keys.discard(_identity(body["TableName"], body["Key"]))
        self._writes = [queued for queued in self._writes if queued is not write]

    def create(self, table: str, item: Values, key: tuple[str, ...] = ("pk", "sk")) -> Write:
        """A Put that creates the item; an existing one makes the commit a Conflict."""
        self._keys.add(_identity(table, to_item({name: item[name] for name in key})))
        created = put(table, item, Attr(key[0]).not_exists())
        self._writes.append(created)
        return created

    def claim_id(self, table: str, item: Values) -> None:
        """A Put of an id claim (`pk`, `sk`) sent at commit on its own, before the
        transaction; a taken id makes the commit a Conflict, with nothing written."""
        self._keys.add(_identity(table, to_item({name: item[name] for name in ("pk", "sk")})))
        self._first.append(put(table, item, Attr("pk").not_exists()))

    def send_first(self, write: Write) -> None:
        """Takes a creation given to `create` out of the transaction, to be put on its own
        before it, after those already so queued. Its item stays touched."""
        self._writes = [queued for queued in self._writes if queued is not write]
        self._first.append(write)

    def commit(self) -> None:
        try:
            for first in self._first:
                self._tables.send(first)
        except ConditionFailed as taken:
            # What was put before stays: each such item reads as nothing, or as what a
            # retry finds and keeps (module docstring).
            raise Conflict("an item this unit of work creates exists already") from taken
        if self._writes:
            self._tables.transact(self._writes)
        self.discard()

    def discard(self) -> None:
        self._writes = []
        self._first = []
        self._keys = set()


def _identity(table: str, typed_key: dict[str, Any]) -> tuple[str, str]:
    """An item's identity within a transaction: its table and its (typed) key, hashable."""
    return (table, json.dumps(typed_key, sort_keys=True))
