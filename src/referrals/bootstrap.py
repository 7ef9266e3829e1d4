"""Builds the adapters from settings: the only place that chooses them."""

from dataclasses import dataclass

from referrals.adapters.clock import SystemClock
from referrals.config import Settings
from referrals.domain.program import Program
from referrals.domain.tiers import TierSchedule
from referrals.ports import Clock, Store


@dataclass(frozen=True)
class Services:
    settings: Settings
    store: Store
    clock: Clock
    program: Program


def build(settings: Settings | None = None, *, migrate: bool = False) -> Services:
    settings = settings or Settings()
    return Services(
        settings=settings,
        store=build_store(settings.database_url, settings.pool_size, migrate=migrate),
        clock=SystemClock(),
        program=Program(TierSchedule.parse(settings.tiers), settings.auto_enroll),
    )


def build_store(url: str, pool_size: int = 5, *, migrate: bool = False) -> Store:
    if url.startswith("memory://"):
        from referrals.adapters.memory import MemoryStore

        return MemoryStore()
    from referrals.adapters.sql.engine import create_engines
    from referrals.adapters.sql.store import SqlStore

    writer, reader = create_engines(url, pool_size)
    if migrate:
        from referrals.adapters.sql.migrate import upgrade

        upgrade(writer)
    return SqlStore(writer, reader)
