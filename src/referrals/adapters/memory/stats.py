"""The dashboard's aggregates, in memory."""

from collections import Counter, defaultdict
from collections.abc import Sequence
from datetime import UTC, date, datetime

from referrals.adapters.memory.state import State, cents_of, entries
from referrals.domain.funnel import ReferralDay
from referrals.domain.model import (
    UNEARNED,
    UNSETTLED,
    ReferralStatus,
    ReferrerTally,
    SignupTally,
    StateTally,
)


class MemoryStats:
    """The dashboard's aggregates, computed from every row: the fake has no indexes."""

    def __init__(self, state: State) -> None:
        self._s = state

    def signups(self, since: datetime, *, program: str | None = None) -> Sequence[SignupTally]:
        counts: Counter[tuple[date, int, ReferralStatus]] = Counter(
            (r.created_at.astimezone(UTC).date(), r.reward_cents, r.status)
            for r in self._s.referrals.values()
            if r.created_at >= since and program in (None, r.program_id)
        )
        return [SignupTally(*key, count) for key, count in counts.items()]

    def top_referrers(
        self, since: datetime, limit: int, *, program: str | None = None
    ) -> Sequence[ReferrerTally]:
        totals: dict[str, list[int]] = defaultdict(lambda: [0, 0])
        for r in self._s.referrals.values():
            if r.created_at >= since and program in (None, r.program_id):
                totals[r.referrer_id][0] += 1
                totals[r.referrer_id][1] += 0 if r.status in UNEARNED else r.reward_cents
        ranked = sorted(totals.items(), key=lambda item: (-item[1][0], item[0].encode()))
        return [ReferrerTally(user, n, cents) for user, (n, cents) in ranked[:limit]]

    def referral_days(
        self, program: str, since: datetime, until: datetime
    ) -> Sequence[ReferralDay]:
        totals: dict[tuple[date, str], list[int]] = defaultdict(lambda: [0, 0])
        for r in self._s.referrals.values():
            if since <= r.created_at < until and r.program_id == program:
                cell = totals[r.created_at.astimezone(UTC).date(), r.referrer_id]
                cell[0] += 1
                cell[1] += 0 if r.status in UNEARNED else r.reward_cents
        return [ReferralDay(day, user, n, cents) for (day, user), (n, cents) in totals.items()]

    def unsettled(self, *, program: str | None = None) -> Sequence[StateTally]:
        totals: dict[ReferralStatus, list[int]] = defaultdict(lambda: [0, 0])
        for entry in entries(self._s):
            if entry.status in UNSETTLED and program in (None, entry.program_id):
                totals[entry.status][0] += 1
                totals[entry.status][1] += cents_of(entry)
        return [StateTally(s, *totals[s]) for s in UNSETTLED if s in totals]
