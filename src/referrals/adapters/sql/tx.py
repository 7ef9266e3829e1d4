"""A unit of work's connection, with a short path for the statements of a signup.

A signup is half a dozen small statements. Through SQLAlchemy's execution layer each
cost about 90 µs of Python (cache key, execution context, result wrapping) on
top of the driver's own 60 µs; on SQLite, more than the database took to run it.
The statements a signup runs are compiled once per dialect here and run on the
driver's cursor (`rows`, `write`, `insert`, `update_one`); everything else goes through
SQLAlchemy (`execute`). Both run on the one connection, in the one transaction.

On PostgreSQL every statement is also a round trip to the server. Inserts, and
updates that must change one row, wait and go together as one statement, in the
message of the next statement or of the COMMIT. BEGIN goes with the first
statement. With the store's increment in the statement of its reads (store.py),
a signup takes two round trips, not eight; each more signup in a batch
(services/batching.py), one. That matters most for a hot referrer, whose row
stays locked from the increment to the end of the COMMIT, so that its signups
queue on the lock: each round trip less under it lets more of them through.

Two statements go in one message only by the simple query protocol, which takes
no parameters. So on PostgreSQL these statements are prepared once per connection
(PREPARE, see `_named`) and run as `EXECUTE name(values)`, the values quoted by
psycopg. psycopg's own automatic preparing is off (engine.py): it deallocates all
of a connection's prepared statements at each rollback, ours with them, and a
health check or a read ends with one. For the unit's life psycopg is in autocommit
mode, so that it sends no BEGIN of its own: the unit sends it, with its first
statement (`_execute`).
(psycopg's pipeline mode was tried: under load its Python cost more CPU than the
round trips it saved.)
"""

import hashlib
import re
from collections import namedtuple
from collections.abc import Mapping
from functools import lru_cache
from typing import Any, NamedTuple, cast

from sqlalchemy import Connection, CursorResult
from sqlalchemy.engine import Dialect
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.elements import ClauseElement
from sqlalchemy.sql.expression import Executable

from referrals.domain.errors import Conflict

Values = Mapping[str, Any]


class Tx:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.dialect: Dialect = conn.dialect
        self._driver: Any = cast(Any, conn.connection.driver_connection)
        # Errors that mean another unit got there first: a key the statement would
        # break; on PostgreSQL also a deadlock (below).
        self._conflicting: tuple[type[Exception], ...] = (self.dialect.loaded_dbapi.IntegrityError,)
        # PostgreSQL: the writes waiting to go to the server with the next statement.
        self._postgresql = self.dialect.name == "postgresql"
        self._waiting: list[_Waiting] = []
        self._statement_lost: tuple[type[Exception], ...] = ()
        if self._postgresql:
            import psycopg  # only a PostgreSQL store needs it

            self._client_cursor: Any = psycopg.ClientCursor
            self._division_by_zero: type[Exception] = psycopg.errors.DivisionByZero
            # A statement deallocated behind our back (DISCARD ALL, say), or whose
            # result's columns a migration changed meanwhile ("cached plan must not
            # change result type"): prepared again on the retry.
            self._statement_lost = (
                psycopg.errors.InvalidSqlStatementName,
                psycopg.errors.FeatureNotSupported,
            )
            # Two units that wait on each other's rows or keys (signups of one user
            # with two codes at once, in batches taken in opposite orders): the server
            # aborts one, whose retry then finds the other's work.
            self._conflicting += (psycopg.errors.DeadlockDetected,)
            self._idle = psycopg.pq.TransactionStatus.IDLE
            self._driver.autocommit = True  # until close(): BEGIN is ours to send

    def close(self) -> None:
        """Hand the connection back as it came, out of autocommit (psycopg allows the
        change only between transactions; a broken connection is discarded anyway)."""
        try:
            if self._postgresql and not self._in_transaction():
                self._driver.autocommit = False
        finally:
            self.conn.close()

    def execute(
        self, statement: Executable, parameters: Any = None
    ) -> CursorResult[*tuple[Any, ...]]:
        """Any statement, DDL included, through SQLAlchemy."""
        self._flush()
        if self._postgresql and not self._in_transaction():
            # Plain BEGIN: the store sets no isolation level or read-only mode.
            self._driver.execute(b"BEGIN")
        return self.conn.execute(statement, parameters)

    def rows(self, statement: ClauseElement, values: Values) -> list[Any]:
        """A store statement's rows, each with its columns as attributes."""
        prepared = _prepared(self.dialect, statement, tuple(values))
        cursor = self._run(prepared, values)
        try:
            row = prepared.row
            if row is None:  # the driver builds its description anew on every call
                row = prepared.row = namedtuple("Row", [column[0] for column in cursor.description])
            return [row._make(found) for found in cursor.fetchall()]
        finally:
            cursor.close()

    def write(self, statement: ClauseElement, values: Values) -> int:
        """Run a store statement that returns no rows; how many rows it changed.
        A unique or foreign key it would break raises Conflict."""
        cursor = self._run(_prepared(self.dialect, statement, tuple(values)), values)
        try:
            return int(cursor.rowcount)
        finally:
            cursor.close()

    def insert(self, statement: ClauseElement, values: Values) -> None:
        """Insert a row. On PostgreSQL the inserts wait and go to the server together,
        as one statement, just before the next statement or the COMMIT: a signup's
        three inserts cost one round trip, not three. A key they would break raises
        Conflict then (the ports allow "at the latest on commit")."""
        if self._postgresql:
            prepared = _prepared(self.dialect, statement, tuple(values))
            self._waiting.append(_Waiting(prepared, values))
        else:
            self.write(statement, values)

    def update_one(self, statement: ClauseElement, values: Values, conflict: str) -> None:
        """An update that must change exactly one row, else Conflict(`conflict`). On
        PostgreSQL it waits with the inserts and is checked when they go (so at the
        latest on commit), after whatever waits for its table has gone: two changes of
        one row in one statement would keep only one, and an update does not see rows
        inserted in its own statement."""
        if not self._postgresql:
            if self.write(statement, values) != 1:
                raise Conflict(conflict)
            return
        prepared = _prepared(self.dialect, statement, tuple(values))
        if any(waiting.prepared.table is prepared.table for waiting in self._waiting):
            self._flush()
        self._waiting.append(_Waiting(prepared, values, conflict))

    def commit(self) -> None:
        if self._waiting:
            self._commit_waiting()
        # SQLAlchemy ends its transaction; psycopg sends no COMMIT when the server's
        # transaction has already ended.
        self.conn.commit()

    def _commit_waiting(self) -> None:
        """The waiting writes and the COMMIT in one message. PostgreSQL runs the COMMIT
        only if the writes succeed, so here a checked update that changed no row must
        fail the statement itself (see `_together`)."""
        waiting, params = self._take_waiting()
        sql = _together(tuple(w.prepared for w in waiting), fail_unless_one=True)
        try:
            self._execute([(sql, params)], then="; COMMIT").close()
        except self._division_by_zero as error:
            checked = [w.conflict for w in waiting if w.conflict is not None]
            raise Conflict("; ".join(dict.fromkeys(checked))) from error

    def _take_waiting(self) -> tuple[list["_Waiting"], dict[str, Any]]:
        """The waiting writes, and their values named apart as `_together` names them."""
        waiting, self._waiting = self._waiting, []
        params: dict[str, Any] = {}
        for n, (prepared, values, _) in enumerate(waiting):
            for name, value in (prepared.compiled.construct_params(values) or {}).items():
                params[f"w{n}_{name}"] = value
        return waiting, params

    def _flush(self) -> None:
        if self._waiting:
            self._send_waiting(None)

    def _send_waiting(self, then: tuple[str, Any] | None) -> Any:
        """Send the waiting writes, and with them in the same message the statement
        `then`, if any (SQL and values): its cursor, at its rows."""
        waiting, params = self._take_waiting()
        statements = [(_together(tuple(w.prepared for w in waiting)), params)]
        cursor = self._execute(statements + ([then] if then else []))
        try:
            checked = [w.conflict for w in waiting if w.conflict is not None]
            if checked:  # the rows each checked update changed, in order
                for conflict, changed in zip(checked, cursor.fetchone(), strict=True):
                    if changed != 1:
                        raise Conflict(conflict)
            if then:
                cursor.nextset()
        except BaseException:
            cursor.close()
            raise
        return cursor

    def _run(self, prepared: "_Prepared", values: Values) -> Any:
        """The statement's cursor. On PostgreSQL the writes waiting go with it, in
        the same message: a signup recorded after another in one unit (a batch) reads
        in the round trip that writes the one before it."""
        params: Any = prepared.compiled.construct_params(values) or {}
        if self._waiting:
            return self._send_waiting((prepared.compiled.string, params))
        if prepared.compiled.positiontup is not None:  # qmark (SQLite): by position
            params = tuple(params[name] for name in prepared.compiled.positiontup)
        return self._execute([(prepared.compiled.string, params)])

    def _execute(self, statements: list[tuple[str, Any]], then: str = "") -> Any:
        """The cursor of the statements (SQL and values), at the first one's rows. On
        PostgreSQL they go in one message, each run as a named statement, with `then`
        (SQL without values) after them; elsewhere there is one statement."""
        begin = ""
        if self._postgresql:
            executes, params = [], []
            for sql, values in statements:
                name, order = self._named(sql)
                executes.append(
                    f"EXECUTE {name}({', '.join(['%s'] * len(order))})"
                    if order
                    else f"EXECUTE {name}"
                )
                params += [values[key] for key in order]
            # The server's word, not ours: in autocommit mode it is idle until BEGIN
            # (not sent if a value could not even be quoted) and again after COMMIT.
            begin = "" if self._in_transaction() else "BEGIN; "  # plain, as in execute()
            sql = f"{begin}{'; '.join(executes)}{then}"
            cursor = self._client_cursor(self._driver)
        else:
            [(sql, params)] = statements
            cursor = self._driver.cursor()
        try:
            cursor.execute(sql, params)
            if begin:
                cursor.nextset()  # from BEGIN's result to the statement's
        except BaseException as error:
            cursor.close()
            conflict = self._conflict_of(error)
            if conflict is None:
                raise
            raise conflict from error
        return cursor

    def _conflict_of(self, error: BaseException) -> Conflict | None:
        """The Conflict a failed statement means, if any: a key it would break, a
        deadlock, or a prepared statement lost (the use case's retry prepares it again)."""
        if isinstance(error, self._conflicting):
            return Conflict(str(error))
        if isinstance(error, self._statement_lost):
            self.conn.connection.info.pop(_NAMED, None)  # start again from a clean slate
            return Conflict("the connection lost a prepared statement")
        return None

    def _in_transaction(self) -> bool:
        return bool(self._driver.info.transaction_status != self._idle)

    def _named(self, sql: str) -> tuple[str, tuple[str, ...]]:
        """The name `sql` is prepared under on this connection, preparing it the first
        time, and its parameters in order. Prepared statements last as long as the
        connection, rollbacks included; SQLAlchemy clears `info` when it replaces one.
        A connection without a record (new, or after a statement was lost) starts by
        deallocating whatever it has, so what the record says is what the server has.
        Names come from the SQL, so one name never stands for two statements."""
        info = self.conn.connection.info
        named: dict[str, tuple[str, tuple[str, ...]]] | None = info.get(_NAMED)
        if named is None:
            self._driver.execute(b"DEALLOCATE ALL")  # psycopg prepares none of its own
            named = info[_NAMED] = {}
        found = named.get(sql)
        if found is None:
            numbered, order = _numbered(sql)
            found = (f"referrals_{hashlib.sha1(sql.encode()).hexdigest()[:20]}", order)
            self._driver.execute(f"PREPARE {found[0]} AS {numbered}".encode())
            named[sql] = found
        return found


_NAMED = "referrals_named"  # in a connection's info: {SQL: (its name, its parameters)}


class _Prepared:
    __slots__ = ("compiled", "row", "table")

    def __init__(self, compiled: SQLCompiler, table: Any) -> None:
        self.compiled = compiled
        self.table = table  # the table an insert or update writes
        self.row: Any = None  # the namedtuple of its rows, once seen


class _Waiting(NamedTuple):
    prepared: _Prepared
    values: Values
    conflict: str | None = None  # an update's: raised unless it changed one row


@lru_cache(maxsize=64)
def _together(statements: tuple[_Prepared, ...], fail_unless_one: bool = False) -> str:
    """PostgreSQL writes as one statement, in data-modifying WITH clauses, each with
    its parameters renamed apart. All of them run; foreign keys between them are
    checked at the end of the statement, so a reward may refer to the referral
    inserted beside it. With updates to check, the statement answers how many rows
    each changed, or with `fail_unless_one` fails unless each changed one, by
    dividing by zero (PostgreSQL has no function that raises an error); else the
    last insert is the statement itself."""
    texts = [_renamed(p.compiled.string, f"w{n}_") for n, p in enumerate(statements)]
    checked = [f"w{n}" for n, p in enumerate(statements) if p.compiled.isupdate]
    if not checked:
        if len(texts) == 1:
            return texts[0]
        clauses = ", ".join(f"w{n} AS ({text})" for n, text in enumerate(texts[:-1]))
        return f"WITH {clauses} {texts[-1]}"
    clauses = ", ".join(
        f"w{n} AS ({text}{' RETURNING 1' if _needs_returning(p) else ''})"
        for n, (text, p) in enumerate(zip(texts, statements, strict=True))
    )
    counted = [f"(SELECT count(*) FROM {name})" for name in checked]
    if fail_unless_one:
        counted = [f"1 / ({count} = 1)::int" for count in counted]
    return f"WITH {clauses} SELECT {', '.join(counted)}"


def _needs_returning(prepared: _Prepared) -> bool:
    """An update that returns nothing itself: RETURNING 1 lets its rows be counted."""
    return bool(prepared.compiled.isupdate and not prepared.compiled.effective_returning)


_PYFORMAT = re.compile(r"%\((\w+)\)s")  # psycopg's named parameters


def _renamed(sql: str, prefix: str) -> str:
    return _PYFORMAT.sub(lambda name: f"%({prefix}{name.group(1)})s", sql)


@lru_cache(maxsize=256)
def _numbered(sql: str) -> tuple[str, tuple[str, ...]]:
    """psycopg's named parameters as PREPARE's $1, $2..., and the names in that order."""
    order: dict[str, int] = {}

    def number(name: re.Match[str]) -> str:
        return f"${order.setdefault(name.group(1), len(order) + 1)}"

    return _PYFORMAT.sub(number, sql).replace("%%", "%"), tuple(order)


@lru_cache(maxsize=256)
def _prepared(dialect: Dialect, statement: ClauseElement, keys: tuple[str, ...]) -> _Prepared:
    """Compiled once per dialect, statement and set of values. Only the module-level
    statements of the store come here, so the cache stays small."""
    compiled = cast(SQLCompiler, statement.compile(dialect=dialect, column_keys=list(keys)))
    if compiled._bind_processors:  # this path passes values to the driver as they are
        raise TypeError(f"{statement} needs bind processing: run it through execute()")
    return _Prepared(compiled, getattr(statement, "table", None))
