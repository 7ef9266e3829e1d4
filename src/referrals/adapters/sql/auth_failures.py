"""Failed authentications per client address in fixed windows (Store.count_failure).

One statement counts: an upsert that starts a new window when the row's has ended,
and returns the count and the window's end, so concurrent failures from many
servers are counted exactly, without a read before the write. The same unit of
work deletes a few rows whose windows have ended. On PostgreSQL it skips rows other
transactions hold (SKIP LOCKED), so it never waits: each transaction waits at most
in its upsert, its first statement, when it holds nothing yet, so two counts can
never wait on each other.
"""

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, bindparam, case, delete, select
from sqlalchemy.dialects import postgresql, sqlite

from referrals.adapters.sql.schema import auth_failures

# Rows of ended windows deleted per count: more than a count adds (one), so the table
# shrinks back to the addresses failing now.
PRUNE_BATCH = 10


def _count(insert: Any) -> Any:
    ended = auth_failures.c.window_ends_at <= bindparam("now")
    statement = insert(auth_failures).values(
        subject=bindparam("subject"), failures=1, window_ends_at=bindparam("ends")
    )
    return statement.on_conflict_do_update(
        index_elements=[auth_failures.c.subject],
        # Both read the row as it was: a window that ended starts again at 1.
        set_={
            "failures": case((ended, 1), else_=auth_failures.c.failures + 1),
            "window_ends_at": case(
                (ended, statement.excluded.window_ends_at), else_=auth_failures.c.window_ends_at
            ),
        },
    ).returning(auth_failures.c.failures, auth_failures.c.window_ends_at)


_COUNT = {"postgresql": _count(postgresql.insert), "sqlite": _count(sqlite.insert)}
_ENDED = (
    select(auth_failures.c.subject)
    .where(auth_failures.c.window_ends_at <= bindparam("now"))
    .limit(PRUNE_BATCH)
    .with_for_update(skip_locked=True)  # SQLite has one writer: nothing to skip
)
_PRUNE = delete(auth_failures).where(auth_failures.c.subject.in_(_ENDED))


def count_failure(
    conn: Connection, subject: str, now: datetime, window: timedelta
) -> tuple[int, datetime]:
    """Count one failure of `subject` in the transaction of `conn` (the caller commits)."""
    values = {"subject": subject, "now": now, "ends": now + window}
    row = conn.execute(_COUNT[conn.dialect.name], values).one()
    conn.execute(_PRUNE, {"now": now})
    return int(row.failures), row.window_ends_at
