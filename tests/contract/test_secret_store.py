"""The secret the service keeps when none is configured: created once, the same on every store.

Every process that starts without REFERRALS_SECRET_KEY asks for it; the first creates
it (insert if absent), every other, racing or later, reads that one.
"""

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, Self

import pytest

from referrals.domain.checks import Fingerprints
from referrals.domain.errors import Conflict
from referrals.domain.model import Referrer
from referrals.ports import Store
from referrals.services.kept_secret import SECRET_KEY, kept_secret
from tests.clocks import FixedClock

T0 = datetime(2026, 3, 14, 12, tzinfo=UTC)


def test_a_secret_round_trips_and_is_created_once(store: Store) -> None:
    with store.read() as uow:
        assert uow.secrets.get("signing") is None
    with store.unit_of_work() as uow:
        uow.secrets.add("signing", "first-value", T0)
        uow.commit()
    with pytest.raises(Conflict), store.unit_of_work() as uow:
        uow.secrets.add("signing", "second-value", T0)
        uow.commit()
    with store.read() as uow:
        assert uow.secrets.get("signing") == "first-value"
        assert uow.secrets.get("other") is None


def test_the_kept_secret_is_drawn_once_then_read(store: Store) -> None:
    clock = FixedClock(T0)
    first = kept_secret(store, clock)
    assert len(first) >= 43  # 32 random bytes, URL-safe base64
    assert kept_secret(store, clock) == first
    assert kept_secret(store, FixedClock(datetime(2027, 1, 1, tzinfo=UTC))) == first
    with store.read() as uow:
        assert uow.secrets.get(SECRET_KEY) == first


def test_concurrent_creators_all_get_the_same_secret(store: Store) -> None:
    """Servers starting together on an empty database: one secret, whoever wins."""
    clock = FixedClock(T0)
    creators = 6
    start = threading.Barrier(creators)

    def create(_: int) -> str:
        start.wait()
        return kept_secret(store, clock)

    with ThreadPoolExecutor(creators) as pool:
        secrets = list(pool.map(create, range(creators)))
    assert len(set(secrets)) == 1
    with store.read() as uow:
        assert uow.secrets.get(SECRET_KEY) == secrets[0]


class _Blind:
    """`store`, whose first `blind` reads of a secret miss it: a process that looked
    just before another created the secret, then tries to create it too."""

    def __init__(self, store: Store, blind: int) -> None:
        self._store = store
        self.blind = blind

    def read(self) -> "_BlindUnit":
        return _BlindUnit(self._store.read(), self)

    def unit_of_work(self) -> "_BlindUnit":
        return _BlindUnit(self._store.unit_of_work(), self)


class _BlindUnit:
    def __init__(self, uow: Any, owner: _Blind) -> None:
        self._uow = uow
        self._owner = owner

    def __enter__(self) -> Self:
        self._uow.__enter__()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._uow.__exit__(exc_type, exc, tb)

    @property
    def secrets(self) -> Self:
        return self

    def get(self, name: str) -> str | None:
        if self._owner.blind > 0:
            self._owner.blind -= 1
            return None
        value: str | None = self._uow.secrets.get(name)
        return value

    def add(self, name: str, value: str, created_at: datetime) -> None:
        self._uow.secrets.add(name, value, created_at)

    def commit(self) -> None:
        self._uow.commit()


def test_the_loser_of_the_race_reads_the_winners_secret(store: Store) -> None:
    clock = FixedClock(T0)
    winner = kept_secret(store, clock)
    # Missed it twice (its read, then its writing unit): its insert is the Conflict,
    # and the retry reads the winner's.
    late = _Blind(store, blind=2)
    assert kept_secret(late, clock) == winner  # type: ignore[arg-type]
    assert late.blind == 0
    with store.read() as uow:
        assert uow.secrets.get(SECRET_KEY) == winner


def test_a_keyed_fingerprint_round_trips_on_the_referrer(store: Store) -> None:
    prints = Fingerprints(b"contract-test-fingerprint-key-012345")
    ip, device = prints("2001:db8::1"), prints("x" * 128)
    assert ip is not None and device is not None
    alice = Referrer("alice", "A1", None, 0, T0, ip_hash=ip.stored, device_hash=device.stored)
    with store.unit_of_work() as uow:
        uow.referrers.add(alice)
        uow.commit()
    with store.read() as uow:
        kept = uow.referrers.get("alice")
    assert kept is not None and (kept.ip_hash, kept.device_hash) == (ip.stored, device.stored)
    assert ip.matches(kept.ip_hash) and device.matches(kept.device_hash)
