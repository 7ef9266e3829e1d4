"""The rules a product team configures for its referral program."""

from dataclasses import dataclass, field
from datetime import timedelta
from enum import StrEnum

from referrals.domain.checks import FraudChecks
from referrals.domain.model import Referrer
from referrals.domain.tiers import DEFAULT_TIERS, TierSchedule


class Trigger(StrEnum):
    SIGNUP = "signup"  # a referral earns its reward when the referee signs up
    CONVERSION = "conversion"  # ...when the referee does the qualifying event


@dataclass(frozen=True, slots=True)
class Program:
    tiers: TierSchedule = DEFAULT_TIERS
    # A referred user becomes a referrer at once, so the signup can hand them a code.
    auto_enroll_referees: bool = True
    # A reward becomes payable this long after it is earned (time for refunds and disputes).
    hold: timedelta = timedelta(0)
    checks: FraudChecks = field(default_factory=FraudChecks)
    referee_reward_cents: int = 0  # the referee's own reward (double-sided); 0: none
    # A user is paid once their total in a run reaches this; below it, it carries forward.
    minimum_payout_cents: int = 0
    trigger: Trigger = Trigger.SIGNUP
    conversion_event: str = "purchase"  # the event that qualifies a referral
    conversion_min_cents: int = 0  # ...with at least this value
    # The most a referrer earns from their referrals in a calendar month (UTC) and in
    # all; 0: no cap. A referral past a cap still counts toward the tiers.
    monthly_cap_cents: int = 0
    lifetime_cap_cents: int = 0

    def capped(self, cents: int, referrer: Referrer, month: str) -> tuple[int, str | None]:
        """What a reward of `cents` earned in `month` pays under the caps, given what
        `referrer` has earned, and the cap that cut it (None if none did).

        A month before the one the referrer's counter holds (an import of history)
        is checked against the lifetime cap only: the counter keeps one month.
        """
        allowed, cap = cents, None
        if self.monthly_cap_cents:
            earned = referrer.earned_in(month)
            if earned is not None and self.monthly_cap_cents - earned < allowed:
                allowed, cap = max(0, self.monthly_cap_cents - earned), "monthly"
        if self.lifetime_cap_cents:
            room = max(0, self.lifetime_cap_cents - referrer.cap_lifetime_cents)
            if room < allowed:
                allowed, cap = room, "lifetime"
        return allowed, cap

    def qualifies(self, event: str, value_cents: int | None) -> bool:
        return (
            self.trigger is Trigger.CONVERSION
            and event == self.conversion_event
            and (value_cents or 0) >= self.conversion_min_cents
        )
