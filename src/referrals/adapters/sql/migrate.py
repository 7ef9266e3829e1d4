"""Bring a SQL database to the latest schema with Alembic."""

import logging
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
    with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            connection.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": PG_MIGRATION_LOCK})
        config.attributes["connection"] = connection
        before = _revision(connection)
        command.upgrade(config, "head")
        after = _revision(connection)
    if after != before:
        logger.info("migrated the database from %s to %s", before or "empty", after)


def _revision(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()
