"""The ports use cases depend on; adapters implement them. One module per concern;
import from here."""

from referrals.ports.access import (
    ApiKeyRepository,
    AuditRepository,
    SecretRepository,
    SessionRepository,
)
from referrals.ports.clicks import ClickRepository
from referrals.ports.ledger import (
    ConversionRepository,
    ReferralRepository,
    ReferrerRepository,
    RewardRepository,
)
from referrals.ports.outbox import Notifier, OutboxRepository
from referrals.ports.payouts import LeaseLost, PayoutRepository, PayoutStarter, ReportStore
from referrals.ports.programs import ProgramRepository
from referrals.ports.replay import ReplayReader
from referrals.ports.sales import SaleRepository
from referrals.ports.stats import StatsRepository
from referrals.ports.store import Clock, HealthProbe, Store, UnitOfWork

__all__ = [
    "ApiKeyRepository",
    "AuditRepository",
    "ClickRepository",
    "Clock",
    "ConversionRepository",
    "HealthProbe",
    "LeaseLost",
    "Notifier",
    "OutboxRepository",
    "PayoutRepository",
    "PayoutStarter",
    "ProgramRepository",
    "ReferralRepository",
    "ReferrerRepository",
    "ReplayReader",
    "ReportStore",
    "RewardRepository",
    "SaleRepository",
    "SecretRepository",
    "SessionRepository",
    "StatsRepository",
    "Store",
    "UnitOfWork",
]
