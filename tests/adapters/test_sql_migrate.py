"""`adapters.sql.migrate.upgrade` on PostgreSQL says when the server runs without
autovacuum: its plans then stay those made on small tables (BENCHMARKS.md, issue 27)."""

import logging

import pytest
from sqlalchemy import create_engine, text

from referrals.adapters.sql.migrate import upgrade
from tests.postgresql import locale_database


def test_upgrade_warns_exactly_when_postgresql_runs_without_autovacuum(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with locale_database("referrals_autovacuum") as url:
        engine = create_engine(url)
        try:
            with caplog.at_level(logging.WARNING, "referrals.migrate"):
                upgrade(engine)
            with engine.connect() as connection:
                off = connection.execute(text("SHOW autovacuum")).scalar() == "off"
        finally:
            engine.dispose()
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("autovacuum off" in message for message in warnings) is off
