"""API keys' lifecycle and dashboard sessions, the same on every store."""

from concurrent.futures import ThreadPoolExecutor
from contextlib import suppress
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from referrals.domain.errors import Conflict
from referrals.domain.model import ApiKey, DashboardSession, Role, new_id
from referrals.ports import Store
from referrals.services.keys import (
    FIRST_KEY_ID,
    authenticate,
    create_first_admin_key,
    create_key,
    revoke_key,
    rotate_key,
)
from tests.clocks import FixedClock

T0 = datetime(2026, 1, 31, 23, 59, 59, 999_999, tzinfo=UTC)


def add(store: Store, *keys: ApiKey) -> None:
    with store.unit_of_work() as uow:
        for key in keys:
            uow.api_keys.add(key)
        uow.commit()


def stored(store: Store, key: ApiKey) -> ApiKey | None:
    with store.read() as uow:
        return uow.api_keys.get(key.id)


def test_a_key_round_trips_with_its_lifecycle(store: Store) -> None:
    key = ApiKey(
        new_id(datetime.now(UTC)),
        Role.ADMIN,
        "ab" * 32,
        T0,
        name="ops: Zoë's laptop",
        expires_at=T0 + timedelta(days=90),
        last_used_at=T0 + timedelta(minutes=1),
    )
    plain = ApiKey(new_id(datetime.now(UTC)), Role.INGEST, "cd" * 32, T0)
    add(store, key, plain)
    with store.read() as uow:
        assert uow.api_keys.by_hash(key.key_hash) == key
        assert uow.api_keys.get(key.id) == key
        assert uow.api_keys.get(plain.id) == plain
        assert uow.api_keys.get("01NOSUCHKEY000000000000000") is None


def test_keys_are_listed_oldest_first_then_by_id(store: Store) -> None:
    later = ApiKey(new_id(datetime.now(UTC)), Role.INGEST, "ab" * 32, T0 + timedelta(seconds=1))
    first = ApiKey(FIRST_KEY_ID, Role.ADMIN, "cd" * 32, T0)
    same_time = ApiKey("01" + "A" * 24, Role.INGEST, "ef" * 32, T0)
    add(store, later, first, same_time)
    with store.read() as uow:
        assert [k.id for k in uow.api_keys.list()] == [same_time.id, FIRST_KEY_ID, later.id]


def test_a_key_is_revoked_once(store: Store) -> None:
    key = ApiKey(new_id(datetime.now(UTC)), Role.INGEST, "ab" * 32, T0)
    add(store, key)
    with store.unit_of_work() as uow:
        uow.api_keys.revoke(key, T0 + timedelta(hours=1))
        uow.commit()
    with pytest.raises(Conflict), store.unit_of_work() as uow:
        uow.api_keys.revoke(key, T0 + timedelta(hours=2))
        uow.commit()
    assert stored(store, key) == replace(key, revoked_at=T0 + timedelta(hours=1))


def test_an_expiry_is_set_on_the_key_as_read_and_never_on_a_revoked_one(store: Store) -> None:
    key = ApiKey(new_id(datetime.now(UTC)), Role.INGEST, "ab" * 32, T0)
    add(store, key)
    with store.unit_of_work() as uow:
        uow.api_keys.expire(key, T0 + timedelta(hours=1))
        uow.commit()
    with pytest.raises(Conflict), store.unit_of_work() as uow:
        uow.api_keys.expire(key, T0 + timedelta(hours=2))  # read before the first expiry
        uow.commit()
    expiring = replace(key, expires_at=T0 + timedelta(hours=1))
    assert stored(store, key) == expiring
    with store.unit_of_work() as uow:
        uow.api_keys.revoke(expiring, T0)
        uow.commit()
    with pytest.raises(Conflict), store.unit_of_work() as uow:
        uow.api_keys.expire(expiring, T0 + timedelta(minutes=5))
        uow.commit()
    assert stored(store, key) == replace(expiring, revoked_at=T0)


def test_a_use_is_written_only_over_a_stale_one(store: Store) -> None:
    key = ApiKey(new_id(datetime.now(UTC)), Role.INGEST, "ab" * 32, T0)
    add(store, key)
    first, later = T0 + timedelta(seconds=1), T0 + timedelta(seconds=30)
    with store.unit_of_work() as uow:
        uow.api_keys.touch(key.key_hash, first, first - timedelta(minutes=1))
        uow.commit()
    with suppress(Conflict), store.unit_of_work() as uow:  # a store may refuse it so
        uow.api_keys.touch(key.key_hash, later, later - timedelta(minutes=1))
        uow.commit()
    assert stored(store, key) == replace(key, last_used_at=first)
    a_minute_on = first + timedelta(minutes=1)
    with store.unit_of_work() as uow:
        uow.api_keys.touch(key.key_hash, a_minute_on, first)
        uow.commit()
    assert stored(store, key) == replace(key, last_used_at=a_minute_on)


def test_a_session_is_found_by_its_key_and_id_and_ends_once(store: Store) -> None:
    key = ApiKey(new_id(datetime.now(UTC)), Role.ADMIN, "ab" * 32, T0)
    add(store, key)
    session = DashboardSession("s-1_x", key.id, T0, T0 + timedelta(hours=8))
    with store.unit_of_work() as uow:
        uow.sessions.add(session)
        uow.commit()
    with store.read() as uow:
        assert uow.sessions.get(key.id, "s-1_x") == session
        assert uow.sessions.get(key.id, "other") is None
        assert uow.sessions.get(FIRST_KEY_ID, "s-1_x") is None
    for at in (T0 + timedelta(hours=1), T0 + timedelta(hours=2)):
        with store.unit_of_work() as uow:
            uow.sessions.end(session, at)
            uow.commit()
    with store.read() as uow:
        assert uow.sessions.get(key.id, "s-1_x") == replace(
            session, ended_at=T0 + timedelta(hours=1)
        )


def test_rotation_and_revocation_through_the_use_cases(store: Store) -> None:
    clock = FixedClock(T0)
    first = create_first_admin_key(store, clock) or ""
    secret, new, old = rotate_key(store, clock, FIRST_KEY_ID, timedelta(minutes=5))
    assert authenticate(store, first, T0 + timedelta(minutes=4)) == old
    assert authenticate(store, first, T0 + timedelta(minutes=5)) is None
    assert authenticate(store, secret, T0) == new
    revoke_key(store, clock, new.id, FIRST_KEY_ID, "done")
    assert authenticate(store, secret, T0) is None
    with store.read() as uow:
        actions = [(e.actor, e.action, e.target) for e in uow.audit.list(None, 10)]
    assert sorted(actions) == sorted(
        [
            ("cli", "key.create", f"key:{FIRST_KEY_ID}"),
            ("cli", "key.create", f"key:{new.id}"),
            ("cli", "key.rotate", f"key:{FIRST_KEY_ID}"),
            (FIRST_KEY_ID, "key.revoke", f"key:{new.id}"),
        ]
    )


def test_concurrent_revocations_revoke_once(store: Store) -> None:
    clock = FixedClock(T0)
    _, key = create_key(store, clock, Role.INGEST)
    with ThreadPoolExecutor(4) as pool:
        revoked = list(pool.map(lambda n: revoke_key(store, clock, key.id, f"a{n}"), range(4)))
    assert {k.revoked_at for k in revoked} == {T0}
    with store.read() as uow:
        assert [e.action for e in uow.audit.list(None, 10)].count("key.revoke") == 1


def test_concurrent_rotations_each_leave_one_working_successor(store: Store) -> None:
    clock = FixedClock(T0)
    _, key = create_key(store, clock, Role.ADMIN, name="ops")
    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(lambda _: rotate_key(store, clock, key.id), range(2)))
    with store.read() as uow:
        keys = uow.api_keys.list()
    # Both rotations happened, one after the other (the second saw the first's expiry):
    # no write was lost, and each successor is a key of its own.
    assert len(keys) == 3 and {k.name for k in keys} == {"ops"}
    assert {new.id for _, new, _ in results} == {k.id for k in keys} - {key.id}
