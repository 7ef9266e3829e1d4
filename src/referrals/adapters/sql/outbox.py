"""The outbox (events written in the transaction of the change they announce, delivered
at least once) and the audit log of operators' actions."""

import json
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import BigInteger, and_, bindparam, delete, func, insert, select, update

from referrals.adapters.sql import rows
from referrals.adapters.sql.repository import Repository
from referrals.adapters.sql.schema import audit_log, outbox
from referrals.domain.model import AuditEntry, Event, EventStatus, first_id_at

PENDING, DELIVERED, DEAD = (
    EventStatus.PENDING.value,
    EventStatus.DELIVERED.value,
    EventStatus.DEAD.value,
)
_INSERT_EVENT, _INSERT_AUDIT = insert(outbox), insert(audit_log)
# Delivery claims the due events every tenth of a second while signups come in:
# its statements are built once.
_DUE = and_(outbox.c.status == PENDING, outbox.c.next_attempt_at <= bindparam("now"))
# Several claimers (delivery threads, servers) run at once. On PostgreSQL each locks the
# rows it takes first, in due order, skipping rows another transaction holds: a claimer
# never waits, on another claim nor on the marking of another's deliveries (which locks
# by id). A plain UPDATE waited on such rows, kept the locks of those it rechecked and
# skipped, and two of them deadlocked (BENCHMARKS.md). MATERIALIZED runs the locking query
# once: as a subquery of the UPDATE it may be run again for each row, and find other
# rows than LIMIT allows. SQLite renders neither: its writers take turns anyway.
_CLAIMABLE = (
    select(outbox.c.id)
    .where(_DUE)
    .order_by(outbox.c.next_attempt_at, outbox.c.id)
    .limit(bindparam("limit", type_=BigInteger))
    .with_for_update(skip_locked=True)
    .cte("claimable")
    .prefix_with("MATERIALIZED", dialect="postgresql")
)
_CLAIM_DUE = (
    update(outbox)
    .where(outbox.c.id.in_(select(_CLAIMABLE.c.id)))
    .values(next_attempt_at=bindparam("until"))
    .returning(*outbox.c)
)
_DELIVERED = (
    update(outbox)
    .where(outbox.c.id.in_(bindparam("ids", expanding=True)))
    .values(status=DELIVERED, attempts=outbox.c.attempts + 1, next_attempt_at=None, last_error=None)
)


class SqlOutbox(Repository):
    def add(self, event: Event) -> None:
        values = {
            "id": event.id,
            "type": event.type,
            "payload": json.dumps(event.payload, sort_keys=True, separators=(",", ":")),
            "created_at": event.created_at,
            "status": event.status.value,
            "attempts": event.attempts,
            "next_attempt_at": event.next_attempt_at,
            "last_error": event.last_error,
        }
        self._execute(_INSERT_EVENT, values)

    def get(self, event_id: str) -> Event | None:
        row = self._execute(select(outbox).where(outbox.c.id == event_id)).first()
        return rows.event(row) if row else None

    def claim_due(self, now: datetime, until: datetime, limit: int) -> Sequence[Event]:
        claimed = self._execute(_CLAIM_DUE, {"now": now, "until": until, "limit": limit})
        return sorted((rows.event(row) for row in claimed), key=lambda e: e.id)

    def delivered(self, event_ids: Sequence[str]) -> None:
        self._execute(_DELIVERED, {"ids": list(event_ids)})

    def attempt_failed(
        self, event_id: str, error: str, next_attempt_at: datetime, dead: bool
    ) -> None:
        self._execute(
            update(outbox)
            .where(outbox.c.id == event_id)
            .values(
                status=DEAD if dead else PENDING,
                attempts=outbox.c.attempts + 1,
                next_attempt_at=next_attempt_at,
                last_error=error,
            )
        )

    def list(self, status: EventStatus | None, limit: int) -> Sequence[Event]:
        query = select(outbox).order_by(outbox.c.id.desc()).limit(limit)
        if status is not None:
            query = query.where(outbox.c.status == status.value)
        return [rows.event(row) for row in self._execute(query)]

    def requeue(self, event_id: str, now: datetime) -> bool:
        requeued = self._execute(
            update(outbox)
            .where(outbox.c.id == event_id, outbox.c.status == DEAD)
            .values(status=PENDING, attempts=0, next_attempt_at=now)
        )
        return requeued.rowcount == 1

    def backlog(self) -> int:
        query = select(func.count()).where(outbox.c.status == PENDING)
        return int(self._execute(query).scalar_one())

    def prune_delivered(self, before: datetime, limit: int) -> int:
        # A range of the primary key (ids sort by the time they were minted): the old
        # rows only, those kept (pending, dead) and those to delete, never every row.
        oldest = (
            select(outbox.c.id)
            .where(
                outbox.c.id < first_id_at(before),
                outbox.c.status == DELIVERED,
                outbox.c.created_at < before,
            )
            .order_by(outbox.c.id)
            .limit(limit)
        )
        return int(self._execute(delete(outbox).where(outbox.c.id.in_(oldest))).rowcount)

    def discard(self, event_id: str) -> bool:
        discarded = self._execute(
            delete(outbox).where(outbox.c.id == event_id, outbox.c.status == DEAD)
        )
        return discarded.rowcount == 1


class SqlAudit(Repository):
    def add(self, entry: AuditEntry) -> None:
        values = {
            "id": entry.id,
            "at": entry.at,
            "actor": entry.actor,
            "action": entry.action,
            "target": entry.target,
            "reason": entry.reason,
        }
        self._execute(_INSERT_AUDIT, values)

    def list(self, before_id: str | None, limit: int) -> Sequence[AuditEntry]:
        query = select(audit_log).order_by(audit_log.c.id.desc()).limit(limit)
        if before_id is not None:
            query = query.where(audit_log.c.id < before_id)
        return [rows.audit_entry(row) for row in self._execute(query)]
