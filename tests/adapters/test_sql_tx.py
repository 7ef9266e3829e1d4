"""The SQL store's short path for a signup's statements (adapters/sql/tx.py): fewer
round trips on PostgreSQL, the same answers as SQLAlchemy's path on both databases."""

import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, insert

from referrals.adapters.clock import SystemClock
from referrals.adapters.sql.schema import conversions
from referrals.adapters.sql.store import SqlStore
from referrals.adapters.sql.tx import Tx
from referrals.bootstrap import build_store
from referrals.domain.errors import Conflict
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
from referrals.services.signups import sign_up
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


class Trace:
    """libpq's own trace of the protocol on every connection the store checks out."""

    def __init__(self, store: SqlStore, path: Path) -> None:
        self.path = path
        self._file = path.open("w")
        self._traced: list[Any] = []
        event.listen(store.writer.pool, "checkout", self._on_checkout)

    def _on_checkout(self, dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
        dbapi_connection.pgconn.trace(self._file.fileno())
        self._traced.append(dbapi_connection.pgconn)

    def lines(self) -> list[str]:
        for pgconn in self._traced:
            pgconn.untrace()  # libpq flushes its buffered trace
        self._file.close()
        return self.path.read_text().splitlines()


def test_a_signup_takes_five_round_trips_on_postgresql(
    postgresql: SqlStore, tmp_path: Path
) -> None:
    enrolled(postgresql, "alice")
    clock, program = SystemClock(), Program()
    sign_up(postgresql, clock, program, "warm-up", "C-alice")  # the pool's first connect
    trace = Trace(postgresql, tmp_path / "libpq.trace")
    sign_up(postgresql, clock, program, "bob", "C-alice")
    lines = trace.lines()
    # Each round trip ends the client's messages with a simple Query or a Sync.
    trips = [line for line in lines if re.search(r"\tF\t\d+\t(Query|Sync)", line)]
    # BEGIN, the parties, the increment, the earned count and the inserts, COMMIT.
    assert len(trips) == 5, "\n".join(lines)
    assert len([line for line in lines if "\tReadyForQuery" in line]) == 5
    [together] = [line for line in lines if "\tParse" in line and "INSERT INTO" in line]
    assert re.findall(r"(UPDATE|INSERT INTO) (\w+)", together) == [
        ("UPDATE", "referrers"),  # the referrer's earned count, checked
        ("INSERT INTO", "referrers"),  # the referee, enrolled
        ("INSERT INTO", "referrals"),
        ("INSERT INTO", "outbox"),
    ]


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
