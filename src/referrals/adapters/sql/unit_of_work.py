"""A unit of work on SQL: one connection, one transaction, every repository on it.

A write unit on SQLite waits for the writer engine's one connection, then takes the
database's write lock as it begins (BEGIN IMMEDIATE, engine.py). A unit that ends
without a commit rolls back, so it leaves no transaction, and no lock, behind. A
read-only unit that ends normally commits instead: it wrote nothing, and psycopg
forgets the statements it prepared on the connection at every ROLLBACK.
"""

from types import TracebackType
from typing import Self

from sqlalchemy import Connection, Engine
from sqlalchemy.exc import DBAPIError

from referrals.adapters.sql.aliases import SqlSaleAliases
from referrals.adapters.sql.clicks import SqlClicks
from referrals.adapters.sql.failures import StorageWatch
from referrals.adapters.sql.keys import SqlApiKeys, SqlSecrets, SqlSessions
from referrals.adapters.sql.outbox import SqlAudit, SqlOutbox
from referrals.adapters.sql.payouts import SqlPayouts
from referrals.adapters.sql.programs import SqlPrograms
from referrals.adapters.sql.referrers import SqlConversions, SqlReferrals, SqlReferrers, SqlRewards
from referrals.adapters.sql.repository import lost_race
from referrals.adapters.sql.sales import SqlSales
from referrals.adapters.sql.stats import SqlStats
from referrals.domain.errors import Conflict


class SqlUnitOfWork:
    referrers: SqlReferrers
    referrals: SqlReferrals
    rewards: SqlRewards
    conversions: SqlConversions
    api_keys: SqlApiKeys
    sessions: SqlSessions
    secrets: SqlSecrets
    programs: SqlPrograms
    payouts: SqlPayouts
    outbox: SqlOutbox
    audit: SqlAudit
    stats: SqlStats
    sales: SqlSales
    clicks: SqlClicks
    sale_aliases: SqlSaleAliases
    connection: Connection

    def __init__(self, engine: Engine, watch: StorageWatch, *, read_only: bool = False) -> None:
        self._engine = engine
        self._watch = watch
        self._read_only = read_only

    def __enter__(self) -> Self:
        try:
            conn = self._engine.connect()
            try:
                conn.begin()
            except BaseException:
                conn.close()
                raise
        except Exception as error:
            if failure := self._watch.translate(error):
                raise failure from error
            raise
        self.connection = conn
        self.referrers = SqlReferrers(conn)
        self.referrals = SqlReferrals(conn)
        self.rewards = SqlRewards(conn)
        self.conversions = SqlConversions(conn)
        self.api_keys = SqlApiKeys(conn)
        self.sessions = SqlSessions(conn)
        self.secrets = SqlSecrets(conn)
        self.programs = SqlPrograms(conn)
        self.payouts = SqlPayouts(conn)
        self.outbox = SqlOutbox(conn)
        self.audit = SqlAudit(conn)
        self.stats = SqlStats(conn)
        self.sales = SqlSales(conn)
        self.clicks = SqlClicks(conn)
        self.sale_aliases = SqlSaleAliases(conn)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            self._end(commit=self._read_only and exc is None)
        except Exception as error:
            if failure := self._watch.translate(error):
                raise failure from error
            raise
        if exc is not None and (failure := self._watch.translate(exc)):
            raise failure from exc

    def _end(self, commit: bool) -> None:
        conn = self.connection
        try:
            if conn.in_transaction() and commit:
                conn.commit()
            elif conn.in_transaction():
                conn.rollback()
        finally:
            conn.close()

    def commit(self) -> None:
        """Make the work durable; it ends the unit of work."""
        try:
            self.connection.commit()
        except DBAPIError as error:
            if lost_race(error):
                raise Conflict(str(error.orig)) from error
            raise
