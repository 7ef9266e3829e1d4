"""Pricing a reward: its tier by ordinal, the caps, the checks' verdicts, the receipt.

One pure function prices every reward: a signup (services.signups), a conversion
(services.conversions) and a replay of recorded referrals through other rules
(domain.simulation), so what a simulation says a rule version would have paid is
what that version pays.
"""

from dataclasses import dataclass
from datetime import UTC, datetime

from referrals.domain.checks import VELOCITY, CheckMode, FraudChecks
from referrals.domain.model import CapCounted, Check, Receipt, ReferralStatus
from referrals.domain.periods import Period
from referrals.domain.program import RuleVersion
from referrals.domain.sales import SHARE_RULE, share_of

AWAITING_RULE = "awaiting conversion"
CONVERSION_RULE = "conversion:"  # followed by the event that earned the reward


@dataclass(frozen=True, slots=True)
class Priced:
    """A reward as priced: its amount after the caps, its state, and how it came to be."""

    cents: int
    status: ReferralStatus
    receipt: Receipt


def price(
    rules: RuleVersion,
    ordinal: int,
    counters: CapCounted,
    rule: str,
    checks: tuple[Check, ...],
    earned_in: str | None,
) -> Priced:
    """The reward of a referrer's `ordinal`-th referral under `rules`.

    `rule` says what earned it ("signup", "conversion:<event>") or that nothing has yet
    (AWAITING_RULE); `earned_in` is the month (YYYY-MM) it was earned in, None while it
    awaits a conversion: the caps price it when it is earned, against `counters` as
    they are then. `checks`: the verdicts of the fraud checks that ran.
    """
    tier = rules.tiers.tier_of(ordinal)
    if earned_in is None:
        cents, cap = tier.reward_cents, None
    else:
        cents, cap = rules.capped(tier.reward_cents, counters, earned_in)
    receipt = Receipt(
        rule=rule,
        tier_threshold=tier.threshold,
        tier_cents=tier.reward_cents,
        hold_days=rules.hold.days,
        checks=checks,
        cap=cap,
        program=rules.program_id,
        rule_version=rules.version,
    )
    status = earned_status(receipt) if earned_in is not None else ReferralStatus.AWAITING
    return Priced(cents, status, receipt)


def price_share(
    rules: RuleVersion,
    sale_kind: str,
    amount_minor: int,
    referral_count: int,
    counters: CapCounted,
    earned_in: str,
    *,
    held: bool = False,
) -> Priced | None:
    """The revenue share of a sale of `amount_minor` under `rules`, for a referrer with
    `referral_count` referrals and cap `counters` as they are, earned in `earned_in`
    (YYYY-MM); None if the rules pay no share at that count. `held`: the referral
    waits for review, and its shares with it.

    The receipt's tier is the share tier's threshold, and its `tier_cents` what the
    tier's basis points make of the sale (after the ceiling, before the caps).
    """
    tier = rules.share_tiers.tier_of(referral_count)
    if tier is None or not tier.bps:
        return None
    share = share_of(amount_minor, tier.bps, rules.share_ceiling_cents)
    cents, cap = rules.capped(share, counters, earned_in)
    receipt = Receipt(
        rule=f"{SHARE_RULE}{sale_kind}",
        tier_threshold=tier.threshold,
        tier_cents=share,
        hold_days=rules.hold.days,
        cap=cap,
        program=rules.program_id,
        rule_version=rules.version,
    )
    return Priced(cents, ReferralStatus.HELD if held else ReferralStatus.PENDING, receipt)


def earned_status(receipt: Receipt) -> ReferralStatus:
    """A reward that failed a fraud check (not one in shadow mode) waits for review."""
    return ReferralStatus.HELD if receipt.failed else ReferralStatus.PENDING


def month_of(moment: datetime) -> str:
    """The calendar month (UTC) of `moment`, as the caps count it."""
    return str(Period.containing(moment))


def month_of_utc(moment: datetime) -> str:
    """`month_of` for a moment already in UTC (as stores return them): the replay
    computes one per referral, and skipping the conversion halves its cost."""
    if moment.tzinfo is not UTC:
        return month_of(moment)
    return f"{moment.year:04d}-{moment.month:02d}"


def rejudged(checks: tuple[Check, ...], modes: FraudChecks) -> tuple[Check, ...]:
    """Recorded verdicts as checks in `modes` would have left them: a check now off is
    dropped, one in shadow mode keeps its verdict without holding, one in hold mode
    holds if it failed. A verdict is what the check found, whatever its mode, so it
    can be judged again; a check that did not run has no verdict to judge."""
    judged = []
    for check in checks:
        mode = modes.mode_of(check.name)
        if mode is CheckMode.OFF or (check.name == VELOCITY and not modes.velocity_runs):
            continue
        shadow = mode is CheckMode.SHADOW
        same = check.shadow == shadow
        judged.append(check if same else Check(check.name, check.passed, check.detail, shadow))
    return tuple(judged)
