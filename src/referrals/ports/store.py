"""The store and its unit of work: one transaction over every repository; the clock."""

from datetime import datetime, timedelta
from types import TracebackType
from typing import Protocol, Self

from referrals.ports.access import (
    ApiKeyRepository,
    AuditRepository,
    SecretRepository,
    SessionRepository,
)
from referrals.ports.aliases import SaleAliasRepository
from referrals.ports.clicks import ClickRepository
from referrals.ports.ledger import (
    ConversionRepository,
    ReferralRepository,
    ReferrerRepository,
    RewardRepository,
)
from referrals.ports.outbox import OutboxRepository
from referrals.ports.payouts import PayoutRepository
from referrals.ports.programs import ProgramRepository
from referrals.ports.replay import ReplayReader
from referrals.ports.sales import SaleRepository
from referrals.ports.stats import StatsRepository


class Clock(Protocol):
    def now(self) -> datetime:
        """The current time, timezone-aware UTC."""
        ...


class UnitOfWork(Protocol):
    """One transaction. Changes persist only if `commit()` is called inside the `with`.

    A unit of work writes each record at most once (DynamoDB transactions allow
    one operation per item), and conflicts surface as Conflict at the latest on
    commit.
    """

    @property
    def referrers(self) -> ReferrerRepository: ...

    @property
    def referrals(self) -> ReferralRepository: ...

    @property
    def rewards(self) -> RewardRepository: ...

    @property
    def conversions(self) -> ConversionRepository: ...

    @property
    def api_keys(self) -> ApiKeyRepository: ...

    @property
    def sessions(self) -> SessionRepository: ...

    @property
    def secrets(self) -> SecretRepository: ...

    @property
    def payouts(self) -> PayoutRepository: ...

    @property
    def programs(self) -> ProgramRepository: ...

    @property
    def outbox(self) -> OutboxRepository: ...

    @property
    def audit(self) -> AuditRepository: ...

    @property
    def stats(self) -> StatsRepository: ...

    @property
    def sales(self) -> SaleRepository: ...

    @property
    def clicks(self) -> ClickRepository: ...

    @property
    def sale_aliases(self) -> SaleAliasRepository: ...

    def __enter__(self) -> Self: ...

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...

    def commit(self) -> None:
        """Make the work durable before returning; it ends the unit of work (a
        store may share one transaction among writers, so nothing may follow)."""
        ...


class Store(Protocol):
    @property
    def concurrency_limit(self) -> int | None:
        """How many units of work can be open at once, if the store bounds them (a
        PostgreSQL store's connection pool); None if not. The server runs no more
        request threads than this, so none waits in the pool."""
        ...

    def unit_of_work(self) -> UnitOfWork:
        """A read-write transaction; writers are serialized where the engine needs it."""
        ...

    def read(self) -> UnitOfWork:
        """A read-only transaction: never blocks writers where the engine allows it."""
        ...

    def check(self) -> None:
        """Raise if the store cannot be reached."""
        ...

    def check_write(self) -> None:
        """Raise unless a write transaction can begin and end now (readiness): where
        the engine has a write lock, take it and release it."""
        ...

    def count_failure(self, subject: str, now: datetime, window: timedelta) -> tuple[int, datetime]:
        """Count one failed authentication of `subject` (a client address) in its
        current window, atomically and durably, in a write of its own (not a unit of
        work's); return the count within the window and when the window ends. A subject
        with no window, or whose window ended by `now`, starts one of `window` at `now`
        with a count of 1. Every server of the store shares the count. Ended windows may
        be deleted meanwhile."""
        ...

    @property
    def replay(self) -> ReplayReader:
        """A program's referrals as a simulation replays them, read apart from any unit
        of work (a stream of a million rows, not a transaction's repository)."""
        ...

    def dispose(self) -> None:
        """Close every connection the store holds; it is not used afterwards."""
        ...


class HealthProbe(Protocol):
    """A check that the store answers, made on the event loop (no request thread)."""

    async def check(self) -> None:
        """Raise if the store cannot be reached."""
        ...

    async def close(self) -> None:
        """Let go of what the checks hold (a connection)."""
        ...
