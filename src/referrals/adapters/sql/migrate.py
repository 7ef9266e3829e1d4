"""Bring a SQL database to the latest schema with Alembic."""

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Connection, Engine, text

logger = logging.getLogger("referrals.migrate")

MIGRATIONS = Path(__file__).parent / "migrations"
# Any constant works: it only has to be the same in every process that migrates.
PG_MIGRATION_LOCK = 7_210_114


def upgrade(engine: Engine) -> None:
    """Migrate to head; safe when several servers start at once.

    SQLite serializes through BEGIN IMMEDIATE on the writer engine; PostgreSQL
    through a transaction-scoped advisory lock.
    """
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with engine.connect() as connection, _foreign_keys_off(connection), connection.begin():
        if connection.dialect.name == "postgresql":
            connection.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": PG_MIGRATION_LOCK})
        config.attributes["connection"] = connection
        before = _revision(connection)
        command.upgrade(config, "head")
        after = _revision(connection)
        autovacuum_off = connection.dialect.name == "postgresql" and _autovacuum_off(connection)
        if connection.dialect.name == "sqlite":
            broken = connection.exec_driver_sql("PRAGMA foreign_key_check").first()
            if broken is not None:
                raise RuntimeError(f"the migration broke a foreign key: {tuple(broken)}")
    if after != before:
        logger.info("migrated the database from %s to %s", before or "empty", after)
    if autovacuum_off:
        logger.warning(
            "PostgreSQL runs with autovacuum off: statistics go stale and queries slow "
            "down as tables grow; turn it on (the default), or run ANALYZE regularly"
        )


def _autovacuum_off(connection: Connection) -> bool:
    """Without autovacuum, PostgreSQL never gathers statistics: the plans each pooled
    connection keeps for its prepared statements stay the ones made while the tables
    were small (scans of whole tables), and a signup slows as the tables grow
    (BENCHMARKS.md, issue 27). The server cannot fix that setting; it says so once."""
    return connection.execute(text("SHOW autovacuum")).scalar() == "off"


@contextmanager
def _foreign_keys_off(connection: Connection) -> Iterator[None]:
    """SQLite rebuilds a table to change its keys, and a rebuild drops the table that
    others reference: its procedure for that turns foreign keys off, which only works
    outside a transaction (so on the driver's connection, before SQLAlchemy's BEGIN),
    and checks them with `foreign_key_check` before the commit (`upgrade` does)."""
    if connection.dialect.name != "sqlite":
        yield
        return
    driver = connection.connection.driver_connection
    assert driver is not None
    driver.execute("PRAGMA foreign_keys=OFF")
    try:
        yield
    finally:
        driver.execute("PRAGMA foreign_keys=ON")


def _revision(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()
