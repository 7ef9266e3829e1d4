"""The migrations on SQLite and PostgreSQL: head matches `schema.py`, the caps'
migration (0005) fills the lifetime counters from the rewards already earned, then
goes down and up again with rows in place, the chain migration (0007) links the
runs already completed both ways, the key lifecycle (0008) leaves keys working, and a
database of the release before programs (0010) starts with a `default` program whose
first version is the settings it priced with, its rewards read as priced by it."""

import json
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from sqlalchemy import Engine, create_engine, event, text

from referrals.adapters.sql.migrate import MIGRATIONS
from referrals.adapters.sql.schema import metadata
from referrals.bootstrap import build, seed_rules
from referrals.config import Settings
from referrals.domain.model import Receipt
from referrals.domain.program import BEGINNING, DEFAULT_PROGRAM, Program, ProgramStatus
from tests.postgresql import locale_database


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    if request.param == "sqlite":
        engine = create_engine(f"sqlite:///{tmp_path}/migrations.db")
        transactional_ddl(engine)
        yield engine
        engine.dispose()
        return
    with locale_database("referrals_migrations") as url:
        engine = create_engine(url)
        yield engine
        engine.dispose()


def transactional_ddl(engine: Engine) -> None:
    """BEGIN issued by SQLAlchemy, as the service's own SQLite engine does (adapters/sql/
    engine.py): the driver begins no transaction before DDL by itself, so the first
    statements of a migration that then fails would stay."""

    @event.listens_for(engine, "connect")
    def _connect(dbapi_connection: Any, _: Any) -> None:
        dbapi_connection.isolation_level = None

    @event.listens_for(engine, "begin")
    def _begin(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN")


def migrate(engine: Engine, revision: str, *, down: bool = False) -> None:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        (command.downgrade if down else command.upgrade)(config, revision)


def test_head_is_the_schema_the_code_uses(engine: Engine) -> None:
    migrate(engine, "head")
    with engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), metadata)
    assert differences == []


def test_the_caps_migration_counts_earned_rewards_and_goes_down_and_up(engine: Engine) -> None:
    migrate(engine, "0004")
    with engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO referrers (user_id, code, code_key, referral_count, created_at)"
                " VALUES ('alice', 'A1', 'A1', 4, 0), ('bob', 'B1', 'B1', 0, 0)"
            )
        )
        for n, (cents, status) in enumerate(
            [(1000, "paid"), (1500, "pending"), (2000, "rejected"), (700, "held")], start=1
        ):
            connection.execute(
                text(
                    "INSERT INTO referrals (id, referee_id, referrer_id, code, ordinal,"
                    " reward_cents, status, created_at, payable_at)"
                    " VALUES (:id, :referee, 'alice', 'A1', :n, :cents, :status, 0, 0)"
                ),
                {"id": f"R{n}", "referee": f"u{n}", "n": n, "cents": cents, "status": status},
            )
    migrate(engine, "head")
    counters = "SELECT user_id, cap_lifetime_cents, cap_month, cap_month_cents FROM referrers"
    with engine.connect() as connection:
        rows = sorted(tuple(row) for row in connection.execute(text(counters)))
    assert rows == [("alice", 3200, None, 0), ("bob", 0, None, 0)]  # the rejected one is out
    migrate(engine, "0004", down=True)
    with engine.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM referrals")).scalar_one() == 4
    migrate(engine, "head")
    with engine.connect() as connection:
        assert sorted(tuple(row) for row in connection.execute(text(counters)))[0][1] == 3200


def test_the_chain_migration_links_completed_runs_by_month_and_by_completion(
    engine: Engine,
) -> None:
    migrate(engine, "0006")
    # August, then November, then October paid late; December still running. Each run
    # recorded the sha256 of the run completed before it, as the code did until 0007.
    runs = [
        ("2026-08", "completed", 1, "a" * 64, None),
        ("2026-11", "completed", 2, "b" * 64, "a" * 64),
        ("2026-10", "completed", 3, "c" * 64, "b" * 64),
        ("2026-12", "running", None, None, None),
    ]
    with engine.begin() as connection:
        for period, status, completed_at, sha, previous in runs:
            connection.execute(
                text(
                    "INSERT INTO payout_runs (period, status, cutoff, started_at, completed_at,"
                    " report_sha256, previous_sha256) VALUES (:p, :s, 0, 0, :at, :sha, :prev)"
                ),
                {"p": period, "s": status, "at": completed_at, "sha": sha, "prev": previous},
            )
    # Each row: the link by month (period, sha256), then by completion (period, sha256).
    chain = (
        "SELECT period, previous_month_period, previous_month_sha256, previous_period,"
        " previous_sha256 FROM payout_runs ORDER BY period"
    )
    migrate(engine, "head")
    with engine.connect() as connection:
        rows = [tuple(row) for row in connection.execute(text(chain))]
    assert rows == [
        ("2026-08", None, None, None, None),
        ("2026-10", "2026-08", "a" * 64, "2026-11", "b" * 64),
        ("2026-11", "2026-08", "a" * 64, "2026-08", "a" * 64),
        ("2026-12", None, None, None, None),
    ]
    migrate(engine, "0006", down=True)
    with engine.connect() as connection:
        old = "SELECT period, previous_sha256 FROM payout_runs ORDER BY period"
        assert [tuple(row) for row in connection.execute(text(old))] == [
            ("2026-08", None),
            ("2026-10", "b" * 64),
            ("2026-11", "a" * 64),
            ("2026-12", None),
        ]


def test_the_key_lifecycle_migration_keeps_keys_working_and_goes_down_and_up(
    engine: Engine,
) -> None:
    migrate(engine, "0007")
    with engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO api_keys (id, key_hash, role, created_at)"
                " VALUES ('first-admin', :hash, 'admin', 0)"
            ),
            {"hash": "ab" * 32},
        )
    migrate(engine, "0008")
    lifecycle = "SELECT id, name, expires_at, revoked_at, last_used_at FROM api_keys"
    with engine.begin() as connection:
        assert [tuple(row) for row in connection.execute(text(lifecycle))] == [
            ("first-admin", None, None, None, None)  # as it was: no expiry, not revoked
        ]
        connection.execute(
            text(
                "INSERT INTO sessions (id, key_id, created_at, expires_at)"
                " VALUES ('s1', 'first-admin', 0, 1)"
            )
        )
    migrate(engine, "0007", down=True)
    with engine.connect() as connection:
        assert connection.execute(text("SELECT id FROM api_keys")).scalar_one() == "first-admin"
    migrate(engine, "0008")
    with engine.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM sessions")).scalar_one() == 0


def test_a_database_from_before_programs_starts_with_the_settings_as_the_default_program(
    engine: Engine, tmp_path: Path
) -> None:
    migrate(engine, "0010")
    # A receipt as the release before programs wrote it: no program, no version.
    receipt = {
        "rule": "signup",
        "tier_threshold": 1,
        "tier_cents": 700,
        "hold_days": 7,
        "checks": [{"name": "email_alias", "passed": True, "detail": ""}],
        "cap": None,
    }
    with engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO referrers (user_id, code, code_key, referral_count, created_at)"
                " VALUES ('alice', 'A1', 'A1', 1, 0)"
            )
        )
        connection.execute(
            text(
                "INSERT INTO referrals (id, referee_id, referrer_id, code, ordinal,"
                " reward_cents, status, created_at, payable_at, receipt)"
                " VALUES ('R1', 'bob', 'alice', 'A1', 1, 700, 'pending', 0, :hold, :receipt)"
            ),
            {"hold": 7 * 86_400_000_000, "receipt": json.dumps(receipt)},
        )
    migrate(engine, "0011")
    with engine.connect() as connection:
        # The migration makes tables only: the default program is the start's to make.
        assert connection.execute(text("SELECT count(*) FROM programs")).scalar_one() == 0

    # The settings the previous release priced with, none of them the defaults.
    settings = Settings(
        database_url=engine.url.render_as_string(hide_password=False),
        reports_url=str(tmp_path / "reports"),
        tiers="1:700,3:1200",
        hold_days=7,
        referee_reward_cents=300,
        monthly_cap_cents=5000,
    )
    services = build(settings, migrate=True)
    try:
        with services.store.read() as uow:
            program = uow.programs.get(DEFAULT_PROGRAM)
            versions = uow.programs.versions(DEFAULT_PROGRAM)
            referral = uow.referrals.get("R1")
    finally:
        services.store.dispose()
    assert program is not None
    assert program == Program(
        DEFAULT_PROGRAM,
        program.name,
        "USD",
        ProgramStatus.ACTIVE,
        settings.share_url,
        program.created_at,
    )
    first = replace(
        seed_rules(settings),
        program_id=DEFAULT_PROGRAM,
        version=1,
        effective_from=BEGINNING,
        created_at=program.created_at,  # made by this start, with the program
    )
    assert versions == [first]
    assert referral is not None and referral.reward_cents == 700
    assert referral.receipt == Receipt.from_dict(receipt)
    assert (referral.receipt.program, referral.receipt.rule_version) == ("default", 1)


def test_membership_carries_every_row_into_the_default_program_and_goes_down_and_up(
    engine: Engine,
) -> None:
    migrate(engine, "0011")
    with engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO referrers (user_id, code, code_key, referral_count, created_at)"
                " VALUES ('alice', 'A1', 'A1', 1, 0), ('bob', 'B1', 'B1', 0, 0)"
            )
        )
        connection.execute(
            text(
                "INSERT INTO referrals (id, referee_id, referrer_id, code, ordinal,"
                " reward_cents, status, created_at, payable_at)"
                " VALUES ('R1', 'bob', 'alice', 'A1', 1, 1000, 'pending', 0, 0)"
            )
        )
        connection.execute(
            text(
                "INSERT INTO rewards (id, referral_id, user_id, kind, cents, status, created_at,"
                " payable_at) VALUES ('W1', 'R1', 'bob', 'referee', 300, 'pending', 0, 0)"
            )
        )
        connection.execute(text("INSERT INTO signup_slots (user_id) VALUES ('bob')"))
    migrate(engine, "head")
    rows = "SELECT program_id FROM {}"
    with engine.begin() as connection:
        for table in ("referrers", "referrals", "rewards", "signup_slots"):
            found = connection.execute(text(rows.format(table))).scalars().all()
            assert found and set(found) == {"default"}, table
        # The new keys: bob is referred again, and alice refers again, in another program.
        connection.execute(
            text(
                "INSERT INTO referrers (program_id, user_id, code, code_key, referral_count,"
                " created_at) VALUES ('partners', 'alice', 'A2', 'A2', 1, 0)"
            )
        )
        connection.execute(
            text(
                "INSERT INTO referrals (id, program_id, referee_id, referrer_id, code, ordinal,"
                " reward_cents, status, created_at, payable_at)"
                " VALUES ('R2', 'partners', 'bob', 'alice', 'A2', 1, 5000, 'pending', 0, 0)"
            )
        )
    # Two programs cannot go back to keys that hold one.
    with pytest.raises(RuntimeError, match="other than 'default'"):
        migrate(engine, "0011", down=True)
    with engine.begin() as connection:
        connection.execute(text("DELETE FROM referrals WHERE id = 'R2'"))
        connection.execute(text("DELETE FROM referrers WHERE program_id = 'partners'"))
    migrate(engine, "0011", down=True)
    with engine.connect() as connection:
        referee = "SELECT referee_id FROM referrals WHERE referrer_id = 'alice'"
        assert connection.execute(text(referee)).scalar_one() == "bob"
    migrate(engine, "head")
    with engine.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM rewards")).scalar_one() == 1
