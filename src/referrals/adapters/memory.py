"""An in-memory store: the fake the unit tests use, held to the same contract suite.

One lock serializes units of work; each works on a copy and publishes it on
commit, so an uncommitted or failed unit of work leaves nothing behind.
"""

import copy
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from types import TracebackType
from typing import Self

from referrals.domain.codes import normalize_code
from referrals.domain.errors import Conflict
from referrals.domain.model import ApiKey, Earnings, Referral, ReferralStatus, Referrer


@dataclass
class _State:
    referrers: dict[str, Referrer] = field(default_factory=dict)
    codes: dict[str, str] = field(default_factory=dict)  # code key -> user id
    referrals: dict[str, Referral] = field(default_factory=dict)
    referees: dict[str, str] = field(default_factory=dict)  # referee id -> referral id
    api_keys: dict[str, ApiKey] = field(default_factory=dict)  # hash -> key


class MemoryReferrers:
    def __init__(self, state: _State) -> None:
        self._s = state

    def get(self, user_id: str) -> Referrer | None:
        return self._s.referrers.get(user_id)

    def by_code(self, code: str) -> Referrer | None:
        user_id = self._s.codes.get(normalize_code(code))
        return self._s.referrers[user_id] if user_id else None

    def add(self, referrer: Referrer) -> None:
        key = normalize_code(referrer.code)
        if referrer.user_id in self._s.referrers or key in self._s.codes:
            raise Conflict("referrer or code exists")
        self._s.referrers[referrer.user_id] = referrer
        self._s.codes[key] = referrer.user_id

    def increment_referral_count(self, user_id: str) -> int:
        referrer = self._s.referrers[user_id]
        updated = replace(referrer, referral_count=referrer.referral_count + 1)
        self._s.referrers[user_id] = updated
        return updated.referral_count

    def earnings(self, user_id: str) -> Earnings:
        pending = paid = 0
        for referral in self._s.referrals.values():
            if referral.referrer_id != user_id:
                continue
            if referral.status is ReferralStatus.PAID:
                paid += referral.reward_cents
            else:
                pending += referral.reward_cents
        return Earnings(pending_cents=pending, paid_cents=paid)


class MemoryReferrals:
    def __init__(self, state: _State) -> None:
        self._s = state

    def get(self, referral_id: str) -> Referral | None:
        return self._s.referrals.get(referral_id)

    def by_referee(self, referee_id: str) -> Referral | None:
        referral_id = self._s.referees.get(referee_id)
        return self._s.referrals[referral_id] if referral_id else None

    def add(self, referral: Referral) -> None:
        if referral.referee_id in self._s.referees or referral.id in self._s.referrals:
            raise Conflict("referee already referred")
        if referral.referrer_id not in self._s.referrers:
            raise Conflict("unknown referrer")
        self._s.referrals[referral.id] = referral
        self._s.referees[referral.referee_id] = referral.id

    def for_referrer(
        self, referrer_id: str, after_ordinal: int | None, limit: int
    ) -> Sequence[Referral]:
        rows = sorted(
            (r for r in self._s.referrals.values() if r.referrer_id == referrer_id),
            key=lambda r: r.ordinal,
        )
        return [r for r in rows if after_ordinal is None or r.ordinal > after_ordinal][:limit]

    def search(
        self,
        status: ReferralStatus | None,
        referrer_id: str | None,
        after_id: str | None,
        limit: int,
    ) -> Sequence[Referral]:
        rows = [
            r
            for r in sorted(self._s.referrals.values(), key=lambda r: r.id)
            if (status is None or r.status is status)
            and (referrer_id is None or r.referrer_id == referrer_id)
            and (after_id is None or r.id > after_id)
        ]
        return rows[:limit]


class MemoryApiKeys:
    def __init__(self, state: _State) -> None:
        self._s = state

    def add(self, key: ApiKey) -> None:
        if key.key_hash in self._s.api_keys:
            raise Conflict("key exists")
        self._s.api_keys[key.key_hash] = key

    def by_hash(self, key_hash: str) -> ApiKey | None:
        return self._s.api_keys.get(key_hash)

    def count(self) -> int:
        return len(self._s.api_keys)


class MemoryUnitOfWork:
    referrers: MemoryReferrers
    referrals: MemoryReferrals
    api_keys: MemoryApiKeys

    def __init__(self, store: "MemoryStore") -> None:
        self._store = store

    def __enter__(self) -> Self:
        self._store.lock.acquire()
        self._state = copy.deepcopy(self._store.state)
        self.referrers = MemoryReferrers(self._state)
        self.referrals = MemoryReferrals(self._state)
        self.api_keys = MemoryApiKeys(self._state)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._store.lock.release()

    def commit(self) -> None:
        self._store.state = copy.deepcopy(self._state)


class MemoryStore:
    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.state = _State()

    def unit_of_work(self) -> MemoryUnitOfWork:
        return MemoryUnitOfWork(self)

    def read(self) -> MemoryUnitOfWork:
        return MemoryUnitOfWork(self)

    def check(self) -> None:
        return None
