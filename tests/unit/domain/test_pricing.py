from datetime import UTC, datetime, timedelta, timezone

from referrals.domain.checks import CheckMode, FraudChecks
from referrals.domain.model import Check, ReferralStatus, Referrer
from referrals.domain.pricing import AWAITING_RULE, month_of, month_of_utc, price, rejudged
from referrals.domain.program import RuleVersion
from referrals.domain.tiers import TierSchedule

ALICE = Referrer("alice", "A1", None, 0, datetime(2026, 1, 1, tzinfo=UTC))
RULES = RuleVersion(
    tiers=TierSchedule.parse("1:1000,3:2000"),
    hold=timedelta(days=5),
    monthly_cap_cents=2500,
    program_id="partners",
    version=4,
)
FAILED = Check("disposable_email", False, "mailinator.com is a disposable domain")


def test_a_reward_is_its_ordinals_tier_and_its_receipt_names_the_version() -> None:
    priced = price(RULES, 3, ALICE, "signup", (), "2026-03")
    assert (priced.cents, priced.status) == (2000, ReferralStatus.PENDING)
    receipt = priced.receipt
    assert (receipt.tier_threshold, receipt.tier_cents, receipt.cap) == (3, 2000, None)
    assert (receipt.program, receipt.rule_version, receipt.hold_days) == ("partners", 4, 5)


def test_the_caps_cut_a_reward_against_the_counters_given() -> None:
    priced = price(RULES, 3, ALICE.counting("2026-03", 1000), "signup", (), "2026-03")
    assert (priced.cents, priced.receipt.cap, priced.receipt.tier_cents) == (1500, "monthly", 2000)


def test_a_reward_awaiting_its_conversion_is_not_capped_yet() -> None:
    full = ALICE.counting("2026-03", 2500)
    priced = price(RULES, 1, full, AWAITING_RULE, (), None)
    assert (priced.cents, priced.status, priced.receipt.cap) == (
        1000,
        ReferralStatus.AWAITING,
        None,
    )


def test_a_failed_check_holds_unless_it_ran_in_shadow_mode() -> None:
    assert price(RULES, 1, ALICE, "signup", (FAILED,), "2026-03").status is ReferralStatus.HELD
    shadow = Check(FAILED.name, False, FAILED.detail, shadow=True)
    assert price(RULES, 1, ALICE, "signup", (shadow,), "2026-03").status is ReferralStatus.PENDING


def test_recorded_verdicts_are_judged_again_under_other_modes() -> None:
    passed = Check("email_alias", True)
    velocity = Check("velocity", False, "too fast", shadow=True)
    modes = FraudChecks(
        email_alias=CheckMode.OFF,
        disposable_email=CheckMode.SHADOW,
        velocity=CheckMode.HOLD,
        velocity_per_hour=3,
    )
    assert rejudged((passed, FAILED, velocity), modes) == (
        Check(FAILED.name, False, FAILED.detail, shadow=True),
        Check("velocity", False, "too fast", shadow=False),
    )


def test_a_velocity_verdict_is_dropped_when_the_limit_is_off() -> None:
    velocity = Check("velocity", False, "too fast")
    assert rejudged((velocity,), FraudChecks(velocity_per_hour=0)) == ()


def test_a_verdict_of_an_unknown_check_judges_nothing() -> None:
    assert rejudged((Check("retired_check", False),), FraudChecks()) == ()


def test_the_month_is_the_utc_one() -> None:
    late = datetime(2026, 3, 31, 23, 30, tzinfo=UTC)
    east = late.astimezone(timezone(timedelta(hours=3)))  # 2026-04-01 02:30 there
    assert month_of_utc(late) == month_of(late) == "2026-03"
    assert month_of_utc(late + timedelta(hours=1)) == "2026-04"
    assert month_of_utc(east) == "2026-03"
