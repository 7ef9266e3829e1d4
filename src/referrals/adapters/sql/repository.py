"""What every SQL repository shares: its unit of work's connection, and what a lost race
looks like on it.

Each statement runs through `Connection.execute`, in the unit's one transaction. A
statement that loses to a concurrent writer raises `Conflict`, which the use case
retries: a key it would break (another transaction created the row first), or, on
PostgreSQL, a deadlock (two units waiting on each other's rows or keys: the server
aborts one, whose retry finds the other's work).
"""

from collections.abc import Collection, Mapping
from typing import Any

from sqlalchemy import Connection, CursorResult, Row, Table, update
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.sql.expression import Executable

from referrals.domain.errors import Conflict
from referrals.domain.model import ReferralStatus

# PostgreSQL's SQLSTATEs for a transaction that lost to another: a deadlock, a
# serialization failure. Either may be retried from the start.
_LOST_RACE = {"40P01", "40001"}


def lost_race(error: BaseException) -> bool:
    """Whether a failed statement or commit lost to a concurrent writer."""
    if isinstance(error, IntegrityError):
        return True
    return isinstance(error, DBAPIError) and getattr(error.orig, "sqlstate", None) in _LOST_RACE


class Repository:
    def __init__(self, conn: Connection) -> None:
        self._conn = conn
        self._postgresql = conn.dialect.name == "postgresql"

    def _execute(
        self, statement: Executable, values: Mapping[str, Any] | None = None
    ) -> CursorResult[*tuple[Any, ...]]:
        try:
            return self._conn.execute(statement, values)
        except DBAPIError as error:
            if lost_race(error):
                raise Conflict(str(error.orig)) from error
            raise

    def _change_one(self, statement: Executable, values: Mapping[str, Any], conflict: str) -> None:
        """Run an update that must change exactly one row, else raise Conflict(`conflict`)."""
        if self._execute(statement, values).rowcount != 1:
            raise Conflict(conflict)

    def _byte_order(self, column: Any) -> Any:
        """Text sorted by bytes on every store; PostgreSQL would use its locale."""
        return column.collate("C") if self._postgresql else column

    def _transition(
        self,
        table: Table,
        key: str,
        allowed: Collection[ReferralStatus],
        to: ReferralStatus,
        note: str | None,
    ) -> Row[*tuple[Any, ...]] | None:
        """The row moved to `to` if it was in an `allowed` state, else None.

        One conditional statement: on PostgreSQL a concurrent transition waits for the
        row lock, re-checks the status and updates nothing; SQLite's writers are
        serialized, so the second one reads the first one's state.
        """
        return self._execute(
            update(table)
            .where(table.c.id == key, table.c.status.in_([status.value for status in allowed]))
            .values(status=to.value, note=note)
            .returning(*table.c)
        ).first()
