"""Any sequence of signups, conversions, reviews, reversals and payout runs keeps every
user's books straight, never pays an entry twice and never pays a referrer past a cap
(hypothesis, stateful).

The machine keeps its own ledger of what the use cases said they did: which
rewards were granted, to whom, and which were taken away. The store must agree:
earned = pending + payable + held + paid - clawed back = the ledger's total for
each user, and what the reports paid each user equals the entries the store
holds as paid, each paid in one run only.
"""

import csv
import io
import uuid
from collections import defaultdict
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    initialize,
    invariant,
    rule,
    run_state_machine_as_test,
)

from referrals.adapters.memory import MemoryStore
from referrals.bootstrap import build_store
from referrals.domain.errors import DomainError, NotHeld, NotReversible
from referrals.domain.model import Referral, ReferralStatus
from referrals.domain.periods import last_ended_period
from referrals.domain.pricing import month_of
from referrals.domain.program import RuleVersion, Trigger
from referrals.ports import Store
from referrals.services import reviews
from referrals.services.conversions import record_conversion
from referrals.services.payouts import run_payout
from referrals.services.referrers import enroll
from referrals.services.signups import sign_up
from tests.clocks import FixedClock
from tests.fakes import MemoryReports

REFERRERS = ("r0", "r1", "r2")
EMAILS = (None, "someone@example.com", "throwaway@mailinator.com")  # the last one is held
START = datetime(2026, 1, 10, tzinfo=UTC)
PAID_STATES = (ReferralStatus.PAID, ReferralStatus.CLAWED_BACK)
COUNTED = (  # what the caps count: earned and not cancelled
    ReferralStatus.PENDING,
    ReferralStatus.HELD,
    ReferralStatus.PROCESSING,
    ReferralStatus.PAID,
)


class Lifecycle(RuleBasedStateMachine):
    make_store: Callable[[], Store] = MemoryStore

    referees = Bundle("referees")

    def __init__(self) -> None:
        super().__init__()
        self.store = self.make_store()
        self.clock = FixedClock(START)
        self.reports = MemoryReports()
        self.referral_of: dict[str, Referral] = {}  # referee -> referral, as recorded
        self.alive: dict[str, bool] = {}  # referral id -> its rewards still count
        self.granted: dict[str, list[tuple[str, int]]] = {}  # referral id -> (user, cents)
        self.paid_in: dict[str, str] = {}  # entry id -> the period that paid it
        self.n = 0

    @initialize(
        trigger=st.sampled_from(Trigger),
        referee_cents=st.sampled_from([0, 300]),
        minimum=st.sampled_from([0, 1500]),
        hold_days=st.sampled_from([0, 10]),
        caps=st.sampled_from([(0, 0), (2500, 0), (0, 4000), (2500, 6000)]),
    )
    def program_and_referrers(
        self,
        trigger: Trigger,
        referee_cents: int,
        minimum: int,
        hold_days: int,
        caps: tuple[int, int],
    ) -> None:
        self.program = RuleVersion(
            trigger=trigger,
            referee_reward_cents=referee_cents,
            minimum_payout_cents=minimum,
            hold=timedelta(days=hold_days),
            monthly_cap_cents=caps[0],
            lifetime_cap_cents=caps[1],
        )
        for user in REFERRERS:
            enroll(self.store, self.clock, user, code=f"CODE-{user}")

    def _grant(self, referral: Referral) -> None:
        granted = [(referral.referrer_id, referral.reward_cents)]
        if self.program.referee_reward_cents:
            granted.append((referral.referee_id, self.program.referee_reward_cents))
        self.granted[referral.id] = granted
        self.alive[referral.id] = True

    @rule(target=referees, referrer=st.sampled_from(REFERRERS), email=st.sampled_from(EMAILS))
    def sign_up(self, referrer: str, email: str | None) -> str:
        self.n += 1
        referee = f"u{self.n}"
        referral = sign_up(
            self.store, self.clock, self.program, referee, f"code-{referrer}", email
        ).referral
        self.referral_of[referee] = referral
        if referral.status is not ReferralStatus.AWAITING:
            self._grant(referral)
        return referee

    @rule(
        target=referees,
        referrer=st.sampled_from(REFERRERS),
        qualifying=st.booleans(),
    )
    def convert_then_sign_up(self, referrer: str, qualifying: bool) -> str:
        """The conversion's webhook arrives before the signup's."""
        self.n += 1
        referee = f"u{self.n}"
        event = "purchase" if qualifying else "visit"
        early = record_conversion(
            self.store, self.clock, self.program, referee, event, f"ext-{self.n}", 2000
        )
        assert early.referral is None
        referral = sign_up(
            self.store, self.clock, self.program, referee, f"code-{referrer}"
        ).referral
        self.referral_of[referee] = referral
        if referral.status is not ReferralStatus.AWAITING:
            assert self.program.trigger is Trigger.SIGNUP or qualifying
            self._grant(referral)
        return referee

    @rule(referee=referees, qualifying=st.booleans())
    def convert(self, referee: str, qualifying: bool) -> None:
        self.n += 1
        event = "purchase" if qualifying else "visit"
        result = record_conversion(
            self.store, self.clock, self.program, referee, event, f"ext-{self.n}", 2000
        )
        if result.referral is not None:
            assert self.program.trigger is Trigger.CONVERSION and qualifying
            assert result.referral.id not in self.granted, "a referral earned twice"
            self._grant(result.referral)

    @rule(referee=referees, approve=st.booleans())
    def review(self, referee: str, approve: bool) -> None:
        referral_id = self.referral_of[referee].id
        try:
            if approve:
                reviews.approve(self.store, self.clock, "admin", referral_id)
            else:
                reviews.reject(self.store, self.clock, "admin", referral_id, "fraud")
                self.alive[referral_id] = False
        except NotHeld:
            pass

    @rule(referee=referees)
    def reverse(self, referee: str) -> None:
        referral_id = self.referral_of[referee].id
        try:
            reviews.reverse(self.store, self.clock, "admin", referral_id, "refund")
        except NotReversible:
            return
        self.alive[referral_id] = False

    @rule(days=st.integers(1, 45))
    def time_passes(self, days: int) -> None:
        self.clock.advance(days=days)

    @rule()
    def pay_last_month(self) -> None:
        period = last_ended_period(self.clock.now())
        try:
            run_payout(
                self.store,
                self.reports,
                self.clock,
                period,
                minimum_cents=self.program.minimum_payout_cents,
            )
        except DomainError as error:  # nothing a client could have caused
            raise AssertionError(f"payout {period} failed: {error.detail}") from error

    def _entries(self) -> list[tuple[str, str, int, ReferralStatus, str | None]]:
        """(id, user, cents, status, period) of every entry the store holds."""
        rows = []
        with self.store.read() as uow:
            for referral in self.referral_of.values():
                current = uow.referrals.get(referral.id)
                assert current is not None
                rows.append(
                    (
                        current.id,
                        current.referrer_id,
                        current.reward_cents,
                        current.status,
                        current.payout_period,
                    )
                )
                for e in uow.rewards.for_referral(referral.id):
                    rows.append((e.id, e.user_id, e.cents, e.status, e.payout_period))
        return rows

    @invariant()
    def books_balance_for_every_user(self) -> None:
        expected: dict[str, int] = defaultdict(int)
        for referral_id, granted in self.granted.items():
            if self.alive[referral_id]:
                for user, cents in granted:
                    expected[user] += cents
        users = {*REFERRERS, *self.referral_of}
        with self.store.read() as uow:
            for user in users:
                e = uow.referrers.earnings(user, self.clock.now())
                assert e.earned_cents == expected[user], user
                assert min(e.pending_cents, e.payable_cents, e.held_cents, e.paid_cents) >= 0

    @invariant()
    def no_referrer_earns_past_a_cap(self) -> None:
        """What each referrer's uncancelled rewards add up to, in all and per month
        earned, stays within the caps, and is what their counter holds."""
        with self.store.read() as uow:
            for user in REFERRERS:
                counted = [
                    r for r in uow.referrals.for_referrer(user, None, 10_000) if r.status in COUNTED
                ]
                by_month: dict[str, int] = defaultdict(int)
                for r in counted:
                    by_month[month_of(r.earned_at)] += r.reward_cents
                profile = uow.referrers.get(user)
                assert profile is not None
                assert profile.cap_lifetime_cents == sum(by_month.values()), user
                if profile.cap_month is not None:
                    assert profile.cap_month_cents == by_month[profile.cap_month], user
                if self.program.lifetime_cap_cents:
                    assert profile.cap_lifetime_cents <= self.program.lifetime_cap_cents
                if self.program.monthly_cap_cents:
                    assert max(by_month.values(), default=0) <= self.program.monthly_cap_cents

    @invariant()
    def every_entry_is_paid_once_and_as_reported(self) -> None:
        paid: dict[str, int] = defaultdict(int)
        for entry_id, user, cents, status, period in self._entries():
            if status in PAID_STATES:
                assert period is not None
                assert self.paid_in.setdefault(entry_id, period) == period, "paid twice"
                paid[user] += cents
            else:
                assert entry_id not in self.paid_in, "a paid entry became unpaid"
        reported: dict[str, int] = defaultdict(int)
        for key, data in self.reports.objects.items():
            if key.endswith("/report.csv"):
                for row in csv.DictReader(io.StringIO(data.decode())):
                    reported[row["referrer_id"]] += int(row["amount_cents"])
        assert {u: c for u, c in paid.items() if c} == {u: c for u, c in reported.items() if c}


@pytest.mark.parametrize("kind", ["memory", "sqlite"])
def test_the_reward_lifecycle_keeps_the_books(kind: str, tmp_path: Path) -> None:
    def make_store() -> Store:
        if kind == "memory":
            return MemoryStore()
        return build_store(f"sqlite:///{tmp_path}/{uuid.uuid4().hex}.db", migrate=True)

    class Machine(Lifecycle):
        pass

    Machine.make_store = staticmethod(make_store)  # type: ignore[assignment]
    examples = 200 if kind == "memory" else 15
    run_state_machine_as_test(
        Machine,
        settings=settings(
            max_examples=examples,
            stateful_step_count=30,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow],
        ),
    )
