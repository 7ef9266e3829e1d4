"""The SQL store (SQLite, PostgreSQL): units of work on SQLAlchemy Core, and the checks
and counts that run outside one.

Writers and readers have engines of their own (engine.py): on SQLite a write unit
takes the write lock as it begins, and readers, with WAL, never wait for it.
"""

from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import Engine, QueuePool, text

from referrals.adapters.sql.auth_failures import count_failure
from referrals.adapters.sql.failures import StorageWatch, require_room
from referrals.adapters.sql.replay import SqlReplay
from referrals.adapters.sql.unit_of_work import SqlUnitOfWork

__all__ = ["SqlStore", "SqlUnitOfWork"]

_HEALTH_CHECK = text("SELECT 1")
# A row lock is a write (it marks the row): refused on a standby or in a read-only
# session. The one row of alembic_version exists in every migrated database.
_WRITE_CHECK = text("SELECT version_num FROM alembic_version FOR UPDATE")


class SqlStore:
    def __init__(self, writer: Engine, reader: Engine) -> None:
        self.writer = writer
        self.reader = reader
        self._sqlite = writer.dialect.name == "sqlite"
        self._watch = StorageWatch()
        self.replay = SqlReplay(reader, self._watch)

    @property
    def concurrency_limit(self) -> int | None:
        """PostgreSQL: the pool's size, one connection per unit of work. SQLite: none
        (its writers take turns on the writer's one connection, its readers, with WAL,
        never wait for them)."""
        pool = self.writer.pool
        if self._sqlite or not isinstance(pool, QueuePool):
            return None
        return pool.size()

    def unit_of_work(self) -> SqlUnitOfWork:
        return SqlUnitOfWork(self.writer, self._watch)

    def read(self) -> SqlUnitOfWork:
        return SqlUnitOfWork(self.reader, self._watch, read_only=True)

    def check(self) -> None:
        # Ended by a COMMIT, not a ROLLBACK: psycopg forgets its prepared statements
        # at every ROLLBACK.
        with self.reader.begin() as conn:
            conn.execute(_HEALTH_CHECK)

    def check_write(self) -> None:
        if self._sqlite:
            # Take the write lock (BEGIN IMMEDIATE) and release it. A rolled-back
            # transaction writes nothing, so the room to write is checked apart.
            database = self.writer.url.database
            if database and database != ":memory:":
                require_room(Path(database))
            with self.unit_of_work():
                return
        with self.writer.begin() as conn:  # the lock goes with the transaction
            conn.execute(_WRITE_CHECK)

    def count_failure(self, subject: str, now: datetime, window: timedelta) -> tuple[int, datetime]:
        with self.unit_of_work() as uow:
            counted = count_failure(uow.connection, subject, now, window)
            uow.commit()
        return counted

    def dispose(self) -> None:
        self.writer.dispose()
        self.reader.dispose()
