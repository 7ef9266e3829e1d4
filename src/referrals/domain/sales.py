"""Sales, refunds, and the exact arithmetic of a revenue share.

A referred user's sale may earn their referrer a share of it: basis points of the
sale, by the referrer's referral count (`ShareTiers`), at most a per-sale ceiling.
A refund lowers what the sale keeps, and its share with it. Every amount is integer
minor units of the program's currency, and every share is rounded down, once, from
what the sale keeps: whatever the sequence of refunds, the share and its reversals
add up to exactly `share_of(kept)`, never a unit more (`reversal`).
"""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum

from referrals.domain.errors import InvalidInput
from referrals.domain.model import DEFAULT_PROGRAM, Receipt

MAX_BPS = 10_000  # basis points in a whole: 10 000 bps = 100 %
MAX_AMOUNT = 10**12  # minor units: far above any sale, far below a 64-bit column
MAX_SHARE_TIERS = 50
MAX_SHARE_MONTHS = 1200
SHARE_RULE = "share:"  # a share's receipt rule, followed by the sale's kind


class SaleKind(StrEnum):
    PURCHASE = "purchase"
    RENEWAL = "renewal"


@dataclass(frozen=True, slots=True)
class ShareTier:
    threshold: int  # referrers with at least this many referrals earn...
    bps: int  # ...this many basis points of each sale


@dataclass(frozen=True, slots=True)
class ShareTiers:
    """Basis points by the referrer's referral count, under the same rules as the
    cents tiers (from 1, thresholds strictly increasing). None: no revenue share."""

    tiers: tuple[ShareTier, ...] = ()

    def __post_init__(self) -> None:
        if not self.tiers:
            return
        thresholds = [t.threshold for t in self.tiers]
        if thresholds[0] != 1:
            raise InvalidInput("the first share tier must start at referral 1", field="share.tiers")
        if thresholds != sorted(set(thresholds)):
            raise InvalidInput(
                "share tier thresholds must be strictly increasing", field="share.tiers"
            )
        if len(self.tiers) > MAX_SHARE_TIERS:
            raise InvalidInput(f"at most {MAX_SHARE_TIERS} share tiers", field="share.tiers")
        if any(not 0 <= t.bps <= MAX_BPS for t in self.tiers):
            raise InvalidInput(f"share tiers' bps must be 0-{MAX_BPS}", field="share.tiers")

    def __bool__(self) -> bool:
        return any(t.bps for t in self.tiers)

    def tier_of(self, referral_count: int) -> ShareTier | None:
        """The tier of a referrer with `referral_count` referrals (None below the first)."""
        found = None
        for tier in self.tiers:
            if tier.threshold > referral_count:
                break
            found = tier
        return found


NO_SHARE = ShareTiers()  # the default rules pay no share


def share_of(net_minor: int, bps: int, ceiling_minor: int = 0) -> int:
    """`bps` basis points of `net_minor`, rounded down, at most `ceiling_minor` (0: none)."""
    share = net_minor * bps // MAX_BPS
    return min(share, ceiling_minor) if ceiling_minor else share


@dataclass(frozen=True, slots=True)
class Sale:
    """A sale to a user, once per external id (the billing system's), attributed to the
    user's referral in the program if they have one (else `referral_id` is None)."""

    external_id: str
    user_id: str
    amount_minor: int
    currency: str
    occurred_at: datetime
    kind: SaleKind
    created_at: datetime
    program_id: str = DEFAULT_PROGRAM
    referral_id: str | None = None
    referrer_id: str | None = None
    refunded_minor: int = 0  # the sum of its refunds, never above `amount_minor`
    # The revenue share it earned: the reward entry, the bps and ceiling that priced it,
    # what it was worth after the caps (`awarded_minor`), and how it was priced.
    reward_id: str | None = None
    share_bps: int = 0
    share_ceiling_minor: int = 0
    awarded_minor: int = 0
    receipt: Receipt | None = None

    @property
    def net_minor(self) -> int:
        return self.amount_minor - self.refunded_minor

    def share_kept(self, net_minor: int) -> int:
        """What the share is worth while the sale keeps `net_minor`: the share of it,
        never more than the caps let the sale earn when it was priced."""
        return min(
            self.awarded_minor, share_of(net_minor, self.share_bps, self.share_ceiling_minor)
        )

    def reversal(self, refund_minor: int) -> int:
        """What a refund of `refund_minor` more takes back from the share."""
        return reversal(self, self.net_minor, self.net_minor - refund_minor)

    def same_as(self, other: "Sale") -> bool:
        """The same sale as reported: a replay of its external id answers as the first."""
        return (
            self.user_id,
            self.amount_minor,
            self.currency,
            self.occurred_at,
            self.kind,
            self.program_id,
        ) == (
            other.user_id,
            other.amount_minor,
            other.currency,
            other.occurred_at,
            other.kind,
            other.program_id,
        )


def reversal(sale: Sale, net_before: int, net_after: int) -> int:
    """The share a refund takes back, from `net_before` to `net_after`: the difference
    of the shares kept, each rounded down from its net, so the reversals of any
    sequence of refunds add up to `awarded - share_kept(final net)` exactly."""
    return sale.share_kept(net_before) - sale.share_kept(net_after)


@dataclass(frozen=True, slots=True)
class Refund:
    """A refund of part or all of a sale; `reversed_minor` is the share it took back."""

    id: str
    sale_external_id: str
    amount_minor: int
    occurred_at: datetime
    created_at: datetime
    program_id: str = DEFAULT_PROGRAM  # its sale's
    referrer_id: str | None = None  # its sale's, for the funnel's tally
    external_id: str | None = None  # the billing system's id, which makes it idempotent
    reversed_minor: int = 0

    def same_as(
        self, sale_external_id: str, amount_minor: int, occurred_at: datetime | None
    ) -> bool:
        """The same refund as reported (a refund sent without a time takes the first's)."""
        return (self.sale_external_id, self.amount_minor) == (sale_external_id, amount_minor) and (
            occurred_at is None or occurred_at == self.occurred_at
        )


@dataclass(frozen=True, slots=True)
class SaleTally:
    """One UTC day's sales and refunds of one referrer (None: unattributed) in a program:
    sales by the day they occurred, refunds by the day they did."""

    day: date
    referrer_id: str | None
    sales: int = 0
    revenue_minor: int = 0
    refunds: int = 0
    refunded_minor: int = 0
    purchases: int = 0  # the sales of kind purchase (a renewal is not a new customer)
    # The shares the day's sales earned (after the caps), less what its refunds took
    # back (a share later rejected in review still counts).
    share_minor: int = 0


def tally(sales: Sequence[Sale], refunds: Sequence[Refund]) -> list[SaleTally]:
    """Sales and refunds summed per (UTC day, referrer), in day then referrer order (an
    unattributed one first): the one aggregation every store's `tally` returns."""
    # Per cell: sales, revenue, refunds, refunded, purchases, shares.
    sums: dict[tuple[date, str], list[int]] = {}

    def cell(moment: datetime, referrer_id: str | None) -> list[int]:
        return sums.setdefault((_day(moment), referrer_id or ""), [0] * 6)

    for sale in sales:
        row = cell(sale.occurred_at, sale.referrer_id)
        row[0] += 1
        row[1] += sale.amount_minor
        row[4] += sale.kind is SaleKind.PURCHASE
        row[5] += sale.awarded_minor
    for refund in refunds:
        row = cell(refund.occurred_at, refund.referrer_id)
        row[2] += 1
        row[3] += refund.amount_minor
        row[5] -= refund.reversed_minor
    ordered = sorted(sums.items(), key=lambda kv: (kv[0][0], kv[0][1].encode()))
    return [SaleTally(day, referrer or None, *counts) for (day, referrer), counts in ordered]


def _day(moment: datetime) -> date:
    return moment.astimezone(UTC).date()


def add_months(moment: datetime, months: int) -> datetime:
    """`moment` `months` calendar months later, on the same day or the month's last."""
    index = moment.month - 1 + months
    year, month = moment.year + index // 12, index % 12 + 1
    last = 31
    while True:
        try:
            return moment.replace(year=year, month=month, day=min(moment.day, last))
        except ValueError:
            last -= 1


# A sale may precede the signup it is credited to by this much: a user who pays at
# checkout is often signed up by the product's backend a moment after.
SIGNUP_GRACE = timedelta(days=1)


def within_share_months(signed_up_at: datetime, occurred_at: datetime, months: int) -> bool:
    """Whether a sale at `occurred_at` earns a share of a referral signed up at
    `signed_up_at`: not before the signup (but for SIGNUP_GRACE), and within `months`
    of it (0: for life)."""
    if occurred_at < signed_up_at - SIGNUP_GRACE:
        return False
    return not months or occurred_at < add_months(signed_up_at, months)
