"""Engines per database: SQLite needs WAL, foreign keys and write transactions taken up front."""

import select
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, make_url
from sqlalchemy.exc import DisconnectionError

from referrals.config import ConfigError


def is_sqlite(url: str) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


def create_engines(url: str, pool_size: int = 5) -> tuple[Engine, Engine]:
    """Return (writer, reader) engines for `url`.

    On SQLite every write transaction starts with BEGIN IMMEDIATE: it takes the
    write lock before the first read, so a signup's read-then-increment cannot
    be invalidated by another writer (a deferred transaction would fail with
    SQLITE_BUSY_SNAPSHOT instead of waiting). The writer engine holds a single
    connection, since SQLite has a single writer anyway: this process's writers wait
    for it in the pool's queue, each woken as the one before it returns it, not in
    SQLite's busy handler, which polls with sleeps of up to 100 ms and kept a lock
    just released unused (docs/decisions/sql-group-commit.md). Readers use plain
    BEGIN and, with WAL, never wait for writers. Other databases use one engine
    for both.

    On PostgreSQL the pool keeps `pool_size` connections and opens no more: the
    server runs as many requests at once (`Services.request_threads`), and its
    background worker and readiness check wait their turn for one of them. An
    overflow connection would open whenever they came on top of the requests and
    close as soon as it was returned: a steady load would open and close
    connections without end, each a new PostgreSQL session (BENCHMARKS.md).
    """
    parsed = make_url(url)
    if parsed.drivername == "postgresql":
        # SQLAlchemy's default PostgreSQL driver is psycopg2, which is not installed:
        # a plain postgresql:// URL means psycopg 3, the driver the service ships with.
        url = parsed.set(drivername="postgresql+psycopg").render_as_string(hide_password=False)
    if not is_sqlite(url):
        engine = create_engine(url, pool_size=pool_size, max_overflow=0)
        event.listen(engine, "checkout", _replace_if_closed_by_server)
        return engine, engine
    _require_folder(parsed.database)
    writer = _sqlite_engine(url, "BEGIN IMMEDIATE", pool_size=1, max_overflow=0)
    reader = _sqlite_engine(url, "BEGIN")
    return writer, reader


def _replace_if_closed_by_server(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
    """Hand out no connection the server has closed (a restart, pg_terminate_backend, an
    idle timeout), without a round trip.

    An idle connection's socket has nothing to read; once the server closes it, it
    reads as ready (its FATAL message, then end of file). SQLAlchemy's pre-ping asked
    the server instead: a SELECT 1 on every checkout, which took 20-30% of a signup
    (BENCHMARKS.md). On DisconnectionError the pool drops this one and checks out
    another.
    """
    if dbapi_connection.closed:
        raise DisconnectionError("the connection is closed")
    readable, _, _ = select.select([dbapi_connection.fileno()], [], [], 0)
    if readable:
        raise DisconnectionError("the server closed the connection")


def _require_folder(database: str | None) -> None:
    """SQLite creates a missing database file but not its folder; its own error says
    only "unable to open database file"."""
    if not database or database == ":memory:" or database.startswith("file:"):
        return
    folder = Path(database).absolute().parent
    if not folder.is_dir():
        raise ConfigError(
            f"the database's folder {folder} does not exist: create it, or point "
            "REFERRALS_DATABASE_URL elsewhere"
        )


def _sqlite_engine(url: str, begin: str, **pool: int) -> Engine:
    # A writer waits for the write lock, in the pool or in SQLite, as long as either way.
    timeout = 30
    engine = create_engine(
        url,
        connect_args={"check_same_thread": False, "timeout": timeout},
        pool_timeout=timeout,
        **pool,
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy's "begin" event issue BEGIN instead of the driver's implicit one.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        # FULL: a commit that answered 2xx survives a crash of the process and of the OS.
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        connection.exec_driver_sql(begin)

    return engine
