"""PostgreSQL connections the server closed are replaced before use, not handed to a
request (a restart of PostgreSQL, pg_terminate_backend, an idle timeout)."""

from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, text

from referrals.adapters.sql.engine import create_engines
from referrals.adapters.sql.migrate import upgrade
from referrals.adapters.sql.store import SqlStore
from tests.postgresql import locale_database


@pytest.fixture
def engine() -> Iterator[Engine]:
    with locale_database("referrals_engine") as url:
        writer, _ = create_engines(url, pool_size=3)
        upgrade(writer)
        yield writer
        writer.dispose()


def _terminate_every_session(engine: Engine) -> int:
    """Terminate the database's other sessions, waiting (up to 5 s each) until they end."""
    with engine.connect() as conn:  # a connection of its own, not in the pool's idle set
        database = conn.execute(text("SELECT current_database()")).scalar_one()
        me = conn.execute(text("SELECT pg_backend_pid()")).scalar_one()
        return int(
            conn.execute(
                text(
                    "SELECT count(pg_terminate_backend(pid, 5000)) FROM pg_stat_activity"
                    " WHERE datname = :db AND pid <> :me"
                ),
                {"db": database, "me": me},
            ).scalar_one()
        )


def test_connections_killed_by_the_server_are_replaced_before_use(engine: Engine) -> None:
    store = SqlStore(engine, engine)
    held = [engine.connect() for _ in range(3)]  # fill the pool with live connections
    for conn in held:
        conn.execute(text("SELECT 1"))
    for conn in held:
        conn.close()  # back to the pool, idle
    assert _terminate_every_session(engine) == 2  # the pooled ones but the one it used
    for _ in range(6):  # every pooled connection is dead: each use must get a live one
        with store.read() as uow:
            assert uow.api_keys.count() == 0
