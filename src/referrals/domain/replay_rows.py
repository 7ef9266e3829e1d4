"""What a simulation's replay reads and keeps (domain.simulation): a referral as a plain
tuple of what the replay needs (ports.replay), times as integers; what it reads from
a receipt, once per receipt; and a referrer, as its figures and cap counters.

A backtest reads a million rows: a `Referral` (14 fields, two `datetime`s) per row cost
more than pricing it again; a tuple costs nothing to unpack, and integer times
compare and subtract without building objects.
"""

from datetime import UTC, datetime, timedelta

from referrals.domain.model import Check, Receipt, Referral, counted, month_earned
from referrals.domain.program import RuleVersion

SIGNUP = "signup"  # what earned a reward recorded before receipts
DAY = 86_400_000_000  # microseconds
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)

ReplayRow = tuple[str, str, int, int, str, int, int, Receipt | None]
"""A referral as the replay reads it: id, referrer id, ordinal, reward cents, status,
created_at and payable_at (integer microseconds since the epoch, UTC, as the stores
keep them), receipt. A plain tuple: a backtest reads a million of them."""


def micros(at: datetime) -> int:
    """An aware time as integer microseconds since the epoch: exact."""
    return (at - _EPOCH) // _MICROSECOND


def from_micros(value: int) -> datetime:
    return _EPOCH + timedelta(microseconds=value)


def replay_row(referral: Referral) -> ReplayRow:
    """`referral` as the replay reads it (for stores that hold domain objects)."""
    return (
        referral.id,
        referral.referrer_id,
        referral.ordinal,
        referral.reward_cents,
        referral.status.value,
        micros(referral.created_at),
        micros(referral.payable_at),
        referral.receipt,
    )


class ReceiptRead:
    """What the replay reads from one receipt (None: recorded before receipts), once
    however many rows share it."""

    __slots__ = ("checks", "held", "hold", "receipt", "referee", "rule", "tier", "version")

    def __init__(self, receipt: Receipt | None, version: RuleVersion | None) -> None:
        self.receipt = receipt  # kept: the memo is keyed by its id
        self.version = version  # the version it names, which priced it, if known
        self.referee = version.referee_reward_cents if version else 0
        self.rule = receipt.rule if receipt is not None else SIGNUP
        self.hold = receipt.hold_days * DAY if receipt is not None else 0
        self.checks: tuple[Check, ...] = receipt.checks if receipt is not None else ()
        self.held = receipt is not None and bool(receipt.failed)
        self.tier = (receipt.tier_threshold, receipt.tier_cents) if receipt else None


class ReplayMember:
    """A referrer as the replay keeps it: their window's figures both ways (count, cents,
    held cents) and the cap counters, priced against with the code that prices a signup
    (`CapCounted`)."""

    __slots__ = (
        "actual_cents",
        "actual_count",
        "actual_held",
        "cap_lifetime_cents",
        "cap_month",
        "cap_month_cents",
        "simulated_cents",
        "simulated_count",
        "simulated_held",
    )

    def __init__(self) -> None:
        self.actual_count = self.actual_cents = self.actual_held = 0
        self.simulated_count = self.simulated_cents = self.simulated_held = 0
        self.cap_lifetime_cents = self.cap_month_cents = 0
        self.cap_month: str | None = None

    def earned_in(self, month: str) -> int | None:
        return month_earned(self.cap_month, self.cap_month_cents, month)

    def count(self, month: str, cents: int) -> None:
        counters = (self.cap_lifetime_cents, self.cap_month, self.cap_month_cents)
        self.cap_lifetime_cents, self.cap_month, self.cap_month_cents = counted(
            counters, month, cents
        )

    def actual(self) -> tuple[int, int, int]:
        return self.actual_count, self.actual_cents, self.actual_held

    def simulated(self) -> tuple[int, int, int]:
        return self.simulated_count, self.simulated_cents, self.simulated_held
