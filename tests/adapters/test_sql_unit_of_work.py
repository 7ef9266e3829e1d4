"""The SQL unit of work on SQLite and PostgreSQL: one transaction on one connection, each
statement run as it comes, a lost race raised as Conflict and nothing of the unit kept;
psycopg prepares the repeated statements itself and keeps them across units."""

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest
from sqlalchemy import text

from referrals.adapters.sql.store import SqlStore
from referrals.bootstrap import build_store
from referrals.domain.errors import Conflict
from referrals.domain.events import referral_created
from referrals.domain.model import Referral, ReferralStatus, Referrer, Reward, RewardKind, new_id
from tests.postgresql import emptied_store, migrated_database

NOW = datetime(2026, 11, 2, tzinfo=UTC)


@pytest.fixture(scope="module")
def postgresql_url() -> Iterator[str]:
    with migrated_database("referrals_uow") as url:
        yield url


@pytest.fixture
def postgresql(postgresql_url: str) -> Iterator[SqlStore]:
    with emptied_store(postgresql_url) as store:
        yield store


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SqlStore]:
    if request.param == "postgresql":
        yield request.getfixturevalue("postgresql")
        return
    built = build_store(f"sqlite:///{tmp_path}/uow.db", migrate=True)
    assert isinstance(built, SqlStore)
    yield built
    built.dispose()


def referrer(user_id: str) -> Referrer:
    return Referrer(user_id, f"C-{user_id}", None, referral_count=0, created_at=NOW)


def referral(referrer_id: str, referee_id: str, ordinal: int = 1) -> Referral:
    return Referral(
        id=new_id(NOW),
        referee_id=referee_id,
        referrer_id=referrer_id,
        code=f"C-{referrer_id}",
        email=None,
        ordinal=ordinal,
        reward_cents=1000,
        status=ReferralStatus.PENDING,
        created_at=NOW,
    )


def enrolled(store: SqlStore, *users: str) -> None:
    with store.unit_of_work() as uow:
        for user in users:
            uow.referrers.add(referrer(user))
        uow.commit()


def earned(store: SqlStore, user: str) -> int:
    with store.read() as uow:
        found = uow.referrers.get(user)
    assert found is not None
    return found.cap_lifetime_cents


def test_a_read_sees_the_writes_before_it_in_the_unit(store: SqlStore) -> None:
    with store.unit_of_work() as uow:
        uow.referrers.add(referrer("alice"))
        found = uow.referrers.get("alice")
        uow.commit()
    assert found == referrer("alice")


def test_a_reward_lands_with_the_referral_it_refers_to(store: SqlStore) -> None:
    enrolled(store, "alice")
    new = referral("alice", "bob")
    bonus = Reward(new_id(NOW), new.id, "bob", RewardKind.REFEREE, 500, new.status, NOW)
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
    with store.unit_of_work() as uow:
        uow.referrals.add(referral("alice", "bob"))
        uow.commit()
    with pytest.raises(Conflict), store.unit_of_work() as uow:
        uow.referrers.add(referrer("carol"))
        uow.referrals.add(referral("dave", "bob"))  # bob was referred by alice
        uow.commit()
    with store.read() as uow:
        assert uow.referrers.get("carol") is None
        assert uow.referrals.by_referee("bob").referrer_id == "alice"  # type: ignore[union-attr]


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
    enrolled(store, "alice")
    with store.unit_of_work() as uow:
        uow.referrers.add_earned("alice", "2026-11", 1000)
        uow.referrers.add_earned("alice", "2026-11", 500)
        uow.commit()
    assert earned(store, "alice") == 1500


def test_an_update_finds_the_row_inserted_before_it_in_the_unit(store: SqlStore) -> None:
    with store.unit_of_work() as uow:
        uow.referrers.add(referrer("carol"))
        uow.referrers.add_earned("carol", "2026-11", 700, referrer("carol"))
        uow.commit()
    assert earned(store, "carol") == 700


def test_a_unit_used_after_its_commit_keeps_nothing_more(store: SqlStore) -> None:
    with store.unit_of_work() as uow:
        uow.referrers.add(referrer("alice"))
        uow.commit()
        uow.referrers.add(referrer("bob"))  # a new transaction, rolled back at the end
    with store.read() as uow:
        assert uow.referrers.get("alice") is not None
        assert uow.referrers.get("bob") is None


def test_two_units_in_a_deadlock_make_one_conflict_and_one_success(
    postgresql: SqlStore,
) -> None:
    # Each unit inserts one referee, then the other's: each waits on the other's
    # uncommitted key. The server aborts one of them: a Conflict, which the use case
    # retries, never a 500. The other goes on once the aborted one lets go.
    enrolled(postgresql, "alice", "dave")

    def insert(uow: Any, referrer_id: str, referee_id: str) -> None:
        ordinal = int(referee_id[1:])  # each referrer's own: only the referees collide
        uow.referrals.add(referral(referrer_id, referee_id, ordinal))

    with postgresql.unit_of_work() as a, postgresql.unit_of_work() as b:
        insert(a, "alice", "u1")
        insert(b, "dave", "u2")
        with ThreadPoolExecutor(1) as pool:
            a_second = pool.submit(insert, a, "alice", "u2")  # waits on b's u2
            outcomes: list[BaseException | None] = []
            try:
                insert(b, "dave", "u1")  # waits on a's u1: a cycle
                outcomes.append(None)
            except Conflict as conflict:
                outcomes.append(conflict)
            outcomes.append(a_second.exception(30))
    conflicts = [o for o in outcomes if o is not None]
    assert len(conflicts) == 1, outcomes
    assert isinstance(conflicts[0], Conflict)
    assert isinstance(conflicts[0].__cause__.orig, psycopg.errors.DeadlockDetected)  # type: ignore[union-attr]


def _prepared_statements(store: SqlStore) -> int:
    with store.read() as uow:
        count = uow.connection.execute(text("SELECT count(*) FROM pg_prepared_statements"))
        return int(count.scalar_one())


def test_psycopg_prepares_repeated_statements_and_keeps_them_across_units(
    postgresql: SqlStore, postgresql_url: str
) -> None:
    enrolled(postgresql, "alice")
    store = build_store(postgresql_url, pool_size=1)  # every unit on the same connection
    assert isinstance(store, SqlStore)
    try:
        for _ in range(8):  # past psycopg's threshold (5 runs)
            with store.read() as uow:
                assert uow.referrers.get("alice") == referrer("alice")
        assert _prepared_statements(store) >= 1
        with store.read() as uow:  # a read ends with COMMIT: psycopg drops them at ROLLBACK
            uow.referrers.get("alice")
        with store.unit_of_work() as uow:
            uow.referrers.add_earned("alice", "2026-11", 100)
            uow.commit()
        assert _prepared_statements(store) >= 1
    finally:
        store.dispose()


def test_a_postgresql_store_serves_as_many_units_at_once_as_its_pool_holds(
    postgresql_url: str,
) -> None:
    store = build_store(postgresql_url, pool_size=7)
    try:
        assert store.concurrency_limit == 7
    finally:
        store.dispose()


def test_a_sqlite_store_sets_no_bound_on_units_at_once(tmp_path: Path) -> None:
    store = build_store(f"sqlite:///{tmp_path}/bound.db", migrate=True)
    try:
        assert store.concurrency_limit is None
    finally:
        store.dispose()
