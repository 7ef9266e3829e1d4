from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import timedelta

import pytest

from referrals.adapters.memory import MemoryApiKeys, MemoryStore
from referrals.domain.errors import DomainError, InvalidInput, KeyNotActive, NotFound
from referrals.domain.model import KeyState, Role
from referrals.services.keys import (
    FIRST_KEY_ID,
    authenticate,
    create_first_admin_key,
    create_key,
    find_key,
    list_keys,
    record_use,
    revoke_key,
    rotate_key,
)
from tests.clocks import FixedClock


def test_created_key_authenticates_with_its_role(store: MemoryStore, clock: FixedClock) -> None:
    plaintext, key = create_key(store, clock, Role.INGEST)
    assert authenticate(store, plaintext, clock.now()) == key
    assert key.role is Role.INGEST


def test_only_the_hash_is_stored(store: MemoryStore, clock: FixedClock) -> None:
    plaintext, key = create_key(store, clock, Role.ADMIN)
    assert plaintext not in repr(store.state)
    assert key.key_hash in store.state.api_keys


def test_wrong_or_malformed_keys_do_not_authenticate(store: MemoryStore, clock: FixedClock) -> None:
    plaintext, _ = create_key(store, clock, Role.ADMIN)
    assert authenticate(store, plaintext[:-1] + "x", clock.now()) is None
    assert authenticate(store, "", clock.now()) is None
    assert authenticate(store, "rk_" + "a" * 500, clock.now()) is None


def test_first_admin_key_only_on_an_empty_store(store: MemoryStore, clock: FixedClock) -> None:
    first = create_first_admin_key(store, clock)
    assert first is not None
    assert authenticate(store, first, clock.now()).role is Role.ADMIN  # type: ignore[union-attr]
    assert create_first_admin_key(store, clock) is None


def test_servers_starting_together_print_one_admin_key(
    store: MemoryStore, clock: FixedClock
) -> None:
    with ThreadPoolExecutor(4) as pool:
        keys = list(pool.map(lambda _: create_first_admin_key(store, clock), range(4)))
    assert sum(k is not None for k in keys) == 1
    assert len(store.state.api_keys) == 1
    # Its creation is audited once, by the host, however many servers raced.
    assert [(e.actor, e.action) for e in store.state.audit.values()] == [("cli", "key.create")]


def test_the_first_admin_key_is_named_and_its_creation_audited(
    store: MemoryStore, clock: FixedClock
) -> None:
    first = create_first_admin_key(store, clock)
    key = authenticate(store, first or "", clock.now())
    assert key is not None and key.id == FIRST_KEY_ID == "first-admin"
    (entry,) = store.state.audit.values()
    assert (entry.actor, entry.action, entry.target) == ("cli", "key.create", "key:first-admin")
    assert entry.at == clock.now() and entry.reason and "admin" in entry.reason


def test_a_key_made_on_the_host_is_audited_as_the_cli(
    store: MemoryStore, clock: FixedClock
) -> None:
    _, key = create_key(store, clock, Role.INGEST)
    (entry,) = store.state.audit.values()
    assert (entry.actor, entry.action, entry.target) == ("cli", "key.create", f"key:{key.id}")


# The lifecycle: names, expiry, revocation, rotation, last use


def audit_entries(store: MemoryStore) -> list[tuple[str, str, str, str | None]]:
    entries = sorted(store.state.audit.values(), key=lambda e: (e.at, e.action, e.id))
    return [(e.actor, e.action, e.target, e.reason) for e in entries]


def test_a_key_has_a_name_and_an_expiry(store: MemoryStore, clock: FixedClock) -> None:
    plaintext, key = create_key(
        store, clock, Role.INGEST, name="  checkout backend ", expires_in=timedelta(days=90)
    )
    assert (key.name, key.expires_at) == ("checkout backend", clock.now() + timedelta(days=90))
    (entry,) = store.state.audit.values()
    expires = (clock.now() + timedelta(days=90)).isoformat()
    assert entry.reason == f"role ingest, name 'checkout backend', expires {expires}"
    assert authenticate(store, plaintext, clock.now()) == key


@pytest.mark.parametrize("name", ["", "   ", "x" * 65, "tab\there", "bell\x07"])
def test_a_bad_name_is_refused(store: MemoryStore, clock: FixedClock, name: str) -> None:
    with pytest.raises(InvalidInput):
        create_key(store, clock, Role.INGEST, name=name)
    assert store.state.api_keys == {}


@pytest.mark.parametrize("seconds", [0, 59, 3650 * 86400 + 1])
def test_an_expiry_out_of_bounds_is_refused(
    store: MemoryStore, clock: FixedClock, seconds: int
) -> None:
    with pytest.raises(InvalidInput):
        create_key(store, clock, Role.INGEST, expires_in=timedelta(seconds=seconds))


def test_an_expired_key_does_not_authenticate(store: MemoryStore, clock: FixedClock) -> None:
    plaintext, key = create_key(store, clock, Role.ADMIN, expires_in=timedelta(hours=1))
    assert authenticate(store, plaintext, clock.now() + timedelta(minutes=59)) == key
    assert authenticate(store, plaintext, clock.now() + timedelta(hours=1)) is None
    assert find_key(store, plaintext) == key  # still listed, in its state
    assert key.state(clock.now() + timedelta(hours=1)) is KeyState.EXPIRED


def test_a_revoked_key_does_not_authenticate_and_the_revocation_is_audited(
    store: MemoryStore, clock: FixedClock
) -> None:
    plaintext, key = create_key(store, clock, Role.INGEST)
    clock.advance(minutes=5)
    revoked = revoke_key(store, clock, key.id, "01ACTOR0000000000000000000", "leaked in a log")
    assert revoked.revoked_at == clock.now() and revoked.state(clock.now()) is KeyState.REVOKED
    assert authenticate(store, plaintext, clock.now()) is None
    assert audit_entries(store)[-1] == (
        "01ACTOR0000000000000000000",
        "key.revoke",
        f"key:{key.id}",
        "leaked in a log",
    )


def test_revoking_a_revoked_key_changes_nothing(store: MemoryStore, clock: FixedClock) -> None:
    _, key = create_key(store, clock, Role.INGEST)
    first = revoke_key(store, clock, key.id)
    clock.advance(hours=1)
    assert revoke_key(store, clock, key.id) == first  # the first revocation's time stays
    assert [e[1] for e in audit_entries(store)] == ["key.create", "key.revoke"]


def test_an_unknown_key_cannot_be_revoked_or_rotated(store: MemoryStore, clock: FixedClock) -> None:
    with pytest.raises(NotFound):
        revoke_key(store, clock, "01NOSUCHKEY000000000000000")
    with pytest.raises(NotFound):
        rotate_key(store, clock, "01NOSUCHKEY000000000000000")


def test_a_rotated_key_works_for_its_grace_period_beside_the_new_one(
    store: MemoryStore, clock: FixedClock
) -> None:
    old_secret, old = create_key(store, clock, Role.ADMIN, name="ops")
    clock.advance(days=1)
    new_secret, new, old_now = rotate_key(store, clock, old.id, timedelta(minutes=30))
    assert (new.role, new.name, new.expires_at) == (Role.ADMIN, "ops", None)
    assert new.id != old.id and new_secret != old_secret
    assert old_now == replace(old, expires_at=clock.now() + timedelta(minutes=30))
    assert authenticate(store, old_secret, clock.now() + timedelta(minutes=29)) == old_now
    assert authenticate(store, old_secret, clock.now() + timedelta(minutes=30)) is None
    assert authenticate(store, new_secret, clock.now() + timedelta(days=400)) == new
    until = (clock.now() + timedelta(minutes=30)).isoformat()
    assert audit_entries(store)[-2:] == [
        ("cli", "key.create", f"key:{new.id}", f"rotated from {old.id}, role admin, name 'ops'"),
        ("cli", "key.rotate", f"key:{old.id}", f"new key {new.id}; this one works until {until}"),
    ]


def test_a_rotation_with_no_grace_ends_the_old_key_at_once(
    store: MemoryStore, clock: FixedClock
) -> None:
    old_secret, old = create_key(store, clock, Role.INGEST)
    _, new, _ = rotate_key(store, clock, old.id, timedelta(0), expires_in=timedelta(days=30))
    assert authenticate(store, old_secret, clock.now()) is None
    assert new.expires_at == clock.now() + timedelta(days=30)


def test_a_rotation_never_extends_the_old_keys_life(store: MemoryStore, clock: FixedClock) -> None:
    _, old = create_key(store, clock, Role.INGEST, expires_in=timedelta(minutes=10))
    _, _, old_now = rotate_key(store, clock, old.id, timedelta(hours=1))
    assert old_now.expires_at == old.expires_at


def test_a_revoked_or_expired_key_cannot_be_rotated(store: MemoryStore, clock: FixedClock) -> None:
    _, revoked = create_key(store, clock, Role.INGEST)
    revoke_key(store, clock, revoked.id)
    _, expired = create_key(store, clock, Role.INGEST, expires_in=timedelta(minutes=1))
    clock.advance(minutes=1)
    for key in (revoked, expired):
        with pytest.raises(KeyNotActive):
            rotate_key(store, clock, key.id)
    assert len(store.state.api_keys) == 2  # no new key


@pytest.mark.parametrize("grace", [timedelta(seconds=-1), timedelta(days=30, seconds=1)])
def test_a_grace_period_out_of_bounds_is_refused(
    store: MemoryStore, clock: FixedClock, grace: timedelta
) -> None:
    _, key = create_key(store, clock, Role.INGEST)
    with pytest.raises(InvalidInput):
        rotate_key(store, clock, key.id, grace)


def test_the_first_admin_key_can_be_rotated(store: MemoryStore, clock: FixedClock) -> None:
    first = create_first_admin_key(store, clock) or ""
    new_secret, new, old = rotate_key(store, clock, FIRST_KEY_ID, timedelta(0))
    assert old.id == FIRST_KEY_ID and authenticate(store, first, clock.now()) is None
    assert authenticate(store, new_secret, clock.now()) == new
    assert (new.role, new.name) == (Role.ADMIN, "first admin")


def test_the_last_use_is_written_at_most_once_a_minute(
    store: MemoryStore, clock: FixedClock
) -> None:
    _, key = create_key(store, clock, Role.INGEST)
    used = record_use(store, clock, key)
    assert used.last_used_at == clock.now() == store.state.api_keys[key.key_hash].last_used_at
    first = clock.now()
    clock.advance(seconds=59)
    assert record_use(store, clock, used) == used  # no write: not a minute yet
    stale = record_use(store, clock, key)  # another server, holding the key as first read
    assert stale.last_used_at == clock.now()
    assert store.state.api_keys[key.key_hash].last_used_at == first  # the write was refused
    clock.advance(seconds=1)
    record_use(store, clock, used)
    assert store.state.api_keys[key.key_hash].last_used_at == clock.now()


def test_keys_are_listed_oldest_first_in_every_state(store: MemoryStore, clock: FixedClock) -> None:
    _, first = create_key(store, clock, Role.ADMIN)
    clock.advance(seconds=1)
    _, second = create_key(store, clock, Role.INGEST, name="b")
    revoke_key(store, clock, first.id)
    assert [k.id for k in list_keys(store)] == [first.id, second.id]
    assert list_keys(store)[0].revoked_at == clock.now()


def test_a_store_that_cannot_write_does_not_fail_the_use(
    store: MemoryStore, clock: FixedClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, key = create_key(store, clock, Role.INGEST)

    def full(*_: object) -> None:
        raise DomainError("the disk is full")

    monkeypatch.setattr(MemoryApiKeys, "touch", full)
    assert record_use(store, clock, key).last_used_at == clock.now()  # noted for a minute
    assert store.state.api_keys[key.key_hash].last_used_at is None
