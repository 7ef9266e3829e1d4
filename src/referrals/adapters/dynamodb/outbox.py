"""The outbox and the audit log on DynamoDB.

Events live in a table of their own (`id`), whose stream of new items wakes the
notify function. A pending event is in the sparse `due` index by the time it is
due; a dispatcher claims one by pushing that time past its own deadline, with a
condition that it is still due, so two dispatchers never deliver it at once.
A pending event in `due` has no `status` (items.event_item): it enters `by_status`
once delivered or dead, so listing pending events reads `due` as well.

The audit log is one partition, `AUDIT`, sorted by entry id (a ULID: time order).
Admin actions are rare (reviews, reversals, payout runs), far below one
partition's write limit, so a single partition read newest first needs no index.
"""

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from boto3.dynamodb.conditions import Attr, ConditionBase, Key

from referrals.adapters.dynamodb import items
from referrals.adapters.dynamodb.access import ConditionFailed, Tables
from referrals.adapters.dynamodb.expressions import delete, update
from referrals.adapters.dynamodb.transaction import Transaction
from referrals.adapters.times import to_micros
from referrals.domain.model import AuditEntry, Event, EventStatus, first_id_at

MAX_ITEM_BYTES = 350_000  # below DynamoDB's 400 KB per item, leaving room for keys
PENDING, DELIVERED, DEAD = (
    s.value for s in (EventStatus.PENDING, EventStatus.DELIVERED, EventStatus.DEAD)
)
DUE = "PENDING"  # the one partition of the sparse `due` index


class DynamoOutbox:
    def __init__(self, tables: Tables, tx: Transaction) -> None:
        self._tables = tables
        self._tx = tx

    def add(self, event: Event) -> None:
        payload = json.dumps(event.payload, sort_keys=True, separators=(",", ":"))
        if len(payload) > MAX_ITEM_BYTES:
            raise ValueError(f"event {event.id} is larger than a DynamoDB item may be")
        self._tx.create(self._tables.outbox, items.event_item(event, payload), key=("id",))

    def get(self, event_id: str) -> Event | None:
        item = self._tables.get(self._tables.outbox, {"id": event_id})
        return items.event(item) if item else None

    def claim_due(self, now: datetime, until: datetime, limit: int) -> Sequence[Event]:
        claimed = []
        due = self._tables.query(
            self._tables.outbox,
            Key("due_pk").eq(DUE) & Key("due_at").lte(to_micros(now)),
            index="due",
            limit=limit,
        )
        for item in due:
            claim = update(
                self._tables.outbox,
                {"id": item["id"]},
                set={"due_at": to_micros(until), "next_attempt_at": to_micros(until)},
                condition=_pending() & Attr("due_at").lte(to_micros(now)),
            )
            try:
                claimed.append(items.event(self._tables.send(claim, returning=True)))
            except ConditionFailed:
                continue  # another dispatcher claimed it, or it was delivered meanwhile
        return sorted(claimed, key=lambda e: e.id)

    def _update(self, event_id: str, changes: dict[str, Any], remove: Sequence[str] = ()) -> None:
        event = {"id": event_id}
        self._tx.write(
            update(self._tables.outbox, event, set=changes, remove=remove, add={"attempts": 1})
        )

    def delivered(self, event_ids: Sequence[str]) -> None:
        # One update per event: a transaction would fail as a whole on any one of them.
        for event_id in event_ids:
            gone = ("due_pk", "due_at", "next_attempt_at", "last_error")
            self._update(event_id, {"status": DELIVERED}, gone)

    def attempt_failed(
        self, event_id: str, error: str, next_attempt_at: datetime, dead: bool
    ) -> None:
        at = to_micros(next_attempt_at)
        if dead:
            changes = {"status": DEAD, "last_error": error, "next_attempt_at": at}
            self._update(event_id, changes, ("due_pk", "due_at"))
        else:
            changes = {"last_error": error, "next_attempt_at": at, "due_at": at, "due_pk": DUE}
            self._update(event_id, changes)

    def list(self, status: EventStatus | None, limit: int) -> Sequence[Event]:
        statuses = [status] if status is not None else list(EventStatus)
        found = [
            item
            for s in statuses
            for item in self._tables.query(
                self._tables.outbox,
                Key("status").eq(s.value),
                index="by_status",
                newest_first=True,
                limit=limit,
            )
        ]
        if EventStatus.PENDING in statuses:
            # The backlog, in due time order: read whole (it is what waits for delivery).
            found += self._tables.query(self._tables.outbox, Key("due_pk").eq(DUE), index="due")
        events = {item["id"]: items.event(item) for item in found}
        return sorted(events.values(), key=lambda e: e.id, reverse=True)[:limit]

    def requeue(self, event_id: str, now: datetime) -> bool:
        at = to_micros(now)
        requeued = update(
            self._tables.outbox,
            {"id": event_id},
            set={
                "status": None,  # pending, in `due` (items.event_item)
                "attempts": 0,
                "next_attempt_at": at,
                "due_at": at,
                "due_pk": DUE,
            },
            condition=Attr("status").eq(DEAD),
        )
        try:
            self._tables.send(requeued)
            return True
        except ConditionFailed:
            return False

    def backlog(self) -> int:
        return self._tables.count(self._tables.outbox, Key("due_pk").eq(DUE), index="due")

    def prune_delivered(self, before: datetime, limit: int) -> int:
        """Deletes at once, not at commit, each event on its own and on condition that it
        is still delivered: a transaction would fail as a whole on one that a concurrent
        pruner (another server's worker) deleted first."""
        pruned = 0
        old = self._tables.query(
            self._tables.outbox,
            Key("status").eq(DELIVERED) & Key("id").lt(first_id_at(before)),
            index="by_status",
            filter=Attr("created_at").lt(to_micros(before)),
            limit=limit,
        )
        for item in old:
            gone = delete(self._tables.outbox, {"id": item["id"]}, Attr("status").eq(DELIVERED))
            try:
                self._tables.send(gone)
            except ConditionFailed:
                continue  # deleted meanwhile: the index lags the table
            pruned += 1
        return pruned

    def discard(self, event_id: str) -> bool:
        event = self.get(event_id)
        if event is None or event.status is not EventStatus.DEAD:
            return False
        # At commit, with whatever else the unit of work writes (its audit entry); a
        # requeue or a discard elsewhere meanwhile makes the commit a Conflict.
        self._tx.write(delete(self._tables.outbox, {"id": event_id}, Attr("status").eq(DEAD)))
        return True


def _pending() -> ConditionBase:
    # Written by this release without a status while due; by an earlier one, with it.
    return Attr("status").not_exists() | Attr("status").eq(PENDING)


class DynamoAudit:
    def __init__(self, tables: Tables, tx: Transaction) -> None:
        self._tables = tables
        self._tx = tx

    def add(self, entry: AuditEntry) -> None:
        # An existing id makes the commit a Conflict.
        self._tx.create(self._tables.main, items.audit_item(entry))

    def list(self, before_id: str | None, limit: int) -> Sequence[AuditEntry]:
        key = Key("pk").eq("AUDIT")
        if before_id is not None:
            key &= Key("sk").lt(before_id)
        found = self._tables.query(
            self._tables.main, key, consistent=True, newest_first=True, limit=limit
        )
        return [items.audit(item) for item in found]
