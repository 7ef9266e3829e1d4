"""What a replay reads and keeps: rows made from referrals, receipts read once, a
referrer's cap counters."""

from datetime import UTC, datetime, timedelta, timezone

from referrals.domain.model import Check, Receipt, Referral, ReferralStatus
from referrals.domain.program import RuleVersion
from referrals.domain.replay_rows import (
    DAY,
    ReceiptRead,
    ReplayMember,
    from_micros,
    micros,
    replay_row,
)

AT = datetime(2026, 3, 10, 23, 59, 59, 999_999, tzinfo=UTC)
FLAGGED = Check("disposable_email", False, "mailinator.com")


def test_a_time_is_exact_integer_microseconds_since_the_epoch() -> None:
    assert micros(datetime(1970, 1, 1, 0, 0, 0, 1, tzinfo=UTC)) == 1
    assert from_micros(micros(AT)) == AT
    eastern = AT.astimezone(timezone(timedelta(hours=-5)))
    assert micros(eastern) == micros(AT)


def test_a_referrals_row_holds_its_times_and_receipt() -> None:
    receipt = Receipt("conversion:purchase", 1, 1000, 7)
    referral = Referral(
        "01J0000000000000000000000Z",
        "bob",
        "ann",
        "ANN",
        None,
        3,
        1000,
        ReferralStatus.HELD,
        AT,
        hold=timedelta(days=9),
        receipt=receipt,
    )
    row = replay_row(referral)
    assert row == (referral.id, "ann", 3, 1000, "held", micros(AT), micros(AT) + 9 * DAY, receipt)
    assert row[6] - ReceiptRead(receipt, None).hold == micros(referral.earned_at)


def test_a_receipt_holds_a_reward_only_for_a_check_not_in_shadow_mode() -> None:
    held = ReceiptRead(Receipt("signup", 5, 1500, checks=(FLAGGED,)), None)
    assert held.held and held.tier == (5, 1500) and held.rule == "signup"
    shadow = Check(FLAGGED.name, False, FLAGGED.detail, shadow=True)
    assert not ReceiptRead(Receipt("signup", 5, 1500, checks=(shadow,)), None).held


def test_a_reward_recorded_before_receipts_reads_as_a_signup_of_the_first_version() -> None:
    first = RuleVersion(referee_reward_cents=300)
    read = ReceiptRead(None, first)
    assert (read.rule, read.hold, read.checks, read.tier, read.held) == (
        "signup",
        0,
        (),
        None,
        False,
    )
    assert read.referee == 300


def test_a_member_counts_toward_the_caps_as_a_referrer_does() -> None:
    member = ReplayMember()
    member.count("2026-03", 1000)
    member.count("2026-04", 500)
    member.count("2026-04", -200)  # a cancelled reward given back
    assert member.cap_lifetime_cents == 1300
    assert (member.earned_in("2026-04"), member.earned_in("2026-05")) == (300, 0)
    assert member.earned_in("2026-03") is None  # the counter keeps one month
