"""An in-memory store: the fake the unit tests use, held to the same contract suite.

One lock serializes units of work; each works on a copy and publishes it on
commit, so an uncommitted or failed unit of work leaves nothing behind.
"""

import copy
import threading
from datetime import datetime, timedelta
from types import TracebackType
from typing import Self

from referrals.adapters.memory.aliases import MemorySaleAliases
from referrals.adapters.memory.clicks import MemoryClicks
from referrals.adapters.memory.keys import MemoryApiKeys, MemorySecrets, MemorySessions
from referrals.adapters.memory.outbox import MemoryAudit, MemoryOutbox
from referrals.adapters.memory.payouts import MemoryPayouts
from referrals.adapters.memory.programs import MemoryPrograms
from referrals.adapters.memory.referrers import (
    MemoryConversions,
    MemoryReferrals,
    MemoryReferrers,
    MemoryRewards,
)
from referrals.adapters.memory.replay import MemoryReplay
from referrals.adapters.memory.sales import MemorySales
from referrals.adapters.memory.state import State
from referrals.adapters.memory.stats import MemoryStats


class MemoryUnitOfWork:
    referrers: MemoryReferrers
    referrals: MemoryReferrals
    api_keys: MemoryApiKeys
    sessions: MemorySessions
    secrets: MemorySecrets
    payouts: MemoryPayouts
    programs: MemoryPrograms
    outbox: MemoryOutbox
    audit: MemoryAudit
    rewards: MemoryRewards
    conversions: MemoryConversions
    stats: MemoryStats
    sales: MemorySales
    clicks: MemoryClicks
    sale_aliases: MemorySaleAliases

    def __init__(self, store: "MemoryStore") -> None:
        self._store = store

    def __enter__(self) -> Self:
        self._store.lock.acquire()
        self._state = copy.deepcopy(self._store.state)
        self.referrers = MemoryReferrers(self._state)
        self.referrals = MemoryReferrals(self._state)
        self.api_keys = MemoryApiKeys(self._state)
        self.sessions = MemorySessions(self._state)
        self.secrets = MemorySecrets(self._state)
        self.payouts = MemoryPayouts(self._state)
        self.programs = MemoryPrograms(self._state)
        self.outbox = MemoryOutbox(self._state)
        self.audit = MemoryAudit(self._state)
        self.rewards = MemoryRewards(self._state)
        self.conversions = MemoryConversions(self._state)
        self.stats = MemoryStats(self._state)
        self.sales = MemorySales(self._state)
        self.clicks = MemoryClicks(self._state)
        self.sale_aliases = MemorySaleAliases(self._state)
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
        self.state = State()
        # Failed authentications by subject: (window end, count). Apart from `state`,
        # which each unit of work copies whole.
        self.failures: dict[str, tuple[datetime, int]] = {}
        self.replay = MemoryReplay(self)

    def unit_of_work(self) -> MemoryUnitOfWork:
        return MemoryUnitOfWork(self)

    def read(self) -> MemoryUnitOfWork:
        return MemoryUnitOfWork(self)

    def check(self) -> None:
        return None

    def check_write(self) -> None:
        with self.unit_of_work():
            pass

    def count_failure(self, subject: str, now: datetime, window: timedelta) -> tuple[int, datetime]:
        with self.lock:
            for ended in [s for s, (ends, _) in self.failures.items() if ends <= now]:
                del self.failures[ended]
            ends, count = self.failures.get(subject, (now + window, 0))
            self.failures[subject] = (ends, count + 1)
            return count + 1, ends

    @property
    def concurrency_limit(self) -> int | None:
        return None  # one lock serializes units of work; threads wait on it, not a pool

    def dispose(self) -> None:
        return None


__all__ = ["MemoryApiKeys", "MemoryStore", "MemoryUnitOfWork"]
