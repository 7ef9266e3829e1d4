"""A unit of work's connection, with a short path for the statements of a signup.

A signup is seven small statements. Through SQLAlchemy's execution layer each
cost about 90 µs of Python (cache key, execution context, result wrapping) on
top of the driver's own 60 µs; on SQLite, more than the database took to run it.
The statements a signup runs are compiled once per dialect here and run on the
driver's cursor (`rows`, `write`); everything else goes through SQLAlchemy
(`execute`). Both run on the one connection, in the one transaction.

(psycopg's pipeline mode, sending a signup's writes with the next statement in
one round trip, was tried: under load it cost more CPU in psycopg's Python than
the round trips it saved, BENCHMARKS.md.)
"""

from collections import namedtuple
from collections.abc import Mapping
from functools import lru_cache
from typing import Any, cast

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
        self._driver: Any = conn.connection.driver_connection
        self._integrity_error: type[Exception] = self.dialect.loaded_dbapi.IntegrityError

    def execute(
        self, statement: Executable, parameters: Any = None
    ) -> CursorResult[*tuple[Any, ...]]:
        """Any statement, through SQLAlchemy."""
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

    def _run(self, prepared: "_Prepared", values: Values) -> Any:
        params: Any = prepared.compiled.construct_params(values) or {}
        if prepared.compiled.positiontup is not None:  # qmark (SQLite): by position
            params = tuple(params[name] for name in prepared.compiled.positiontup)
        cursor = self._driver.cursor()
        try:
            cursor.execute(prepared.compiled.string, params)
        except self._integrity_error as error:
            cursor.close()
            raise Conflict(str(error)) from error
        return cursor


class _Prepared:
    __slots__ = ("compiled", "row")

    def __init__(self, compiled: SQLCompiler) -> None:
        self.compiled = compiled
        self.row: Any = None  # the namedtuple of its rows, once seen


@lru_cache(maxsize=256)
def _prepared(dialect: Dialect, statement: ClauseElement, keys: tuple[str, ...]) -> _Prepared:
    """Compiled once per dialect, statement and set of values. Only the module-level
    statements of the store come here, so the cache stays small."""
    compiled = cast(SQLCompiler, statement.compile(dialect=dialect, column_keys=list(keys)))
    if compiled._bind_processors:  # this path passes values to the driver as they are
        raise TypeError(f"{statement} needs bind processing: run it through execute()")
    return _Prepared(compiled)
