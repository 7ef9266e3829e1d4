"""A customer matched by email reads one index range, never every referral: the plan of
`by_email`'s statement on SQLite and PostgreSQL (with sequential scans off on the
latter, so the plan shows whether the index path exists at all)."""

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, text

from referrals.adapters.sql.referrers import _REFERRAL_BY_EMAIL
from tests.adapters.test_migrations import migrate
from tests.postgresql import locale_database

BOUND = _REFERRAL_BY_EMAIL.params(email="Bob@Example.com", program="default")


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    if request.param == "sqlite":
        engine = create_engine(f"sqlite:///{tmp_path}/plans.db")
        migrate(engine, "head")
        yield engine
        engine.dispose()
        return
    with locale_database("referrals_email_plans") as url:
        engine = create_engine(url)
        migrate(engine, "head")
        yield engine
        engine.dispose()


def plan(engine: Engine) -> str:
    statement = BOUND.compile(dialect=engine.dialect, compile_kwargs={"literal_binds": True})
    with engine.connect() as connection:
        if engine.dialect.name == "sqlite":
            rows = connection.execute(text(f"EXPLAIN QUERY PLAN {statement}"))
            return "\n".join(str(row[-1]) for row in rows)
        connection.execute(text("SET enable_seqscan = off"))
        return "\n".join(str(row[0]) for row in connection.execute(text(f"EXPLAIN {statement}")))


def test_the_email_lookup_reads_its_index(engine: Engine) -> None:
    found = plan(engine)
    assert "ix_referrals_program_email" in found
    assert "SCAN referrals" not in found and "Seq Scan" not in found
