"""Dashboard sessions on the server: live while their record and their key are."""

from datetime import timedelta

from referrals.adapters.memory import MemoryStore
from referrals.domain.model import ApiKey, Role
from referrals.services import sessions
from referrals.services.keys import create_key, revoke_key, rotate_key
from tests.clocks import FixedClock

HOURS_8 = timedelta(hours=8)


def signed_in(store: MemoryStore, clock: FixedClock, role: Role = Role.ADMIN) -> ApiKey:
    _, key = create_key(store, clock, role)
    sessions.start(store, clock, key, "s1", clock.now() + HOURS_8)
    return key


def test_a_session_is_live_until_it_expires(store: MemoryStore, clock: FixedClock) -> None:
    key = signed_in(store, clock)
    assert sessions.live_key(store, clock, key.id, "s1") == key
    clock.advance(hours=8)
    assert sessions.live_key(store, clock, key.id, "s1") is None


def test_an_unknown_session_or_another_keys_is_not_live(
    store: MemoryStore, clock: FixedClock
) -> None:
    key = signed_in(store, clock)
    _, other = create_key(store, clock, Role.ADMIN)
    assert sessions.live_key(store, clock, key.id, "s2") is None
    assert sessions.live_key(store, clock, other.id, "s1") is None


def test_signing_out_ends_the_session(store: MemoryStore, clock: FixedClock) -> None:
    key = signed_in(store, clock)
    sessions.end(store, clock, key.id, "s1")
    assert store.state.sessions[key.id, "s1"].ended_at == clock.now()
    assert sessions.live_key(store, clock, key.id, "s1") is None
    clock.advance(minutes=1)
    sessions.end(store, clock, key.id, "s1")  # again: the first end stays
    sessions.end(store, clock, key.id, "unknown")
    assert store.state.sessions[key.id, "s1"].ended_at == clock.now() - timedelta(minutes=1)


def test_a_revoked_keys_sessions_end_with_it(store: MemoryStore, clock: FixedClock) -> None:
    key = signed_in(store, clock)
    revoke_key(store, clock, key.id)
    assert sessions.live_key(store, clock, key.id, "s1") is None


def test_a_rotated_keys_sessions_end_with_its_grace_period(
    store: MemoryStore, clock: FixedClock
) -> None:
    key = signed_in(store, clock)
    rotate_key(store, clock, key.id, timedelta(minutes=10))
    clock.advance(minutes=9)
    assert sessions.live_key(store, clock, key.id, "s1") is not None
    clock.advance(minutes=1)
    assert sessions.live_key(store, clock, key.id, "s1") is None


def test_a_session_never_outlives_its_key(store: MemoryStore, clock: FixedClock) -> None:
    _, key = create_key(store, clock, Role.ADMIN, expires_in=timedelta(hours=1))
    session = sessions.start(store, clock, key, "s1", clock.now() + HOURS_8)
    assert session.expires_at == key.expires_at


def test_an_ingest_keys_session_is_never_live(store: MemoryStore, clock: FixedClock) -> None:
    key = signed_in(store, clock, Role.INGEST)  # the dashboard never starts one
    assert sessions.live_key(store, clock, key.id, "s1") is None
