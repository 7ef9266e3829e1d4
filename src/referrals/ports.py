"""The ports use cases depend on; adapters implement them."""

from collections.abc import Sequence
from datetime import datetime
from types import TracebackType
from typing import Protocol, Self

from referrals.domain.model import ApiKey, Earnings, Referral, ReferralStatus, Referrer


class Clock(Protocol):
    def now(self) -> datetime:
        """The current time, timezone-aware UTC."""
        ...


class ReferrerRepository(Protocol):
    def get(self, user_id: str) -> Referrer | None: ...

    def by_code(self, code: str) -> Referrer | None:
        """Look a referrer up by code, case-insensitively."""
        ...

    def add(self, referrer: Referrer) -> None:
        """Insert; raises Conflict if the user id or the code is already taken."""
        ...

    def increment_referral_count(self, user_id: str) -> int:
        """Atomically add one referral and return the new count: the referral's ordinal.

        The increment must serialize concurrent signups for one referrer, so that
        ordinals are exactly 1..n with no gap and no duplicate.
        """
        ...

    def earnings(self, user_id: str) -> Earnings: ...


class ReferralRepository(Protocol):
    def get(self, referral_id: str) -> Referral | None: ...

    def by_referee(self, referee_id: str) -> Referral | None: ...

    def add(self, referral: Referral) -> None:
        """Insert; raises Conflict if the referee was already referred."""
        ...

    def for_referrer(
        self, referrer_id: str, after_ordinal: int | None, limit: int
    ) -> Sequence[Referral]:
        """A referrer's referrals by ordinal, those after `after_ordinal`."""
        ...

    def search(
        self,
        status: ReferralStatus | None,
        referrer_id: str | None,
        after_id: str | None,
        limit: int,
    ) -> Sequence[Referral]:
        """Referrals in id (creation) order, optionally filtered."""
        ...


class ApiKeyRepository(Protocol):
    def add(self, key: ApiKey) -> None: ...

    def by_hash(self, key_hash: str) -> ApiKey | None: ...

    def count(self) -> int: ...


class UnitOfWork(Protocol):
    """One transaction. Changes persist only if `commit()` is called inside the `with`."""

    @property
    def referrers(self) -> ReferrerRepository: ...

    @property
    def referrals(self) -> ReferralRepository: ...

    @property
    def api_keys(self) -> ApiKeyRepository: ...

    def __enter__(self) -> Self: ...

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...

    def commit(self) -> None: ...


class Store(Protocol):
    def unit_of_work(self) -> UnitOfWork:
        """A read-write transaction; writers are serialized where the engine needs it."""
        ...

    def read(self) -> UnitOfWork:
        """A read-only transaction: never blocks writers where the engine allows it."""
        ...

    def check(self) -> None:
        """Raise if the store cannot be reached."""
        ...
