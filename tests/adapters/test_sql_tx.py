"""The SQL store's short path for a signup's statements (adapters/sql/tx.py): fewer
round trips on PostgreSQL, the same answers as SQLAlchemy's path on both databases."""

import re
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest
from sqlalchemy import event, insert
from sqlalchemy.exc import IntegrityError

from referrals.adapters.clock import SystemClock
from referrals.adapters.sql.schema import conversions, referrers
from referrals.adapters.sql.store import SqlStore
from referrals.adapters.sql.tx import Tx
from referrals.bootstrap import build_store
from referrals.domain.errors import CodeNotFound, Conflict, SelfReferral
from referrals.domain.events import referral_created
from referrals.domain.model import (
    Referral,
    ReferralStatus,
    Referrer,
    Reward,
    RewardKind,
    new_id,
)
from referrals.domain.program import Program
from referrals.services.signups import SignupBatches, sign_up
from tests.batches import wait_until_queued
from tests.postgresql import emptied_store, migrated_database

NOW = datetime(2026, 11, 2, tzinfo=UTC)


@pytest.fixture(scope="module")
def postgresql_url() -> Iterator[str]:
    with migrated_database("referrals_tx") as url:
        yield url


@pytest.fixture
def postgresql(postgresql_url: str) -> Iterator[SqlStore]:
    with emptied_store(postgresql_url) as store:
        yield store


@pytest.fixture
def one_connection(postgresql: SqlStore, postgresql_url: str) -> Iterator[SqlStore]:
    """A PostgreSQL store of one connection: each unit gets the same one."""
    store = build_store(postgresql_url, pool_size=1)
    assert isinstance(store, SqlStore)
    yield store
    store.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SqlStore]:
    if request.param == "postgresql":
        yield request.getfixturevalue("postgresql")
        return
    built = build_store(f"sqlite:///{tmp_path}/tx.db", migrate=True)
    assert isinstance(built, SqlStore)
    yield built
    built.dispose()


def referrer(user_id: str) -> Referrer:
    return Referrer(user_id, f"C-{user_id}", None, referral_count=0, created_at=NOW)


def referral(referrer_id: str, referee_id: str) -> Referral:
    return Referral(
        id=new_id(),
        referee_id=referee_id,
        referrer_id=referrer_id,
        code=f"C-{referrer_id}",
        email=None,
        ordinal=1,
        reward_cents=1000,
        status=ReferralStatus.PENDING,
        created_at=NOW,
    )


def enrolled(store: SqlStore, *users: str) -> None:
    with store.unit_of_work() as uow:
        for user in users:
            uow.referrers.add(referrer(user))
        uow.commit()


def referred(store: SqlStore, referrer_id: str, referee_id: str) -> None:
    with store.unit_of_work() as uow:
        uow.referrals.add(referral(referrer_id, referee_id))
        uow.commit()


class Trace:
    """libpq's own trace of the protocol on every connection the store checks out."""

    def __init__(self, store: SqlStore, path: Path) -> None:
        self.path = path
        self._file = path.open("w")
        self._traced: list[Any] = []
        self._pool = store.writer.pool
        event.listen(self._pool, "checkout", self._on_checkout)

    def _on_checkout(self, dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
        dbapi_connection.pgconn.trace(self._file.fileno())
        self._traced.append(dbapi_connection.pgconn)

    def lines(self) -> list[str]:
        event.remove(self._pool, "checkout", self._on_checkout)
        for pgconn in self._traced:
            pgconn.untrace()  # libpq flushes its buffered trace
        self._file.close()
        return self.path.read_text().splitlines()


def round_trips(lines: list[str]) -> list[str]:
    """Each round trip ends the client's messages with a simple Query or a Sync."""
    return [line for line in lines if re.search(r"\tF\t\d+\t(Query|Sync)", line)]


def test_a_signup_takes_two_round_trips_on_postgresql(postgresql: SqlStore, tmp_path: Path) -> None:
    enrolled(postgresql, "alice")
    clock, program = SystemClock(), Program()
    sign_up(postgresql, clock, program, "warm-up", "C-alice")  # connects, prepares
    trace = Trace(postgresql, tmp_path / "libpq.trace")
    sign_up(postgresql, clock, program, "bob", "C-alice")
    lines = trace.lines()
    trips = round_trips(lines)
    # BEGIN with the parties and the increment; the earned count, the inserts and COMMIT.
    assert len(trips) == 2, "\n".join(lines)
    assert len([line for line in lines if "\tReadyForQuery" in line]) == 2
    assert re.search(r"\tQuery\t \"BEGIN; EXECUTE referrals_\w+\(.*'C-ALICE'.*\)\"$", trips[0])
    assert re.search(r"\tQuery\t \"EXECUTE referrals_\w+\(.*\); COMMIT\"$", trips[-1])
    assert "'bob'" in trips[-1]  # the values, quoted into the message


def test_a_unit_that_only_inserts_is_one_round_trip(postgresql: SqlStore, tmp_path: Path) -> None:
    enrolled(postgresql, "warm-up")  # connects, prepares
    trace = Trace(postgresql, tmp_path / "libpq.trace")
    enrolled(postgresql, "alice")
    trips = round_trips(trace.lines())
    assert len(trips) == 1
    assert re.search(r"\tQuery\t \"BEGIN; EXECUTE referrals_\w+\(.*\); COMMIT\"$", trips[0])
    with postgresql.read() as uow:
        assert uow.referrers.get("alice") == referrer("alice")


def test_a_connection_goes_back_to_the_pool_out_of_autocommit(postgresql: SqlStore) -> None:
    # For its unit, psycopg is in autocommit so that BEGIN goes with the first statement;
    # anyone else who takes the connection from the pool gets ordinary transactions.
    with pytest.raises(CodeNotFound), postgresql.unit_of_work() as uow:
        uow.referrers.add(referrer("alice"))
        raise CodeNotFound("a failing unit")
    enrolled(postgresql, "bob")
    carol = {"user_id": "carol", "code": "C", "code_key": "C", "created_at": 0}
    with pytest.raises(IntegrityError), postgresql.writer.begin() as conn:
        conn.execute(insert(referrers), carol)
        conn.execute(insert(referrers), carol)  # fails: the first must not stay either
    with postgresql.read() as uow:
        assert uow.referrers.get("alice") is None
        assert uow.referrers.get("bob") == referrer("bob")
        assert uow.referrers.get("carol") is None


def test_statements_are_prepared_once_per_connection(postgresql: SqlStore, tmp_path: Path) -> None:
    enrolled(postgresql, "alice")
    clock, program = SystemClock(), Program()
    trace = Trace(postgresql, tmp_path / "libpq.trace")
    sign_up(postgresql, clock, program, "bob", "C-alice")
    sign_up(postgresql, clock, program, "carol", "C-alice")
    lines = trace.lines()
    prepares = [line for line in lines if "\tQuery\t" in line and "PREPARE" in line]
    # The parties with the increment, and the writes that go with the COMMIT.
    assert len(prepares) == 2, "\n".join(prepares)
    assert "AS WITH counted AS" in prepares[0]  # the increment, in the parties' statement
    assert re.findall(r"(UPDATE|INSERT INTO) (\w+)", prepares[-1]) == [
        ("UPDATE", "referrers"),  # the referrer's earned count, checked
        ("INSERT INTO", "referrers"),  # the referee, enrolled
        ("INSERT INTO", "referrals"),
        ("INSERT INTO", "outbox"),
    ]
    assert len([line for line in lines if "; COMMIT" in line]) == 2


def test_a_rollback_keeps_the_prepared_statements(one_connection: SqlStore, tmp_path: Path) -> None:
    # psycopg's own preparing (off) would deallocate them all at a rollback.
    enrolled(one_connection, "alice")
    clock, program = SystemClock(), Program()
    first = sign_up(one_connection, clock, program, "user0", "C-alice").referral
    with one_connection.unit_of_work() as uow:
        for _ in range(6):  # past psycopg's default threshold for preparing by itself
            assert uow.referrals.get(first.id) == first
        uow.commit()
    trace = Trace(one_connection, tmp_path / "libpq.trace")
    sign_up(one_connection, clock, program, "user0", "C-alice")  # a replay: rolled back
    one_connection.check()  # a health check: rolled back when the pool takes it back
    sign_up(one_connection, clock, program, "user9", "C-alice")
    lines = trace.lines()
    assert [line for line in lines if "ROLLBACK" in line], "\n".join(lines)
    assert not [line for line in lines if "DEALLOCATE" in line or "PREPARE" in line]


def test_a_lost_prepared_statement_is_a_conflict_and_prepared_again(
    postgresql: SqlStore,
) -> None:
    enrolled(postgresql, "alice", "dave")
    referred(postgresql, "alice", "bob")
    lost = pytest.raises(Conflict, match="lost a prepared statement")
    with lost, postgresql.unit_of_work() as uow:
        uow._tx.conn.exec_driver_sql("DEALLOCATE ALL")  # as a pooler might
        uow.referrals.add(referral("alice", "carol"))
        uow.commit()
    referred(postgresql, "dave", "carol")
    with postgresql.read() as uow:
        assert uow.referrals.by_referee("carol").referrer_id == "dave"  # type: ignore[union-attr]


def test_after_one_statement_is_lost_the_others_are_prepared_afresh(
    one_connection: SqlStore,
) -> None:
    enrolled(one_connection, "alice")
    clock, program = SystemClock(), Program()
    sign_up(one_connection, clock, program, "bob", "C-alice")
    with one_connection.writer.connect() as conn:
        named = conn.connection.info["referrals_named"]
        parties = next(name for sql, (name, _) in named.items() if sql.startswith("WITH counted"))
        conn.connection.driver_connection.execute(f"DEALLOCATE {parties}")  # type: ignore[union-attr]
    for n, user in enumerate(["carol", "dave", "erin"], start=2):
        assert sign_up(one_connection, clock, program, user, "C-alice").referral.ordinal == n


def test_a_migration_that_changes_a_returned_column_costs_one_retry(
    postgresql: SqlStore,
) -> None:
    # A prepared statement whose result changed type fails ("cached plan must not
    # change result type") until prepared again: a rolling deploy's migration.
    enrolled(postgresql, "alice")
    clock, program = SystemClock(), Program()
    sign_up(postgresql, clock, program, "bob", "C-alice")
    with postgresql.writer.begin() as conn:
        conn.exec_driver_sql("ALTER TABLE referrers ALTER COLUMN email TYPE varchar(300)")
    try:
        assert sign_up(postgresql, clock, program, "carol", "C-alice").referral.ordinal == 2
        assert sign_up(postgresql, clock, program, "dave", "C-alice").referral.ordinal == 3
    finally:
        with postgresql.writer.begin() as conn:
            conn.exec_driver_sql("ALTER TABLE referrers ALTER COLUMN email TYPE varchar(254)")


def test_a_unit_used_after_its_commit_writes_in_a_new_transaction(
    postgresql: SqlStore,
) -> None:
    with pytest.raises(CodeNotFound), postgresql.unit_of_work() as uow:
        uow.referrers.add(referrer("alice"))
        assert uow.referrers.get("alice") == referrer("alice")  # sends alice
        uow.commit()  # with nothing waiting: psycopg's own COMMIT
        uow.referrers.add(referrer("bob"))
        uow.referrals.get("nothing")  # sends bob
        raise CodeNotFound("fails after its commit")
    with postgresql.read() as uow:
        assert uow.referrers.get("alice") == referrer("alice")
        assert uow.referrers.get("bob") is None  # rolled back with the unit


def test_ddl_that_begins_a_unit_is_rolled_back_with_it(one_connection: SqlStore) -> None:
    # release() creates and drops a temporary table: in the unit's transaction, even
    # as its first statement, or a failed unit would leave the table on the connection.
    with pytest.raises(CodeNotFound), one_connection.unit_of_work() as uow:
        assert uow.payouts.release("2026-10", 0) == (0, 0)
        raise CodeNotFound("fails after its release")
    with one_connection.unit_of_work() as uow:
        assert uow.payouts.release("2026-10", 0) == (0, 0)
        uow.commit()


def test_a_statement_that_could_not_be_sent_did_not_begin_the_transaction(
    postgresql: SqlStore,
) -> None:
    with pytest.raises(CodeNotFound), postgresql.unit_of_work() as uow:
        with pytest.raises(psycopg.DataError, match="NUL"):  # refused before it is sent
            uow.referrals.parties_counted("C-ALICE", "nul\x00")
        uow.referrers.add(referrer("alice"))
        assert uow.referrers.get("alice") == referrer("alice")  # sends alice
        raise CodeNotFound("fails")
    with postgresql.read() as uow:
        assert uow.referrers.get("alice") is None  # rolled back: it was in a transaction


def test_a_connection_replaced_after_a_loss_prepares_again(postgresql: SqlStore) -> None:
    enrolled(postgresql, "alice")
    clock, program = SystemClock(), Program()
    sign_up(postgresql, clock, program, "bob", "C-alice")
    with postgresql.writer.connect() as conn:
        assert conn.connection.info["referrals_named"]
        conn.invalidate()  # as after a lost connection: the next checkout connects anew
    postgresql.writer.pool.dispose()
    result = sign_up(postgresql, clock, program, "carol", "C-alice")
    assert result.referral.ordinal == 2


def test_the_next_read_sees_the_inserts_waiting_before_it(store: SqlStore) -> None:
    with store.unit_of_work() as uow:
        uow.referrers.add(referrer("alice"))
        found = uow.referrers.get("alice")
        uow.commit()
    assert found == referrer("alice")


def test_a_reward_lands_with_the_referral_it_refers_to(store: SqlStore) -> None:
    enrolled(store, "alice")
    new = referral("alice", "bob")
    bonus = Reward(new_id(), new.id, "bob", RewardKind.REFEREE, 500, new.status, NOW)
    with store.unit_of_work() as uow:
        uow.referrals.add(new)
        uow.rewards.add(bonus)
        uow.outbox.add(referral_created(new, NOW))
        uow.commit()
    with store.read() as uow:
        assert uow.referrals.get(new.id) == new
        assert list(uow.rewards.for_referral(new.id)) == [bonus]


def test_a_key_taken_meanwhile_is_a_conflict_and_nothing_of_the_unit_lands(
    store: SqlStore,
) -> None:
    enrolled(store, "alice", "dave")
    referred(store, "alice", "bob")
    with pytest.raises(Conflict), store.unit_of_work() as uow:
        uow.referrers.add(referrer("carol"))
        uow.referrals.add(referral("dave", "bob"))  # bob was referred by alice
        uow.commit()
    with store.read() as uow:
        assert uow.referrers.get("carol") is None
        assert uow.referrals.by_referee("bob").referrer_id == "alice"  # type: ignore[union-attr]


def test_a_statement_whose_values_need_converting_is_refused(store: SqlStore) -> None:
    # This path hands values to the driver as they are: a Boolean column would need
    # SQLAlchemy's conversion, so such a statement must go through execute().
    with store.unit_of_work() as uow:
        tx: Tx = uow._tx
        with pytest.raises(TypeError, match="bind processing"):
            tx.write(insert(conversions), {"external_id": "x", "awaits_signup": True})


def earned(store: SqlStore, user: str) -> int:
    with store.read() as uow:
        found = uow.referrers.get(user)
    assert found is not None
    return found.cap_lifetime_cents


def test_an_update_that_changes_no_row_is_a_conflict_and_nothing_of_the_unit_lands(
    store: SqlStore,
) -> None:
    enrolled(store, "alice")
    stale = referrer("alice").counting("2026-11", 500)  # not what the store holds
    with pytest.raises(Conflict, match="earnings changed"), store.unit_of_work() as uow:
        uow.referrers.add(referrer("carol"))
        uow.referrers.add_earned("alice", "2026-11", 1000, stale)
        uow.commit()
    with store.read() as uow:
        assert uow.referrers.get("carol") is None
    assert earned(store, "alice") == 0


def test_two_updates_of_one_row_in_a_unit_both_count(store: SqlStore) -> None:
    # In one statement PostgreSQL would keep only one of two changes of a row.
    enrolled(store, "alice")
    with store.unit_of_work() as uow:
        uow.referrers.add_earned("alice", "2026-11", 1000)
        uow.referrers.add_earned("alice", "2026-11", 500)
        uow.commit()
    assert earned(store, "alice") == 1500


def test_an_update_finds_the_row_inserted_before_it_in_the_unit(store: SqlStore) -> None:
    # In one statement an update does not see the rows inserted beside it.
    with store.unit_of_work() as uow:
        uow.referrers.add(referrer("carol"))
        uow.referrers.add_earned("carol", "2026-11", 700, referrer("carol"))
        uow.commit()
    assert earned(store, "carol") == 700


def test_the_writes_waiting_go_with_the_next_read_in_one_message(
    postgresql: SqlStore, tmp_path: Path
) -> None:
    enrolled(postgresql, "warm-up")
    trace = Trace(postgresql, tmp_path / "libpq.trace")
    with postgresql.unit_of_work() as uow:
        uow.referrers.add(referrer("alice"))
        found = uow.referrals.parties_counted("C-alice", "bob").referrer
        uow.commit()
    trips = [t for t in round_trips(trace.lines()) if "PREPARE" not in t]
    assert found == replace(referrer("alice"), referral_count=1)
    assert len(trips) == 2  # the insert with the read, then COMMIT
    assert re.search(
        r"\"BEGIN; EXECUTE referrals_\w+\(.*\); EXECUTE referrals_\w+\(.*\)\"$", trips[0]
    )


def test_an_update_that_changed_no_row_is_a_conflict_at_the_next_read(store: SqlStore) -> None:
    enrolled(store, "alice")
    stale = referrer("alice").counting("2026-11", 500)  # not what the store holds
    with pytest.raises(Conflict, match="earnings changed"), store.unit_of_work() as uow:
        uow.referrers.add_earned("alice", "2026-11", 1000, stale)
        uow.referrers.get("alice")
    assert earned(store, "alice") == 0


def test_a_batch_of_signups_waiting_on_the_row_lock_is_one_transaction(
    postgresql: SqlStore, postgresql_url: str, tmp_path: Path
) -> None:
    enrolled(postgresql, "alice")
    clock, program, batches = SystemClock(), Program(), SignupBatches()
    sign_up(postgresql, clock, program, "warm-up", "C-alice")
    trace = Trace(postgresql, tmp_path / "libpq.trace")
    holder = psycopg.connect(postgresql_url.replace("+psycopg", ""))
    with ThreadPoolExecutor(4) as pool:
        with holder.transaction():  # alice's row, locked elsewhere: the first signup waits
            holder.execute("SELECT 1 FROM referrers WHERE user_id = 'alice' FOR UPDATE")
            signups = []
            for n, user in enumerate(["bob", "carol", "dave", "erin"]):
                signups.append(
                    pool.submit(
                        sign_up, postgresql, clock, program, user, "C-alice", batches=batches
                    )
                )
                wait_until_queued(batches, "C-ALICE", n)
        holder.close()
        results = [s.result(10) for s in signups]
    trips = [t for t in round_trips(trace.lines()) if "PREPARE" not in t]  # first time only
    assert [r.referral.ordinal for r in results] == [2, 3, 4, 5]
    assert len([t for t in trips if t.endswith('; COMMIT"')]) == 2  # bob's, then the others'
    # bob: 2; each of the three after him: his read and increment with the writes before
    # it; and their writes with the COMMIT.
    assert len(trips) == 2 + 3 + 1


def test_two_units_in_a_deadlock_make_one_conflict_and_one_success(
    postgresql: SqlStore,
) -> None:
    # Each unit inserts one referee, then the other's: each waits on the other's
    # uncommitted key. The server aborts one of them: a Conflict, which the use case
    # retries, never a 500. The other goes on once the aborted one lets go.
    enrolled(postgresql, "alice", "dave")

    def insert_then_send(uow: Any, referrer_id: str, referee_id: str) -> None:
        ordinal = int(referee_id[1:])  # each referrer's own: only the referees collide
        uow.referrals.add(replace(referral(referrer_id, referee_id), ordinal=ordinal))
        uow.referrals.by_referee("nobody")  # a statement: the waiting insert goes with it

    with postgresql.unit_of_work() as a, postgresql.unit_of_work() as b:
        insert_then_send(a, "alice", "u1")
        insert_then_send(b, "dave", "u2")
        with ThreadPoolExecutor(1) as pool:
            a_second = pool.submit(insert_then_send, a, "alice", "u2")  # waits on b's u2
            outcomes: list[BaseException | None] = []
            try:
                insert_then_send(b, "dave", "u1")  # waits on a's u1: a cycle
                outcomes.append(None)
            except Conflict as conflict:
                outcomes.append(conflict)
            outcomes.append(a_second.exception(30))
    conflicts = [o for o in outcomes if o is not None]
    assert len(conflicts) == 1, outcomes
    assert isinstance(conflicts[0], Conflict)
    assert isinstance(conflicts[0].__cause__, psycopg.errors.DeadlockDetected)


def test_a_signup_refused_or_replayed_in_a_batch_gives_its_count_back(
    postgresql: SqlStore, postgresql_url: str
) -> None:
    # Each signup takes its ordinal with its read; one that goes no further gives it
    # back in the message of the next one's read, so the next takes the same ordinal.
    enrolled(postgresql, "alice")
    clock, program, batches = SystemClock(), Program(), SignupBatches()
    sign_up(postgresql, clock, program, "bob", "C-alice")
    holder = psycopg.connect(postgresql_url.replace("+psycopg", ""))
    users = ["carol", "alice", "bob", "dave", "bob", "erin"]  # alice: self; bob: replayed
    with ThreadPoolExecutor(len(users)) as pool:
        with holder.transaction():  # alice's row, locked elsewhere: the first signup waits
            holder.execute("SELECT 1 FROM referrers WHERE user_id = 'alice' FOR UPDATE")
            signups = []
            for n, user in enumerate(users):
                signups.append(
                    pool.submit(
                        sign_up, postgresql, clock, program, user, "C-alice", batches=batches
                    )
                )
                wait_until_queued(batches, "C-ALICE", n)
        holder.close()
        with pytest.raises(SelfReferral):
            signups[1].result(10)
        ordinals = [signups[n].result(10).referral.ordinal for n in (0, 2, 3, 4, 5)]
    assert ordinals == [2, 1, 3, 1, 4]
    with postgresql.read() as uow:
        assert uow.referrers.get("alice").referral_count == 4  # type: ignore[union-attr]
        found = uow.referrals.for_referrer("alice", 0, 10)
    assert [r.ordinal for r in found] == [1, 2, 3, 4]
