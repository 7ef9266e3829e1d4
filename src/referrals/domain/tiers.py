"""Tiered rewards: the n-th referral earns the amount of the highest threshold <= n."""

from bisect import bisect_right
from dataclasses import dataclass

from referrals.domain.errors import InvalidInput


@dataclass(frozen=True, slots=True)
class Tier:
    threshold: int
    reward_cents: int


@dataclass(frozen=True, slots=True)
class TierSchedule:
    tiers: tuple[Tier, ...]

    def __post_init__(self) -> None:
        if not self.tiers:
            raise InvalidInput("a tier schedule needs at least one tier")
        thresholds = [t.threshold for t in self.tiers]
        if thresholds[0] != 1:
            raise InvalidInput("the first tier must start at referral 1")
        if thresholds != sorted(set(thresholds)):
            raise InvalidInput("tier thresholds must be strictly increasing")
        if any(t.reward_cents < 0 for t in self.tiers):
            raise InvalidInput("tier rewards cannot be negative")

    @classmethod
    def parse(cls, text: str) -> "TierSchedule":
        """Parse "1:1000,5:1500" (threshold:cents pairs)."""
        tiers = []
        for part in text.split(","):
            threshold, sep, cents = part.strip().partition(":")
            if not sep or not threshold.strip().isdigit() or not cents.strip().isdigit():
                raise InvalidInput(f"bad tier {part!r}: expected threshold:cents")
            tiers.append(Tier(int(threshold), int(cents)))
        return cls(tuple(tiers))

    def reward_for(self, ordinal: int) -> int:
        """Reward in cents of a referrer's `ordinal`-th referral (1-based)."""
        if ordinal < 1:
            raise ValueError("ordinals start at 1")
        index = bisect_right([t.threshold for t in self.tiers], ordinal) - 1
        return self.tiers[index].reward_cents

    def tier_of(self, ordinal: int) -> Tier:
        index = bisect_right([t.threshold for t in self.tiers], ordinal) - 1
        return self.tiers[index]

    def next_tier(self, referral_count: int) -> Tier | None:
        """The next tier a referrer with `referral_count` referrals has not reached yet."""
        for tier in self.tiers:
            if tier.threshold > referral_count:
                return tier
        return None

    def __str__(self) -> str:
        return ",".join(f"{t.threshold}:{t.reward_cents}" for t in self.tiers)


DEFAULT_TIERS = TierSchedule.parse("1:1000,5:1500,10:2000,25:2500")
