"""Replaying a program's recorded referrals through rule versions: the simulator and the
backtest.

A simulation answers "what would the rewards earned in this window have been under
these rules?". It reads the program's referrals in id order, as a store pages them,
and prices each one earned in the window again with `pricing.price`, the code that
priced it, beside what it was actually given. With the versions that actually
priced the window (no proposal: a backtest) it reproduces what was earned.

Why the program's history up to the window's end is read, and not the window alone:
the caps price a reward against what its referrer earned before it, in its month and
in all, and a referrer's stored counters hold only their latest state. So the state
at the window's start is rebuilt by counting every reward earned before it, as it was
priced, and only the window's rewards are priced again and reported. Memory holds
one small record per referrer of the program, never the referrals.

What the records allow:
- Each referral keeps its ordinal, its times, the verdicts of the checks that ran and
  the conversion that earned it (event and time): tiers, caps, hold, check modes and
  trigger of a proposal are applied to those. The verdicts are judged by the modes of
  the rules in force at the signup, when the checks ran: a reward earned later by a
  conversion keeps them, as `record_conversion` does.
- A check that did not run when the reward was priced has no verdict: a proposal that
  runs it counts the reward as `unjudged` (and passed). So does a velocity limit
  other than the one that judged it.
- A conversion's value is not on its referral: a recorded qualifying conversion is
  taken to meet a proposal's minimum value. A conversion that earned nothing is on
  no referral: a proposal paying on conversions earns from the recorded ones only.
- Reviews: a rejected or reversed reward gave its amount back to the caps when it was
  reviewed, a moment the referral does not keep. The replay counts such a reward
  toward no cap at all (as if given back at once): exact for the counters the window
  starts from, while a reward priced before the review in the window met a cap that
  still counted it.
- The window holds the rewards earned in it (by their earned moment) and recorded
  by its end: an import recorded after the window, dated inside it, is not read.
"""

import heapq
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final

from referrals.domain.checks import DISPOSABLE_EMAIL, EMAIL_ALIAS, SAME_DEVICE, CheckMode
from referrals.domain.errors import InvalidInput
from referrals.domain.model import (
    Referral,
    ReferralStatus,
    counted,
    first_id_at,
    month_earned,
)
from referrals.domain.pricing import (
    AWAITING_RULE,
    CONVERSION_RULE,
    month_of,
    month_of_utc,
    price,
    rejudged,
)
from referrals.domain.program import RuleVersion, Trigger, in_force

MAX_WINDOW = timedelta(days=366)
# A reward cancelled by a review or a reversal counts toward no cap (see the docstring).
CANCELLED = frozenset(
    {ReferralStatus.REJECTED, ReferralStatus.REVERSED, ReferralStatus.CLAWED_BACK}
)
_SIGNUP: Final = "signup"
_TIME_CHARS = 10  # a ULID's first 10 characters are its millisecond


@dataclass(frozen=True, slots=True)
class Window:
    """[start, end): the rewards earned from `start` to before `end`."""

    start: datetime
    end: datetime

    @classmethod
    def of(cls, start: datetime, end: datetime) -> "Window":
        """A window as a client gives it: aware times, `start` first, at most MAX_WINDOW."""
        if start.tzinfo is None:
            raise InvalidInput("from: needs a time zone", field="from")
        if end.tzinfo is None:
            raise InvalidInput("to: needs a time zone", field="to")
        if end <= start:
            raise InvalidInput("to: must be after from", field="to")
        if end - start > MAX_WINDOW:
            raise InvalidInput(f"to: at most {MAX_WINDOW.days} days after from", field="to")
        return cls(start, end)

    def __contains__(self, at: datetime) -> bool:
        return self.start <= at < self.end


@dataclass(frozen=True, slots=True)
class TierCount:
    threshold: int  # referrals from this ordinal on...
    reward_cents: int  # ...earn this (before the caps)
    count: int
    cents: int  # what they earned, after the caps


@dataclass(frozen=True, slots=True)
class Totals:
    count: int  # rewards earned in the window
    earned_cents: int  # after the caps, held ones included
    held_count: int  # held for review by a check in hold mode
    held_cents: int
    capped_count: int  # cut by a cap
    capped_cents: int  # what the caps cut
    referee_cents: int  # the referees' own rewards (double-sided programs)
    tiers: tuple[TierCount, ...]  # by threshold, then amount


@dataclass(frozen=True, slots=True)
class ReferrerDiff:
    """One referrer's rewards in the window: as given, and as simulated."""

    referrer_id: str
    actual_count: int
    actual_cents: int
    actual_held_cents: int
    simulated_count: int
    simulated_cents: int
    simulated_held_cents: int

    @property
    def change_cents(self) -> int:
        return self.simulated_cents - self.actual_cents


@dataclass(frozen=True, slots=True)
class Simulation:
    window: Window
    scanned: int  # referrals read: the program's history up to the window's end
    actual: Totals
    simulated: Totals
    referrers: int  # referrers with a reward in the window, either way
    changed: int  # ...whose count, amount or held amount differs
    movers: tuple[ReferrerDiff, ...]  # the largest changes first (then by referrer id)
    unjudged: int  # rewards a check of the proposal had no recorded verdict for


class _Tally:
    __slots__ = (
        "capped",
        "capped_count",
        "count",
        "earned",
        "held",
        "held_count",
        "referee",
        "tiers",
    )

    def __init__(self) -> None:
        self.count = self.earned = self.held_count = self.held = 0
        self.capped_count = self.capped = self.referee = 0
        self.tiers: dict[tuple[int, int], list[int]] = {}

    def add(self, threshold: int, tier_cents: int, cents: int, held: bool, referee: int) -> None:
        self.count += 1
        self.earned += cents
        if held:
            self.held_count += 1
            self.held += cents
        if cents < tier_cents:
            self.capped_count += 1
            self.capped += tier_cents - cents
        self.referee += referee
        tier = self.tiers.get((threshold, tier_cents))
        if tier is None:
            self.tiers[threshold, tier_cents] = [1, cents]
        else:
            tier[0] += 1
            tier[1] += cents

    def totals(self) -> Totals:
        tiers = tuple(TierCount(t, c, n, s) for (t, c), (n, s) in sorted(self.tiers.items()))
        return Totals(
            self.count,
            self.earned,
            self.held_count,
            self.held,
            self.capped_count,
            self.capped,
            self.referee,
            tiers,
        )


class _Member:
    """A referrer as the replay keeps it: the cap counters (priced against with the
    code that prices a signup: `CapCounted`) and their window's figures, both ways."""

    __slots__ = (
        "actual",
        "cap_lifetime_cents",
        "cap_month",
        "cap_month_cents",
        "simulated",
    )

    def __init__(self) -> None:
        self.cap_lifetime_cents = 0
        self.cap_month: str | None = None
        self.cap_month_cents = 0
        self.actual: list[int] | None = None  # count, cents, held cents; None: nothing
        self.simulated: list[int] | None = None

    def earned_in(self, month: str) -> int | None:
        return month_earned(self.cap_month, self.cap_month_cents, month)

    def count(self, month: str, cents: int) -> None:
        counters = (self.cap_lifetime_cents, self.cap_month, self.cap_month_cents)
        self.cap_lifetime_cents, self.cap_month, self.cap_month_cents = counted(
            counters, month, cents
        )

    def diff(self, referrer_id: str) -> ReferrerDiff:
        actual, simulated = self.actual or [0, 0, 0], self.simulated or [0, 0, 0]
        return ReferrerDiff(referrer_id, *actual, *simulated)


def _add(figures: list[int] | None, cents: int, held: bool) -> list[int]:
    if figures is None:
        return [1, cents, cents if held else 0]
    figures[0] += 1
    figures[1] += cents
    figures[2] += cents if held else 0
    return figures


class _Counted:
    """A reward earned before the window, as given: it only moves its referrer's counters."""

    __slots__ = ("cents", "member", "month")

    def __init__(self, member: _Member, month: str, cents: int) -> None:
        self.member, self.month, self.cents = member, month, cents


# The rules that earn a reward, what earns it, when, and the rules judging its checks.
_Earning = tuple[RuleVersion, str, datetime, RuleVersion]


class _Priced:
    """A reward of the window, to price again once its referrer's earlier ones are counted."""

    __slots__ = ("at", "judge", "member", "referral", "rule", "rules")

    def __init__(self, member: _Member, referral: Referral, earning: "_Earning") -> None:
        self.member, self.referral = member, referral
        self.rules, self.rule, self.at, self.judge = earning


class Replay:
    """Feed it a program's referrals in id order, from its first to the window's end
    (`feed`, page by page), then ask for the `result`.

    A reward moves its referrer's counters when it was counted: when its record was
    written (a ULID's time) or, for one earned by a later conversion, then. Rewards
    wait in a heap until no referral still to come can have been counted before
    them: ids grow, so a page's last id bounds what follows. Each of a referrer's
    rewards is priced with the counters as they were then, ties going by ordinal
    (a referrer's signups are counted in ordinal order).
    """

    def __init__(
        self,
        window: Window,
        versions: Sequence[RuleVersion],
        proposal: RuleVersion | None = None,
    ) -> None:
        """`versions`: the program's, which priced what was recorded. `proposal`: the
        rules to price the window with (from its start on); None prices each reward
        by the version in force when it was earned, the backtest."""
        self.window = window
        self._versions = tuple(versions)
        self._by_number: Mapping[int, RuleVersion] = {v.version: v for v in versions}
        self._proposal = proposal
        self._members: dict[str, _Member] = {}
        self._waiting: list[tuple[str, int, int, _Counted | _Priced]] = []
        self._actual, self._simulated = _Tally(), _Tally()
        self._judged: dict[tuple[int, int], tuple[bool, bool]] = {}
        self._months: dict[tuple[int, int], str] = {}
        self._seq = 0
        self.scanned = 0
        self.unjudged = 0

    def rules_at(self, at: datetime) -> RuleVersion | None:
        """The rules a reward earned at `at` is priced by in this replay."""
        if self._proposal is not None and at >= self.window.start:
            return self._proposal
        return in_force(self._versions, at)

    def feed(self, referrals: Iterable[Referral]) -> None:
        last = None
        for referral in referrals:
            self._read(referral)
            last = referral.id
        if last is not None:
            self._release(last[:_TIME_CHARS])

    def result(self, limit: int) -> Simulation:
        self._release(None)
        referrers = changed = 0
        for member in self._members.values():
            if member.actual is None and member.simulated is None:
                continue
            referrers += 1
            changed += member.actual != member.simulated
        active = (
            (referrer_id, member)
            for referrer_id, member in self._members.items()
            if member.actual is not None or member.simulated is not None
        )
        top = heapq.nsmallest(
            limit,
            (m.diff(r) for r, m in active),
            key=lambda d: (-abs(d.change_cents), d.referrer_id),
        )
        return Simulation(
            self.window,
            self.scanned,
            self._actual.totals(),
            self._simulated.totals(),
            referrers,
            changed,
            tuple(top),
            self.unjudged,
        )

    def _read(self, referral: Referral) -> None:
        self.scanned += 1
        member = self._members.get(referral.referrer_id)
        if member is None:
            member = self._members[referral.referrer_id] = _Member()
        receipt = referral.receipt
        rule = receipt.rule if receipt is not None else _SIGNUP
        if rule != AWAITING_RULE:
            at = referral.created_at if rule == _SIGNUP else referral.earned_at
            if at < self.window.start:
                if referral.reward_cents and referral.status not in CANCELLED:
                    counted_at = self._counted_at(referral, at)
                    counts = _Counted(member, self._month(at), referral.reward_cents)
                    self._wait(counted_at, referral.ordinal, counts)
                return
            if at < self.window.end:
                self._add_actual(member, referral)
        earning = self._earning(referral, rule)
        if earning is not None and earning[2] in self.window:
            priced = _Priced(member, referral, earning)
            self._wait(self._counted_at(referral, earning[2]), referral.ordinal, priced)

    def _earning(self, referral: Referral, rule: str) -> "_Earning | None":
        """The rules that earn `referral` its reward in this replay, what earns it, when,
        and the rules in force at its signup, whose modes judge its checks' verdicts
        (the checks run at the signup); None if nothing recorded earns it (as
        signups.sign_up and conversions.record_conversion decide)."""
        created_at = referral.created_at
        at_signup = self.rules_at(created_at)
        if at_signup is None:
            return None
        if at_signup.trigger is Trigger.SIGNUP:
            return at_signup, _SIGNUP, created_at, at_signup
        if not rule.startswith(CONVERSION_RULE):
            return None  # no conversion of the referee earned anything
        at = referral.earned_at
        rules = at_signup if at <= created_at else self.rules_at(at)
        event = rule[len(CONVERSION_RULE) :]
        # The value is not on the referral: a recorded conversion meets the minimum.
        if rules is None or not rules.qualifies(event, rules.conversion_min_cents, created_at, at):
            return None
        return rules, rule, at, at_signup

    def _add_actual(self, member: _Member, referral: Referral) -> None:
        receipt = referral.receipt
        version = self._by_number.get(receipt.rule_version if receipt else 1)
        referee = version.referee_reward_cents if version else 0
        if receipt is None:  # recorded before receipts: priced by the first version
            threshold, tier_cents, held = referral.ordinal, referral.reward_cents, False
            if version is not None:
                tier = version.tiers.tier_of(referral.ordinal)
                threshold, tier_cents = tier.threshold, tier.reward_cents
        else:
            threshold, tier_cents = receipt.tier_threshold, receipt.tier_cents
            held = bool(receipt.failed)
        cents = referral.reward_cents
        self._actual.add(threshold, tier_cents, cents, held, referee)
        member.actual = _add(member.actual, cents, held)

    def _price(self, item: _Priced) -> None:
        referral, rules, member = item.referral, item.rules, item.member
        receipt = referral.receipt
        recorded = receipt.checks if receipt is not None else ()
        unjudged, same_modes = self._judging(self._judged_by(referral, item.at), item.judge)
        if unjudged:
            self.unjudged += 1
        month = self._month(item.at)
        # Verdicts given in the modes that judge them stand as they are (every backtest).
        checks = recorded if same_modes else rejudged(recorded, item.judge.checks)
        priced = price(rules, referral.ordinal, member, item.rule, checks, month)
        held = priced.status is ReferralStatus.HELD
        new = priced.receipt
        self._simulated.add(
            new.tier_threshold, new.tier_cents, priced.cents, held, rules.referee_reward_cents
        )
        member.simulated = _add(member.simulated, priced.cents, held)
        if priced.cents and referral.status not in CANCELLED:
            member.count(month, priced.cents)

    def _judged_by(self, referral: Referral, earned_at: datetime) -> int:
        """The number of the version whose checks gave the recorded verdicts: the one in
        force at the signup, which names itself on the receipt unless a later
        conversion's version priced the reward."""
        receipt = referral.receipt
        if receipt is not None and earned_at <= referral.created_at:
            return receipt.rule_version
        at_signup = in_force(self._versions, referral.created_at)
        return at_signup.version if at_signup is not None else 1

    def _judging(self, priced_by: int, rules: RuleVersion) -> tuple[bool, bool]:
        """Whether `rules` run a check the version numbered `priced_by` did not run (or
        the velocity check under another limit), whose verdict was never recorded; and
        whether they run every check in the mode that version did."""
        key = (priced_by, id(rules))
        known = self._judged.get(key)
        if known is None:
            was = self._by_number.get(priced_by)
            now = rules.checks
            names = (EMAIL_ALIAS, DISPOSABLE_EMAIL, SAME_DEVICE)
            if was is None:
                unjudged = any(now.mode_of(n) is not CheckMode.OFF for n in names)
            else:
                off_before = any(
                    now.mode_of(n) is not CheckMode.OFF and was.checks.mode_of(n) is CheckMode.OFF
                    for n in names
                )
                velocity = now.velocity_runs and (
                    not was.checks.velocity_runs
                    or was.checks.velocity_per_hour != now.velocity_per_hour
                )
                unjudged = off_before or velocity
            known = self._judged[key] = (unjudged, was is not None and was.checks == now)
        return known

    def _counted_at(self, referral: Referral, at: datetime) -> str:
        """When a reward moved its referrer's counters, as a ULID's time: its record's
        writing, or its later conversion's."""
        written = referral.id[:_TIME_CHARS]
        if at <= referral.created_at:
            return written
        return max(written, first_id_at(at)[:_TIME_CHARS])

    def _month(self, at: datetime) -> str:
        if at.tzinfo is not UTC:
            return month_of(at)
        key = (at.year, at.month)
        month = self._months.get(key)
        if month is None:
            month = self._months[key] = month_of_utc(at)
        return month

    def _wait(self, counted_at: str, ordinal: int, item: _Counted | _Priced) -> None:
        self._seq += 1
        heapq.heappush(self._waiting, (counted_at, ordinal, self._seq, item))

    def _release(self, before: str | None) -> None:
        """Count and price the waiting rewards counted before `before` (all: None)."""
        waiting = self._waiting
        while waiting and (before is None or waiting[0][0] < before):
            item = heapq.heappop(waiting)[3]
            if isinstance(item, _Counted):
                item.member.count(item.month, item.cents)
            else:
                self._price(item)
