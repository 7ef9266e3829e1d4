"""The records of the referral program, as plain immutable values."""

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum
from typing import Any, Protocol

from referrals.domain.codes import crockford

# The program that routes and records without one act on: an instance from before
# programs existed keeps all its referrers and rewards in it.
DEFAULT_PROGRAM = "default"


class Role(StrEnum):
    ADMIN = "admin"
    INGEST = "ingest"


class ReferralStatus(StrEnum):
    """The state of a referral's reward."""

    AWAITING = "awaiting"  # the program pays on a conversion: nothing is earned before it
    PENDING = "pending"  # paid by the first run whose cutoff is after its payable_at
    HELD = "held"  # a fraud check flagged it: never paid unless approved in review
    PROCESSING = "processing"  # assigned to a payout run that has not completed yet
    PAID = "paid"
    REJECTED = "rejected"  # refused in review: never paid
    REVERSED = "reversed"  # cancelled before it was paid
    CLAWED_BACK = "clawed_back"  # paid, then reversed: a clawback entry takes it back


@dataclass(frozen=True, slots=True)
class Check:
    """One fraud check's verdict on a signup. A failed check holds the reward for
    review, unless it ran in shadow mode: then its verdict is only kept."""

    name: str
    passed: bool
    detail: str = ""
    shadow: bool = False


@dataclass(frozen=True, slots=True)
class Receipt:
    """How a reward was priced and checked, kept with it for support and audits."""

    rule: str  # what earned it: "signup", "conversion:<event>", or "awaiting conversion"
    tier_threshold: int  # the tier that priced it: referrals from this count on earn...
    tier_cents: int  # ...this much
    hold_days: int = 0
    checks: tuple[Check, ...] = ()
    cap: str | None = None  # the cap ("monthly" or "lifetime") that cut the tier's amount
    # The rule version that priced it. Receipts from before programs existed were
    # priced by what became the default program's first version.
    program: str = "default"
    rule_version: int = 1

    @property
    def capped(self) -> bool:
        return self.cap is not None

    @property
    def failed(self) -> tuple[Check, ...]:
        """The failed checks that hold the reward (not those in shadow mode)."""
        return tuple(check for check in self.checks if not check.passed and not check.shadow)

    @property
    def flagged(self) -> tuple[Check, ...]:
        """Every failed check, shadow ones included."""
        return tuple(check for check in self.checks if not check.passed)

    def to_dict(self) -> dict[str, object]:
        return {
            "rule": self.rule,
            "tier_threshold": self.tier_threshold,
            "tier_cents": self.tier_cents,
            "hold_days": self.hold_days,
            "checks": [_check_dict(c) for c in self.checks],
            "cap": self.cap,
            "program": self.program,
            "rule_version": self.rule_version,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "Receipt":
        return cls(
            rule=data["rule"],
            tier_threshold=data["tier_threshold"],
            tier_cents=data["tier_cents"],
            hold_days=data.get("hold_days", 0),
            checks=tuple(
                Check(c["name"], c["passed"], c.get("detail", ""), c.get("shadow", False))
                for c in data["checks"]
            ),
            cap=data.get("cap"),
            program=data.get("program", "default"),
            rule_version=data.get("rule_version", 1),
        )


def _check_dict(check: Check) -> dict[str, object]:
    # "shadow" only where it is true: receipts written before shadow mode read alike.
    shadow = {"shadow": True} if check.shadow else {}
    return {"name": check.name, "passed": check.passed, "detail": check.detail, **shadow}


class CapCounted(Protocol):
    """What the caps price against: a referrer's profile, or the replay's copy of its
    counters (domain.simulation), so both are priced by the same code."""

    @property
    def cap_lifetime_cents(self) -> int: ...

    def earned_in(self, month: str) -> int | None: ...


def month_earned(cap_month: str | None, cap_month_cents: int, month: str) -> int | None:
    """What a month counter (`cap_month`, `cap_month_cents`) says was earned in `month`:
    0 for a later month, None for an earlier one (the counter keeps one month)."""
    if cap_month is None or month > cap_month:
        return 0
    return cap_month_cents if month == cap_month else None


def counted(
    counters: tuple[int, str | None, int], month: str, cents: int
) -> tuple[int, str | None, int]:
    """Cap counters (lifetime, month, month's cents) with `cents` earned in `month` counted.

    Negative cents give back a cancelled reward; counters never go below zero
    (a reward earned before the counters existed is given back from nothing).
    """
    lifetime_was, cap_month, month_cents = counters
    lifetime = max(0, lifetime_was + cents)
    if cents > 0 and (cap_month is None or month > cap_month):
        return lifetime, month, cents
    if month == cap_month:
        return lifetime, cap_month, max(0, month_cents + cents)
    return lifetime, cap_month, month_cents


@dataclass(frozen=True, slots=True)
class Referrer:
    user_id: str
    code: str
    email: str | None
    referral_count: int
    created_at: datetime
    # Hashes of the IP address and device the referrer signed up from, if known:
    # a referee from the same one is flagged.
    ip_hash: str | None = None
    device_hash: str | None = None
    # What the caps count: the referrer's rewards earned and not cancelled (rejected or
    # reversed ones are given back), in all and in the month `cap_month` (YYYY-MM).
    cap_lifetime_cents: int = 0
    cap_month: str | None = None
    cap_month_cents: int = 0
    # A user is a referrer once per program, with a code of their own in each; the
    # counters and caps above are the program's.
    program_id: str = DEFAULT_PROGRAM

    def earned_in(self, month: str) -> int | None:
        """What the monthly cap has counted in `month`; None for a month before the
        counter's (it keeps the latest month only)."""
        return month_earned(self.cap_month, self.cap_month_cents, month)

    def counting(self, month: str, cents: int) -> "Referrer":
        """The profile with `cents` earned in `month` counted toward the caps (see
        `counted`)."""
        lifetime, cap_month, month_cents = counted(self.cap_counters, month, cents)
        return replace(
            self, cap_lifetime_cents=lifetime, cap_month=cap_month, cap_month_cents=month_cents
        )

    @property
    def cap_counters(self) -> tuple[int, str | None, int]:
        return self.cap_lifetime_cents, self.cap_month, self.cap_month_cents


@dataclass(frozen=True, slots=True)
class Referral:
    id: str
    referee_id: str
    referrer_id: str
    code: str
    email: str | None
    ordinal: int
    reward_cents: int
    status: ReferralStatus
    created_at: datetime
    payout_period: str | None = None
    hold: timedelta = timedelta(0)  # the program's hold period when it was earned
    receipt: Receipt | None = None
    note: str | None = None  # the reason given by the last review or reversal
    program_id: str = DEFAULT_PROGRAM  # the referrer's (and the code's) program
    click_id: str | None = None  # the tracked link's click it came from, if one

    @property
    def payable_at(self) -> datetime:
        """Paid by the first run whose cutoff is after this (stores index it)."""
        return self.created_at + self.hold

    @property
    def earned_at(self) -> datetime:
        """When the reward was earned: the signup, or the conversion that qualified it
        (its hold, in the receipt, counts from then)."""
        days = self.receipt.hold_days if self.receipt else 0
        return self.payable_at - timedelta(days=days)


@dataclass(frozen=True, slots=True)
class Conversion:
    """A qualifying event reported for a user (a purchase, a subscription), once per id."""

    external_id: str
    user_id: str
    event: str
    value_cents: int | None
    created_at: datetime
    referral_id: str | None = None  # the referral it qualified, if it qualified one
    # A qualifying conversion of a user not referred yet (webhooks arrive out of
    # order): the user's signup, if one comes, is earned by it.
    awaits_signup: bool = False
    program_id: str = DEFAULT_PROGRAM  # the program whose referral it may qualify


@dataclass(frozen=True, slots=True)
class SignupSlot:
    """Taken once per user in a conversion program, by whichever comes first: a
    qualifying conversion of the user before their signup (`external_id`), or their
    signup (None). Both take it, so the two can never miss each other."""

    user_id: str
    external_id: str | None
    program_id: str = DEFAULT_PROGRAM


class RewardKind(StrEnum):
    REFEREE = "referee"  # the referred user's own reward, in a double-sided program
    CLAWBACK = "clawback"  # takes back a paid reward that was reversed: negative cents
    SHARE = "share"  # a share of a referee's sale (domain.sales), paid to the referrer


@dataclass(frozen=True, slots=True)
class Reward:
    """A payout entry besides a referral's own reward (which lives on the referral).

    Paid to `user_id` by the same runs, in the same states: a referee's reward
    follows its referral through review; a clawback is payable at once.
    """

    id: str
    referral_id: str
    user_id: str
    kind: RewardKind
    cents: int
    status: ReferralStatus
    created_at: datetime
    hold: timedelta = timedelta(0)
    payout_period: str | None = None
    note: str | None = None
    program_id: str = DEFAULT_PROGRAM  # its referral's
    # The sale (its external id) a revenue share, or a clawback of one, came from.
    sale_id: str | None = None

    @property
    def payable_at(self) -> datetime:
        return self.created_at + self.hold


@dataclass(frozen=True, slots=True)
class SignupParties:
    """What a signup reads first, fetched together, as its referrer's count is taken
    (ReferralRepository.parties_counted): one round trip on PostgreSQL."""

    referrer: Referrer | None  # holds the code signed up with
    earlier: Referral | None  # the referee's referral, if they were referred before
    referee: Referrer | None  # the referee's own profile, if they are a referrer


@dataclass(frozen=True, slots=True)
class Earnings:
    """What a user is owed and was paid, in cents, from every entry paid to them.

    Rejected and reversed rewards count nowhere: they were never earned. A
    reward clawed back after payment stays in `paid_cents`, and its clawback
    is counted in `clawed_back_cents`, whether or not a run has settled it yet.
    """

    pending_cents: int = 0  # earned, still in its hold period
    payable_cents: int = 0  # hold over: the next run pays it (or is paying it)
    held_cents: int = 0  # waiting for review
    paid_cents: int = 0
    clawed_back_cents: int = 0

    @classmethod
    def tally(cls, entries: Iterable[tuple[bool, str, bool, int]]) -> "Earnings":
        """Sum a user's entries, each as (is a clawback, status, still on hold, cents)."""
        split = dict.fromkeys(("pending", "payable", "held", "paid", "clawed_back"), 0)
        for clawback, status, on_hold, cents in entries:
            # Awaiting, rejected and reversed rewards were never earned: they count
            # nowhere. A clawback counts whatever its state, as soon as it exists.
            if clawback:
                split["clawed_back"] -= cents
            elif status == ReferralStatus.PENDING and on_hold:
                split["pending"] += cents
            elif status in (ReferralStatus.PENDING, ReferralStatus.PROCESSING):
                split["payable"] += cents
            elif status in (ReferralStatus.PAID, ReferralStatus.CLAWED_BACK):
                split["paid"] += cents
            elif status == ReferralStatus.HELD:
                split["held"] += cents
        return cls(**{f"{state}_cents": cents for state, cents in split.items()})

    @property
    def earned_cents(self) -> int:
        return (
            self.pending_cents
            + self.payable_cents
            + self.held_cents
            + self.paid_cents
            - self.clawed_back_cents
        )


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """An admin action: who (the key's id), did what, to which record, and why."""

    id: str
    at: datetime
    actor: str
    action: str
    target: str
    reason: str | None = None


class KeyState(StrEnum):
    ACTIVE = "active"
    EXPIRED = "expired"  # past its expiry, or the grace period of a rotation
    REVOKED = "revoked"


@dataclass(frozen=True, slots=True)
class ApiKey:
    """An API key as stored: its hash, never the key. A key is never deleted: a revoked
    or expired one stays listed, and the audit log keeps naming it."""

    id: str
    role: Role
    key_hash: str
    created_at: datetime
    name: str | None = None
    expires_at: datetime | None = None  # set at creation, or by a rotation's grace period
    revoked_at: datetime | None = None
    last_used_at: datetime | None = None  # kept to the minute (see services.keys)

    def state(self, now: datetime) -> KeyState:
        if self.revoked_at is not None:
            return KeyState.REVOKED
        if self.expires_at is not None and self.expires_at <= now:
            return KeyState.EXPIRED
        return KeyState.ACTIVE

    def active(self, now: datetime) -> bool:
        return self.state(now) is KeyState.ACTIVE


@dataclass(frozen=True, slots=True)
class DashboardSession:
    """A dashboard sign-in, kept on the server so that signing out, or the key's
    revocation or expiry, ends it everywhere, whatever copies of its cookie exist."""

    id: str  # random; the signed cookie names it with the key's id
    key_id: str
    created_at: datetime
    expires_at: datetime
    ended_at: datetime | None = None  # signed out

    def live(self, now: datetime) -> bool:
        return self.ended_at is None and now < self.expires_at


class RunStatus(StrEnum):
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"  # may be claimed again: its assigned rewards are paid by the re-run


@dataclass(frozen=True, slots=True)
class CurrencyTotal:
    """What a payout run settled in one currency: the lines of its programs in that
    currency. Amounts are integer minor units of the currency (cents for USD)."""

    currency: str
    referrer_count: int = 0  # users paid in this currency
    referral_count: int = 0  # entries settled: rewards and clawbacks
    total_cents: int = 0  # paid out: rewards less clawbacks
    clawback_cents: int = 0  # taken back by the clawback lines, as a positive sum
    carried_forward_cents: int = 0  # deferred: users below the minimum payout


@dataclass(frozen=True, slots=True)
class PayoutRun:
    period: str
    status: RunStatus
    cutoff: datetime
    started_at: datetime
    lease_owner: str | None = None
    lease_expires_at: datetime | None = None
    referrer_count: int = 0  # users paid, whatever the currency
    referral_count: int = 0  # entries settled, whatever the currency
    # The figures of the run's one currency (`totals`); None when it holds several: a
    # run never sums different currencies.
    total_cents: int | None = 0
    report_key: str | None = None
    report_sha256: str | None = None
    # The report hash chain, both ways (see `domain.reports.render_manifest`): the
    # latest period before this one, in month order, that was completed when this one
    # completed, and the run completed just before this one, whatever its month.
    previous_month_period: str | None = None
    previous_month_sha256: str | None = None
    previous_period: str | None = None
    previous_sha256: str | None = None
    completed_at: datetime | None = None
    error: str | None = None
    clawback_cents: int | None = 0  # taken back in this run: the clawback lines, as a positive sum
    # Deferred to a later run: the totals of users below the minimum payout (debts aside).
    carried_forward_cents: int | None = 0
    # What the run settled per currency, sorted by currency: authoritative (see
    # `domain.run_totals`); empty while it runs, or when it paid nothing.
    totals: tuple[CurrencyTotal, ...] = ()

    @property
    def report_published(self) -> bool:
        """Completed, and its report and manifest are in the report store. Until they
        are, a completed run's `error` says why not (REPORT_UNPUBLISHED at first)."""
        return self.status is RunStatus.COMPLETED and self.error is None


# A completed run's `error` from its completion until its report is published: a crash
# in between leaves it, so the run still says its report is not out.
REPORT_UNPUBLISHED = "the report is not published yet"


def payout_floor(minimum_cents: int) -> int:
    """The least total a user is paid in a run; below it, their entries carry forward.

    The minimum payout, and never a debt: a user whose clawbacks exceed their new
    rewards is carried forward, not charged, while a total of zero settles.
    """
    return max(minimum_cents, 0)


@dataclass(frozen=True, slots=True)
class Minimums:
    """Each program's minimum payout (its rules' `minimum_payout_cents`): a user's total
    in a program below it carries forward. A program not named has `otherwise`."""

    by_program: Mapping[str, int] = field(default_factory=dict)
    otherwise: int = 0

    def floor(self, program_id: str) -> int:
        return payout_floor(self.by_program.get(program_id, self.otherwise))


class LineKind(StrEnum):
    REWARD = "reward"
    CLAWBACK = "clawback"


@dataclass(frozen=True, slots=True)
class PayoutLine:
    """What one user is paid in one program in one run (a clawback line: what is taken
    back, negative).

    Lines sort by user id (bytes), then program id (bytes), a user's reward line in a
    program before their clawback line there.
    """

    referrer_id: str  # the user paid: a referrer, or a referee in a double-sided program
    referral_count: int  # entries in the line
    amount_cents: int
    kind: LineKind = LineKind.REWARD
    program_id: str = DEFAULT_PROGRAM


def line_order(key: tuple[str, str, LineKind]) -> tuple[bytes, bytes, int]:
    """The order of PayoutLine's (user, program, kind): user and program by bytes (as the
    stores sort them), a reward line before a clawback line."""
    user, program, kind = key
    return user.encode(), program.encode(), list(LineKind).index(kind)


class EventStatus(StrEnum):
    PENDING = "pending"
    DELIVERED = "delivered"
    DEAD = "dead"  # gave up after the retry limit; an admin can send it again


@dataclass(frozen=True, slots=True)
class Event:
    """A notification, written in the same transaction as the change it describes."""

    id: str
    type: str
    payload: Mapping[str, object]
    created_at: datetime
    status: EventStatus = EventStatus.PENDING
    attempts: int = 0
    next_attempt_at: datetime | None = None
    last_error: str | None = None


def new_id(at: datetime) -> str:
    """A ULID minted at `at` (the clock's now, when the record is written): 48 bits of
    milliseconds then 80 random bits, 26 Crockford characters.

    Ids sort by creation time, which makes them usable as pagination cursors.
    """
    millis = int(at.timestamp() * 1000)
    return ulid(millis << 80 | int.from_bytes(os.urandom(10), "big"))


def ulid(value: int) -> str:
    """The 128-bit `value` as a ULID's 26 Crockford characters, most significant first."""
    # 20 bytes are 32 characters; the first 6 are the 30 high bits, zero below 2**128.
    return crockford(value.to_bytes(20, "big"))[6:]


# The dashboard's aggregates (StatsRepository): small tallies, never rows.

# A reward in one of these states is not money the referral program owes: it awaits a
# conversion, was refused or cancelled, or was paid and taken back.
UNEARNED = frozenset(
    {
        ReferralStatus.AWAITING,
        ReferralStatus.REJECTED,
        ReferralStatus.REVERSED,
        ReferralStatus.CLAWED_BACK,
    }
)
# Rewards not settled yet, listed by the dashboard state by state; its unpaid total
# leaves out the awaiting ones (not owed until a conversion).
UNSETTLED = (
    ReferralStatus.AWAITING,
    ReferralStatus.PENDING,
    ReferralStatus.HELD,
    ReferralStatus.PROCESSING,
)
# How much earlier than its referral's `created_at` an id may have been minted: a signup
# mints the id a moment before it reads the clock. Stores that bound a time window by
# id (ULIDs sort by the time they were minted) widen it by this.
ID_SLACK = timedelta(hours=1)


@dataclass(frozen=True, slots=True)
class SignupTally:
    """How many referrals of one UTC day (of `created_at`) have one reward amount and state."""

    day: date
    reward_cents: int
    status: ReferralStatus
    count: int


@dataclass(frozen=True, slots=True)
class ReferrerTally:
    """One referrer's referrals in a window, and the cents they earned (UNEARNED aside)."""

    referrer_id: str
    referrals: int
    earned_cents: int


@dataclass(frozen=True, slots=True)
class StateTally:
    """The entries in one unsettled state and their cents (a clawback counts negative)."""

    status: ReferralStatus
    count: int
    cents: int


def first_id_at(moment: datetime) -> str:
    """The least ULID minted at `moment`'s millisecond: ids >= it were minted at or after it."""
    millis = max(0, (moment - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(milliseconds=1))
    return ulid(millis << 80)
