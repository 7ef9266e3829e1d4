"""The audit log: who did which admin action, to what, and why."""

from referrals.domain.model import AuditEntry, new_id
from referrals.ports import Clock, Store, UnitOfWork
from referrals.services.queries import Page, check_limit, decode_cursor, page


def add_entry(
    uow: UnitOfWork, clock: Clock, actor: str, action: str, target: str, reason: str | None
) -> None:
    """Log an action in the unit of work that does it: both persist, or neither."""
    now = clock.now()
    uow.audit.add(AuditEntry(new_id(now), now, actor, action, target, reason))


def record(
    store: Store, clock: Clock, actor: str, action: str, target: str, reason: str | None = None
) -> None:
    """Log an action that spans several transactions (a payout run), once it is done."""
    with store.unit_of_work() as uow:
        add_entry(uow, clock, actor, action, target, reason)
        uow.commit()


def audit_log(store: Store, limit: int, cursor: str | None) -> Page[AuditEntry]:
    """The log newest first, a page at a time."""
    check_limit(limit)
    before = decode_cursor(cursor)
    with store.read() as uow:
        rows = uow.audit.list(before, limit + 1)
    return page(rows, limit, lambda last: last.id)
