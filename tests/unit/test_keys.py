from concurrent.futures import ThreadPoolExecutor

from referrals.adapters.memory import MemoryStore
from referrals.domain.model import Role
from referrals.services.keys import (
    FIRST_KEY_ID,
    authenticate,
    create_first_admin_key,
    create_key,
)
from tests.clocks import FixedClock


def test_created_key_authenticates_with_its_role(store: MemoryStore, clock: FixedClock) -> None:
    plaintext, key = create_key(store, clock, Role.INGEST)
    assert authenticate(store, plaintext) == key
    assert key.role is Role.INGEST


def test_only_the_hash_is_stored(store: MemoryStore, clock: FixedClock) -> None:
    plaintext, key = create_key(store, clock, Role.ADMIN)
    assert plaintext not in repr(store.state)
    assert key.key_hash in store.state.api_keys


def test_wrong_or_malformed_keys_do_not_authenticate(store: MemoryStore, clock: FixedClock) -> None:
    plaintext, _ = create_key(store, clock, Role.ADMIN)
    assert authenticate(store, plaintext[:-1] + "x") is None
    assert authenticate(store, "") is None
    assert authenticate(store, "rk_" + "a" * 500) is None


def test_first_admin_key_only_on_an_empty_store(store: MemoryStore, clock: FixedClock) -> None:
    first = create_first_admin_key(store, clock)
    assert first is not None
    assert authenticate(store, first).role is Role.ADMIN  # type: ignore[union-attr]
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
    key = authenticate(store, first or "")
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
