"""The rules a product team configures for its referral program."""

from dataclasses import dataclass, field
from datetime import timedelta

from referrals.domain.checks import FraudChecks
from referrals.domain.tiers import DEFAULT_TIERS, TierSchedule


@dataclass(frozen=True, slots=True)
class Program:
    tiers: TierSchedule = DEFAULT_TIERS
    # A referred user becomes a referrer at once, so the signup can hand them a code.
    auto_enroll_referees: bool = True
    # A reward becomes payable this long after it is earned (time for refunds and disputes).
    hold: timedelta = timedelta(0)
    checks: FraudChecks = field(default_factory=FraudChecks)
