"""Migration 0016 (payout totals per currency) on SQLite and PostgreSQL, on a database made
by the release before it: each completed run becomes one USD total of its own figures
and reads so through the store; a running run, or one that settled nothing, has none; it
goes down (the runs keep their figures) and up again."""

from sqlalchemy import Engine, inspect, text

from referrals.adapters.sql.store import SqlStore
from referrals.bootstrap import build_store
from referrals.domain.model import CurrencyTotal, RunStatus
from tests.adapters.test_migrations import engine, migrate

__all__ = ["engine"]  # the fixture: SQLite, then PostgreSQL

RUN = (
    "INSERT INTO payout_runs (period, status, cutoff, started_at, completed_at, referrer_count,"
    " referral_count, total_cents, clawback_cents, carried_forward_cents)"
    " VALUES (:period, :status, 0, 0, :done, :users, :entries, :total, :clawed, :carried)"
)
RUNS = [
    # period, status, completed at, users, entries, total, clawed back, carried forward
    ("2026-08", "completed", 1, 2, 5, 6000, 1000, 500),
    ("2026-09", "completed", 2, 0, 0, 0, 0, 0),  # nothing was due
    ("2026-10", "running", None, 0, 0, 0, 0, 0),
]
TOTALS = "SELECT period, currency, total_cents FROM payout_run_totals ORDER BY period"


def test_0016_carries_completed_runs_as_usd_totals_and_goes_down_and_up(engine: Engine) -> None:
    migrate(engine, "0015")
    with engine.begin() as connection:
        for period, status, done, users, entries, total, clawed, carried in RUNS:
            connection.execute(
                text(RUN),
                {
                    "period": period,
                    "status": status,
                    "done": done,
                    "users": users,
                    "entries": entries,
                    "total": total,
                    "clawed": clawed,
                    "carried": carried,
                },
            )
    migrate(engine, "0016")
    with engine.connect() as connection:
        assert [tuple(row) for row in connection.execute(text(TOTALS))] == [
            ("2026-08", "USD", 6000)
        ]

    store = build_store(engine.url.render_as_string(hide_password=False))
    assert isinstance(store, SqlStore)
    try:
        with store.read() as uow:
            runs = {run.period: run for run in uow.payouts.list()}
    finally:
        store.dispose()
    august = runs["2026-08"]
    assert august.totals == (CurrencyTotal("USD", 2, 5, 6000, 1000, 500),)
    assert (august.total_cents, august.clawback_cents, august.carried_forward_cents) == (
        6000,
        1000,
        500,
    )
    assert (runs["2026-09"].totals, runs["2026-09"].total_cents) == ((), 0)
    assert runs["2026-10"].status is RunStatus.RUNNING and runs["2026-10"].totals == ()

    migrate(engine, "0015", down=True)
    assert "payout_run_totals" not in inspect(engine).get_table_names()
    with engine.connect() as connection:
        kept = "SELECT total_cents, carried_forward_cents FROM payout_runs WHERE period = '2026-08'"
        assert tuple(connection.execute(text(kept)).one()) == (6000, 500)

    migrate(engine, "0016")
    with engine.connect() as connection:
        assert connection.execute(text(TOTALS)).first() == ("2026-08", "USD", 6000)
