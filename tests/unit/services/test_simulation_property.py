"""The backtest's promise: simulating a window with the rule versions that actually priced
it reproduces what was earned, referrer by referrer.

Signups (live and imported) and purchases are recorded by the real signup and
conversion paths, over weeks, while rule versions (tiers, caps, hold, check modes,
velocity limit, trigger) are scheduled between them; then a random window is
backtested, page by small page.

Reviews and reversals are left out of this property: they give a reward's amount back
to its referrer's caps at a moment the records do not keep, so a replay cannot know
which rewards after it met the cap with or without it (domain.simulation says how it
counts them; tests/unit/domain/test_simulation.py tests that separately).
"""

from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from referrals.adapters.memory import MemoryStore
from referrals.domain.checks import CheckMode, FraudChecks
from referrals.domain.model import ID_SLACK, ReferralStatus, first_id_at
from referrals.domain.program import RuleVersion, Trigger
from referrals.domain.simulation import Window
from referrals.domain.tiers import Tier, TierSchedule
from referrals.services.conversions import record_conversion
from referrals.services.programs import SCHEDULE_LEAD, RulesBook, schedule_rules
from referrals.services.referrers import enroll
from referrals.services.signups import sign_up
from referrals.services.simulations import simulate
from tests.clocks import FixedClock

START = datetime(2026, 1, 20, tzinfo=UTC)
REFERRERS = ("ann", "ben")
MODES = st.sampled_from(list(CheckMode))


@dataclass(frozen=True)
class Signup:
    referrer: int
    gap_hours: int
    email: str  # "plain", "disposable", "alias" (of the referrer's mailbox) or "none"
    imported_days_ago: int | None


@dataclass(frozen=True)
class Convert:
    """A purchase by the user of an earlier (or a later) signup step."""

    user: int
    gap_hours: int


@dataclass(frozen=True)
class Rules:
    version: RuleVersion
    gap_hours: int


tiers = st.lists(st.sampled_from([500, 1000, 1500, 2500, 0]), min_size=1, max_size=3).flatmap(
    lambda amounts: (
        st.lists(st.integers(2, 9), min_size=len(amounts) - 1, max_size=len(amounts) - 1)
        .map(lambda steps: [1, *(1 + sum(steps[: i + 1]) for i in range(len(steps)))])
        .map(lambda thresholds: TierSchedule(tuple(map(Tier, thresholds, amounts))))
    )
)
versions = st.builds(
    RuleVersion,
    tiers=tiers,
    hold=st.integers(0, 30).map(lambda days: timedelta(days=days)),
    trigger=st.sampled_from([Trigger.SIGNUP, Trigger.SIGNUP, Trigger.CONVERSION]),
    conversion_window_days=st.sampled_from([0, 0, 3]),
    monthly_cap_cents=st.sampled_from([0, 1500, 2500, 4000]),
    lifetime_cap_cents=st.sampled_from([0, 3000, 6000, 9000]),
    checks=st.builds(
        FraudChecks,
        email_alias=MODES,
        disposable_email=MODES,
        velocity=MODES,
        velocity_per_hour=st.sampled_from([0, 1, 2]),
    ),
)
signups = st.builds(
    Signup,
    referrer=st.integers(0, len(REFERRERS) - 1),
    gap_hours=st.sampled_from([0, 0, 1, 5, 30, 200]),
    email=st.sampled_from(["plain", "disposable", "alias", "none"]),
    imported_days_ago=st.one_of(st.none(), st.none(), st.integers(0, 60)),
)
rule_changes = st.builds(Rules, version=versions, gap_hours=st.sampled_from([1, 48, 400]))
conversions = st.builds(Convert, user=st.integers(0, 39), gap_hours=st.sampled_from([0, 2, 100]))
# Mostly signups: a referrer needs a few before the caps and the upper tiers bite.
steps = st.lists(
    st.one_of(signups, signups, signups, rule_changes, conversions), min_size=10, max_size=40
)


def email_of(kind: str, referrer: str, n: int) -> str | None:
    return {
        "plain": f"user{n}@example.com",
        "disposable": f"user{n}@mailinator.com",
        "alias": f"{referrer}+{n}@gmail.com",
        "none": None,
    }[kind]


@given(
    steps=steps,
    first=versions,
    # The window's ends, in thousandths of the time the steps took (past both ends too).
    window=st.tuples(st.integers(-100, 1000), st.integers(1, 1100)),
    page=st.integers(1, 7),
)
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_a_backtest_reproduces_what_each_referrer_earned(
    steps: list[Signup | Rules | Convert], first: RuleVersion, window: tuple[int, int], page: int
) -> None:
    store, clock = MemoryStore(), FixedClock(START)
    book = RulesBook(store, clock, first, ttl=timedelta(0))
    book.ensure_default()
    codes = [enroll(store, clock, name, f"{name}@gmail.com").referrer.code for name in REFERRERS]
    for n, step in enumerate(steps):
        if isinstance(step, Rules):
            at = clock.now() + SCHEDULE_LEAD
            schedule_rules(store, clock, "test", "default", step.version, at)
            clock.advance(hours=step.gap_hours)
            continue
        clock.advance(hours=step.gap_hours)
        if isinstance(step, Convert):
            rules = book.in_force("default", clock.now())
            record_conversion(store, clock, rules, f"user{step.user}", "purchase", f"o{n}", 100)
            continue
        referrer = REFERRERS[step.referrer]
        imported = (
            None
            if step.imported_days_ago is None
            else clock.now() - timedelta(days=step.imported_days_ago, hours=1)
        )
        email = email_of(step.email, referrer, n)
        sign_up(store, clock, book.for_signup, f"user{n}", codes[step.referrer], email, imported)
    took = clock.now() - START + timedelta(hours=1)
    start = START + took * window[0] / 1000
    span = Window(start, start + took * window[1] / 1000)

    result = simulate(store, "default", span, None, limit=500, page=page)

    stop = first_id_at(span.end + ID_SLACK)
    earned: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])
    with store.read() as uow:
        for r in uow.referrals.search(None, None, None, 10_000, program="default"):
            earned_at_all = r.status is not ReferralStatus.AWAITING
            if earned_at_all and r.earned_at in span and r.id < stop:
                figures = earned[r.referrer_id]
                figures[0] += 1
                figures[1] += r.reward_cents
                figures[2] += r.reward_cents if r.status is ReferralStatus.HELD else 0
    simulated = {
        d.referrer_id: [d.simulated_count, d.simulated_cents, d.simulated_held_cents]
        for d in result.movers
    }
    assert simulated == dict(earned)
    assert result.changed == 0 and result.unjudged == 0
    assert result.simulated == result.actual
