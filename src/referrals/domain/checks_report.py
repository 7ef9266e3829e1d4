"""How well each fraud check flags: its flagged rewards against the outcomes of their
reviews, so an operator can move a check from shadow to hold (or back) on evidence.

A check's verdict is kept on the reward's receipt whatever its mode; the reward's
state says what became of it since: rejected in review or reversed (the check was
right), approved or paid (it was not), still held or awaiting a conversion (not
known yet). Its precision is the share of the decided flagged rewards it was right
about; the same share among the rewards it passed is the baseline to beat.
"""

from collections.abc import Iterable
from dataclasses import dataclass

from referrals.domain.model import Referral, ReferralStatus
from referrals.domain.simulation import Window

# A reward's state, as an outcome of its review.
_OUTCOME = {
    ReferralStatus.REJECTED: "rejected",
    ReferralStatus.REVERSED: "reversed",
    ReferralStatus.CLAWED_BACK: "reversed",
    ReferralStatus.PENDING: "approved",
    ReferralStatus.PROCESSING: "approved",
    ReferralStatus.PAID: "approved",
    ReferralStatus.HELD: "in_review",
    ReferralStatus.AWAITING: "awaiting",
}


@dataclass(frozen=True, slots=True)
class Outcomes:
    rewards: int = 0
    rejected: int = 0  # refused in review
    reversed: int = 0  # reversed, or clawed back once paid
    approved: int = 0  # approved in review, or never held: pending, being paid or paid
    in_review: int = 0  # still held
    awaiting: int = 0  # awaiting a conversion

    @property
    def decided(self) -> int:
        return self.rejected + self.reversed + self.approved

    @property
    def bad_share(self) -> float | None:
        """Rejected or reversed, of the decided ones; None if none is decided. A ratio
        for display, not money."""
        return (self.rejected + self.reversed) / self.decided if self.decided else None


@dataclass(frozen=True, slots=True)
class CheckRow:
    name: str
    mode: str  # "shadow" or "hold": the mode its verdicts were given in
    flagged: Outcomes  # rewards the check failed
    passed: Outcomes  # rewards the check passed

    @property
    def checked(self) -> int:
        return self.flagged.rewards + self.passed.rewards

    @property
    def precision(self) -> float | None:
        return self.flagged.bad_share

    @property
    def baseline(self) -> float | None:
        return self.passed.bad_share


@dataclass(frozen=True, slots=True)
class ChecksReport:
    window: Window
    scanned: int  # referrals read
    rewards: int  # ...signed up in the window
    rows: tuple[CheckRow, ...]  # by check name, shadow before hold


class ChecksTally:
    """Feed it referrals (any order); those signed up in the window count."""

    def __init__(self, window: Window) -> None:
        self.window = window
        self.scanned = 0
        self.rewards = 0
        # (name, mode, passed) -> counts by outcome
        self._counts: dict[tuple[str, str, bool], dict[str, int]] = {}

    def feed(self, referrals: Iterable[Referral]) -> None:
        for referral in referrals:
            self.scanned += 1
            if referral.created_at not in self.window or referral.receipt is None:
                continue
            self.rewards += 1
            outcome = _OUTCOME[referral.status]
            for check in referral.receipt.checks:
                key = (check.name, "shadow" if check.shadow else "hold", check.passed)
                counts = self._counts.setdefault(key, {})
                counts[outcome] = counts.get(outcome, 0) + 1

    def report(self) -> ChecksReport:
        rows = []
        for name, mode in sorted({(name, mode) for name, mode, _ in self._counts}):
            flagged = self._outcomes(self._counts.get((name, mode, False), {}))
            passed = self._outcomes(self._counts.get((name, mode, True), {}))
            rows.append(CheckRow(name, mode, flagged, passed))
        # "hold" < "shadow": sort shadow first, the mode an operator weighs turning on.
        rows.sort(key=lambda row: (row.name, row.mode != "shadow"))
        return ChecksReport(self.window, self.scanned, self.rewards, tuple(rows))

    @staticmethod
    def _outcomes(counts: dict[str, int]) -> Outcomes:
        return Outcomes(rewards=sum(counts.values()), **counts)
