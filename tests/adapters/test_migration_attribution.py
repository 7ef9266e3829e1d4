"""Migration 0013 (tracked links) on SQLite and PostgreSQL: an existing program gets no
landing URL and the default attribution settings, existing referrals no click; it goes
down (dropping the clicks and the settings, keeping programs and referrals) and up
again with rows in place."""

from sqlalchemy import Engine, inspect, text

from tests.adapters.test_migrations import engine, migrate

__all__ = ["engine"]  # the fixture: SQLite, then PostgreSQL

PROGRAM = (
    "INSERT INTO programs (id, name, currency, status, created_at)"
    " VALUES ('default', 'Default program', 'USD', 'active', 0)"
)
REFERRER = (
    "INSERT INTO referrers (user_id, code, code_key, referral_count, created_at)"
    " VALUES ('alice', 'A1', 'A1', 1, 0)"
)
REFERRAL = (
    "INSERT INTO referrals (id, referee_id, referrer_id, code, ordinal, reward_cents, status,"
    " created_at, payable_at) VALUES ('R1', 'bob', 'alice', 'A1', 1, 1000, 'pending', 0, 0)"
)
CLICK = (
    "INSERT INTO clicks (id, program_id, code, referrer_id, at, ip_hash)"
    " VALUES ('c' || :n, 'default', 'A1', 'alice', :at, 'k1:00')"
)


def test_0013_gives_existing_programs_the_defaults_and_goes_down_and_up(engine: Engine) -> None:
    migrate(engine, "0012")
    with engine.begin() as connection:
        for statement in (PROGRAM, REFERRER, REFERRAL):
            connection.execute(text(statement))
    migrate(engine, "0013")
    with engine.begin() as connection:
        settings = "SELECT landing_url, attribution_window_days, attribution FROM programs"
        assert tuple(connection.execute(text(settings)).one()) == (None, 30, "first")
        click_of = "SELECT click_id FROM referrals WHERE id = 'R1'"
        assert connection.execute(text(click_of)).scalar_one() is None
        for n in range(3):
            connection.execute(text(CLICK), {"n": str(n), "at": n * 86_400_000_000})
        connection.execute(text("UPDATE referrals SET click_id = 'c1'"))
        connection.execute(text("UPDATE programs SET landing_url = 'https://example.com/'"))
    indexes = {i["name"]: i["column_names"] for i in inspect(engine).get_indexes("clicks")}
    assert indexes["ix_clicks_program_at"] == ["program_id", "at"]

    migrate(engine, "0012", down=True)
    tables = inspect(engine)
    assert "clicks" not in tables.get_table_names()
    assert "click_id" not in {c["name"] for c in tables.get_columns("referrals")}
    assert "landing_url" not in {c["name"] for c in tables.get_columns("programs")}
    with engine.connect() as connection:
        kept = "SELECT referee_id, reward_cents FROM referrals WHERE id = 'R1'"
        assert tuple(connection.execute(text(kept)).one()) == ("bob", 1000)
        assert connection.execute(text("SELECT name FROM programs")).scalar_one() == (
            "Default program"
        )

    migrate(engine, "0013")
    with engine.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM clicks")).scalar_one() == 0
        found = "SELECT attribution_window_days FROM programs"
        assert connection.execute(text(found)).scalar_one() == 30
