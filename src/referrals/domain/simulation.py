"""Replaying a program's recorded referrals through rule versions: the simulator and the
backtest.

A simulation answers "what would the rewards earned in this window have been under
these rules?". It reads the program's referrals in id order (`ReplayRow`s, from the
store's `ports.replay`), and prices each one earned in the window again with
`pricing.price`, the code that priced it, beside what it was actually given. With the
versions that actually priced the window (no proposal: a backtest) it reproduces what
was earned.

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

A backtest replays a million referrals in a few seconds (docs/decisions/replay-read.md):
rows are plain tuples (domain.replay_rows), what a receipt says is read once per
receipt, `price` is asked once per distinct question for rules without caps, and
the caps' counters are kept only when some rules have caps.
"""

import heapq
from bisect import bisect_right
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import accumulate
from typing import Any

from referrals.domain.checks import DISPOSABLE_EMAIL, EMAIL_ALIAS, SAME_DEVICE, CheckMode
from referrals.domain.errors import InvalidInput
from referrals.domain.model import Check, Receipt, ReferralStatus, first_id_at
from referrals.domain.pricing import (
    AWAITING_RULE,
    CONVERSION_RULE,
    Priced,
    month_of_utc,
    price,
    rejudged,
)
from referrals.domain.program import RuleVersion, Trigger
from referrals.domain.replay_rows import (
    DAY,
    SIGNUP,
    ReceiptRead,
    ReplayMember,
    ReplayRow,
    from_micros,
    micros,
)

MAX_WINDOW = timedelta(days=366)
# A reward cancelled by a review or a reversal counts toward no cap (see the docstring).
CANCELLED = frozenset(
    {ReferralStatus.REJECTED, ReferralStatus.REVERSED, ReferralStatus.CLAWED_BACK}
)
_TIME_CHARS = 10  # a ULID's first 10 characters are its millisecond
# Entries a memo keeps before it starts again: a program has a few distinct receipts
# and prices, and the memos must stay small whatever the records hold.
_MEMO = 65_536


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


# A reward as the tallies count it: its tier's threshold and amount, what it earned
# after the caps, whether it is held, and the referee's own reward with it.
_Tallied = tuple[int, int, int, bool, int]


def _totals(counts: dict[_Tallied, int]) -> Totals:
    count = earned = held_count = held = capped_count = capped = referee = 0
    tiers: dict[tuple[int, int], list[int]] = {}
    for (threshold, tier_cents, cents, is_held, referee_cents), n in counts.items():
        count += n
        earned += n * cents
        if is_held:
            held_count += n
            held += n * cents
        if cents < tier_cents:
            capped_count += n
            capped += n * (tier_cents - cents)
        referee += n * referee_cents
        tier = tiers.setdefault((threshold, tier_cents), [0, 0])
        tier[0] += n
        tier[1] += n * cents
    by_tier = tuple(TierCount(t, c, n, s) for (t, c), (n, s) in sorted(tiers.items()))
    return Totals(count, earned, held_count, held, capped_count, capped, referee, by_tier)


class Replay:
    """Feed it a program's referrals in id order, from its first to the window's end
    (`feed`, in as many parts as wanted), then ask for the `result`.

    A reward moves its referrer's counters when it was counted: when its record was
    written (a ULID's time) or, for one earned by a later conversion, then. Where some
    rules have caps, rewards wait in a heap until no referral still to come can have
    been counted before them: ids grow, so a row's id bounds what follows. Each of a
    referrer's rewards is priced with the counters as they were then, ties going by
    ordinal (a referrer's signups are counted in ordinal order). Without caps nothing
    reads the counters, and each reward is priced as it is read.
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
        self._start, self._end = micros(window.start), micros(window.end)
        self._versions = tuple(versions)
        # `in_force` stops at the first version in force after the time: a bisection of
        # the running maximum of their starts finds the same one.
        self._starts = list(accumulate((micros(v.effective_from) for v in versions), max))
        self._by_number = {v.version: v for v in versions}
        self._proposal = proposal
        everyone = (*versions, proposal) if proposal else self._versions
        self._capped = any(v.monthly_cap_cents or v.lifetime_cap_cents for v in everyone)
        self._members: dict[str, ReplayMember] = {}
        self._waiting: list[tuple[Any, ...]] = []
        self._actual: dict[_Tallied, int] = {}
        self._simulated: dict[_Tallied, int] = {}
        self._reads: dict[int, ReceiptRead] = {}
        self._prices: dict[tuple[int, ...], tuple[ReceiptRead, bool, _Tallied]] = {}
        self._judged: dict[tuple[int, int], tuple[bool, bool]] = {}
        self._rejudged: dict[tuple[int, int], tuple[tuple[Check, ...], tuple[Check, ...]]] = {}
        self._months: dict[int, str] = {}
        self._seq = 0
        self.scanned = 0
        self.unjudged = 0

    def feed(self, rows: Iterable[ReplayRow]) -> None:
        # The work of every row is written out here, not in calls: a backtest reads a
        # million rows, and a call costs about what a row's tally does.
        start, end, capped, proposal = self._start, self._end, self._capped, self._proposal
        members, reads, waiting, starts = self._members, self._reads, self._waiting, self._starts
        actual, simulated, prices = self._actual, self._simulated, self._prices
        scanned = unjudged = 0
        for rid, referrer_id, ordinal, cents, status, created, payable, receipt in rows:
            scanned += 1
            if waiting and waiting[0][0] < rid[:_TIME_CHARS]:
                self._release(rid[:_TIME_CHARS])
            member = members.get(referrer_id)
            if member is None:
                member = members[referrer_id] = ReplayMember()
            read = reads.get(id(receipt)) or self._read(receipt)
            rule = read.rule
            if rule != AWAITING_RULE:
                at = created if rule == SIGNUP else payable - read.hold
                if at < start:
                    if capped and cents and status not in CANCELLED:
                        self._wait(rid, ordinal, created, at, (member, self._month(at), cents))
                    continue
                if at < end:
                    tier = read.tier or self._tier_of(read, ordinal, cents)
                    key = (*tier, cents, read.held, read.referee)
                    actual[key] = actual.get(key, 0) + 1
                    member.actual_count += 1
                    member.actual_cents += cents
                    if read.held:
                        member.actual_held += cents
            if proposal is not None and created >= start:
                at_signup = proposal
            else:  # in_force(versions, created)
                index = bisect_right(starts, created)
                if not index:
                    continue
                at_signup = self._versions[index - 1]
            if at_signup.trigger is Trigger.SIGNUP:
                rules, earned_by, at = at_signup, SIGNUP, created
            else:
                earning = self._converted(at_signup, rule, created, payable - read.hold)
                if earning is None:
                    continue
                rules, earned_by, at = earning
            if not start <= at < end:
                continue
            # The verdicts were given by the version in force at the signup, which names
            # itself on the receipt unless a later conversion's version priced the reward.
            if receipt is not None and at <= created:
                judged_by = receipt.rule_version
            else:
                judged_by = self._version_at(created)
            if capped:
                priced = (member, read, ordinal, status, rules, earned_by, at, at_signup, judged_by)
                self._wait(rid, ordinal, created, at, priced)
                continue
            memo = (id(rules), ordinal, id(read), judged_by, id(at_signup))
            known = prices.get(memo) or self._priced(memo, read, ordinal, rules, at, at_signup)
            unjudged += known[1]
            key = known[2]
            simulated[key] = simulated.get(key, 0) + 1
            member.simulated_count += 1
            member.simulated_cents += key[2]
            if key[3]:
                member.simulated_held += key[2]
        self.scanned += scanned
        self.unjudged += unjudged

    def result(self, limit: int) -> Simulation:
        self._release(None)
        active = [(r, m) for r, m in self._members.items() if m.actual_count or m.simulated_count]
        changed = sum(m.actual() != m.simulated() for _, m in active)
        top = heapq.nsmallest(
            limit,
            active,
            key=lambda a: (-abs(a[1].simulated_cents - a[1].actual_cents), a[0]),
        )
        return Simulation(
            self.window,
            self.scanned,
            _totals(self._actual),
            _totals(self._simulated),
            len(active),
            changed,
            tuple(ReferrerDiff(r, *m.actual(), *m.simulated()) for r, m in top),
            self.unjudged,
        )

    def _read(self, receipt: Receipt | None) -> ReceiptRead:
        if len(self._reads) >= _MEMO:
            self._reads.clear()
        version = self._by_number.get(receipt.rule_version if receipt is not None else 1)
        read = self._reads[id(receipt)] = ReceiptRead(receipt, version)
        return read

    def _tier_of(self, read: ReceiptRead, ordinal: int, cents: int) -> tuple[int, int]:
        """A reward recorded before receipts: priced by the first version."""
        if read.version is None:
            return ordinal, cents
        tier = read.version.tiers.tier_of(ordinal)
        return tier.threshold, tier.reward_cents

    def _rules_at(self, at: int) -> RuleVersion | None:
        """The rules a reward earned at `at` is priced by in this replay."""
        if self._proposal is not None and at >= self._start:
            return self._proposal
        index = bisect_right(self._starts, at)
        return self._versions[index - 1] if index else None

    def _version_at(self, at: int) -> int:
        index = bisect_right(self._starts, at)
        return self._versions[index - 1].version if index else 1

    def _converted(
        self, at_signup: RuleVersion, rule: str, created: int, at: int
    ) -> tuple[RuleVersion, str, int] | None:
        """The rules that earn a reward in a program paying on conversions, what earns
        it and when; None if no recorded conversion does (as conversions.record_conversion
        decides)."""
        if not rule.startswith(CONVERSION_RULE):
            return None  # no conversion of the referee earned anything
        rules = at_signup if at <= created else self._rules_at(at)
        event = rule[len(CONVERSION_RULE) :]
        # The value is not on the referral: a recorded conversion meets the minimum.
        if rules is None or not rules.qualifies(
            event, rules.conversion_min_cents, from_micros(created), from_micros(at)
        ):
            return None
        return rules, rule, at

    def _priced(
        self,
        memo: tuple[int, ...],
        read: ReceiptRead,
        ordinal: int,
        rules: RuleVersion,
        at: int,
        judge: RuleVersion,
    ) -> tuple[ReceiptRead, bool, _Tallied]:
        """A reward priced by rules without caps: `price` answers the same for the same
        rules, ordinal, trigger and verdicts, whatever the counters, so it is asked once
        for each (`memo`; the trigger follows from the rules and the receipt, the
        verdicts from the receipt and the versions that judge them)."""
        if len(self._prices) >= _MEMO:
            self._prices.clear()
        unjudged, checks = self._verdicts(read, judge, memo[3])
        earned_by = SIGNUP if rules.trigger is Trigger.SIGNUP else read.rule
        priced = price(rules, ordinal, ReplayMember(), earned_by, checks, self._month(at))
        known = self._prices[memo] = (read, unjudged, _tallied(rules, priced))
        return known

    def _price(
        self,
        member: ReplayMember,
        read: ReceiptRead,
        ordinal: int,
        status: str,
        rules: RuleVersion,
        earned_by: str,
        at: int,
        judge: RuleVersion,
        judged_by: int,
    ) -> None:
        """Price a reward of a replay with caps, its referrer's earlier ones counted."""
        if rules.monthly_cap_cents or rules.lifetime_cap_cents:
            unjudged, checks = self._verdicts(read, judge, judged_by)
            month = self._month(at)
            key = _tallied(rules, price(rules, ordinal, member, earned_by, checks, month))
        else:
            memo = (id(rules), ordinal, id(read), judged_by, id(judge))
            known = self._prices.get(memo) or self._priced(memo, read, ordinal, rules, at, judge)
            unjudged, key = known[1], known[2]
        self.unjudged += unjudged
        cents = key[2]
        if cents and status not in CANCELLED:
            member.count(self._month(at), cents)
        self._simulated[key] = self._simulated.get(key, 0) + 1
        member.simulated_count += 1
        member.simulated_cents += cents
        if key[3]:
            member.simulated_held += cents

    def _verdicts(
        self, read: ReceiptRead, judge: RuleVersion, judged_by: int
    ) -> tuple[bool, tuple[Check, ...]]:
        """Whether the reward is unjudged (see `_judging`), and its verdicts as `judge`'s
        modes leave them: as they were if given in the same modes (every backtest)."""
        unjudged, same_modes = self._judging(judged_by, judge)
        if same_modes:
            return unjudged, read.checks
        key = (id(read.checks), id(judge))
        known = self._rejudged.get(key)
        if known is None:
            if len(self._rejudged) >= _MEMO:
                self._rejudged.clear()
            # Kept with its input: the memo is keyed by ids.
            known = self._rejudged[key] = (read.checks, rejudged(read.checks, judge.checks))
        return unjudged, known[1]

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

    def _month(self, at: int) -> str:
        day = at // DAY
        month = self._months.get(day)
        if month is None:
            month = self._months[day] = month_of_utc(from_micros(at))
        return month

    def _wait(self, rid: str, ordinal: int, created: int, at: int, item: tuple[Any, ...]) -> None:
        """Keep a reward (`item`) until its turn to move its referrer's counters: when its
        record was written, or when a later conversion earned it (as a ULID's time)."""
        counted_at = rid[:_TIME_CHARS]
        if at > created:
            counted_at = max(counted_at, first_id_at(from_micros(at))[:_TIME_CHARS])
        self._seq += 1
        heapq.heappush(self._waiting, (counted_at, ordinal, self._seq, item))

    def _release(self, before: str | None) -> None:
        """Count and price the waiting rewards counted before `before` (all: None)."""
        waiting = self._waiting
        while waiting and (before is None or waiting[0][0] < before):
            item = heapq.heappop(waiting)[3]
            if len(item) == 3:  # earned before the window: it only moves the counters
                item[0].count(item[1], item[2])
            else:
                self._price(*item)


def _tallied(rules: RuleVersion, priced: Priced) -> _Tallied:
    held = priced.status is ReferralStatus.HELD
    tier = priced.receipt.tier_threshold, priced.receipt.tier_cents
    return *tier, priced.cents, held, rules.referee_reward_cents
