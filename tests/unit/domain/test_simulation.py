"""The replay on hand-made records: what a proposal reprices, what the history before the
window counts for, and what the records cannot tell."""

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from referrals.domain import simulation
from referrals.domain.checks import CheckMode, FraudChecks
from referrals.domain.errors import InvalidInput
from referrals.domain.model import Check, Receipt, Referral, ReferralStatus, new_id, ulid
from referrals.domain.program import RuleVersion, Trigger
from referrals.domain.replay_rows import replay_row
from referrals.domain.simulation import Replay, Simulation, Window
from referrals.domain.tiers import TierSchedule

T = datetime(2026, 3, 10, tzinfo=UTC)
WINDOW = Window(T, T + timedelta(days=14))
V1 = RuleVersion(
    tiers=TierSchedule.parse("1:1000,3:2000"),
    checks=FraudChecks(
        email_alias=CheckMode.OFF, disposable_email=CheckMode.SHADOW, same_device=CheckMode.OFF
    ),
)
DISPOSABLE = Check("disposable_email", False, "mailinator.com is a disposable domain")


def record(
    referrer: str,
    ordinal: int,
    at: datetime,
    cents: int = 1000,
    *,
    status: ReferralStatus = ReferralStatus.PENDING,
    checks: tuple[Check, ...] = (),
    rule: str = "signup",
    earned_at: datetime | None = None,
    recorded_at: datetime | None = None,
    referral_id: str | None = None,
) -> Referral:
    """A referral as a store returns it, priced by V1 at `cents`."""
    hold = (earned_at - at) if earned_at else timedelta(0)
    tier = V1.tiers.tier_of(ordinal)
    receipt = Receipt(rule, tier.threshold, tier.reward_cents, 0, checks, None)
    return Referral(
        id=referral_id or new_id(recorded_at or at),
        referee_id=f"{referrer}-{ordinal}",
        referrer_id=referrer,
        code=referrer.upper(),
        email=None,
        ordinal=ordinal,
        reward_cents=cents,
        status=status,
        created_at=at,
        hold=hold,
        receipt=receipt,
    )


def run(
    records: list[Referral],
    proposal: RuleVersion | None,
    versions: tuple[RuleVersion, ...] = (V1,),
    limit: int = 20,
) -> Simulation:
    replay = Replay(WINDOW, versions, proposal)
    ordered = [replay_row(r) for r in sorted(records, key=lambda r: r.id)]
    for start in range(0, len(ordered), 2):  # parts of two, as a store may give them
        replay.feed(ordered[start : start + 2])
    return replay.result(limit)


@pytest.mark.parametrize(
    ("start", "end", "field"),
    [
        (T.replace(tzinfo=None), T + timedelta(days=1), "from"),
        (T, (T + timedelta(days=1)).replace(tzinfo=None), "to"),
        (T, T, "to"),
        (T, T + timedelta(days=367), "to"),
    ],
)
def test_a_bad_window_is_refused_naming_its_field(
    start: datetime, end: datetime, field: str
) -> None:
    with pytest.raises(InvalidInput) as refused:
        Window.of(start, end)
    assert refused.value.field == field


def test_a_proposal_reprices_the_window_and_not_what_came_before() -> None:
    records = [
        record("ann", 1, T - timedelta(days=20)),
        record("ann", 2, T + timedelta(days=1)),
        record("ann", 3, T + timedelta(days=2), 2000),
        record("ann", 4, T + timedelta(days=30), 2000),  # after the window
    ]
    result = run(records, RuleVersion(tiers=TierSchedule.parse("1:500,2:800")))
    assert result.scanned == 4
    assert (result.actual.count, result.actual.earned_cents) == (2, 3000)
    assert (result.simulated.count, result.simulated.earned_cents) == (2, 1600)
    assert [(t.threshold, t.reward_cents, t.count) for t in result.simulated.tiers] == [(2, 800, 2)]
    assert [(t.threshold, t.count, t.cents) for t in result.actual.tiers] == [
        (1, 1, 1000),
        (3, 1, 2000),
    ]
    (ann,) = result.movers
    assert (ann.referrer_id, ann.change_cents, result.changed) == ("ann", -1400, 1)


def test_what_was_earned_before_the_window_fills_the_cap_of_its_month() -> None:
    records = [record("ann", 1, T - timedelta(days=5)), record("ann", 2, T + timedelta(days=1))]
    result = run(records, replace(V1, monthly_cap_cents=1500))
    assert (result.simulated.earned_cents, result.simulated.capped_count) == (500, 1)
    assert result.simulated.capped_cents == 500


def test_a_reward_rejected_before_the_window_counts_toward_no_cap() -> None:
    rejected = record("ann", 1, T - timedelta(days=5), status=ReferralStatus.REJECTED)
    result = run(
        [rejected, record("ann", 2, T + timedelta(days=1))], replace(V1, monthly_cap_cents=1500)
    )
    assert (result.simulated.earned_cents, result.simulated.capped_count) == (1000, 0)


def test_an_import_counts_toward_the_caps_from_when_it_was_recorded() -> None:
    live = record("ann", 1, T + timedelta(days=2))
    # Dated before the window, recorded after the live signup: it was counted after it.
    imported = record("ann", 2, T - timedelta(days=40), recorded_at=T + timedelta(days=3))
    result = run([live, imported], replace(V1, lifetime_cap_cents=1500))
    assert (result.simulated.count, result.simulated.earned_cents) == (1, 1000)


def test_rewards_counted_in_one_millisecond_count_in_ordinal_order() -> None:
    millis = int((T + timedelta(days=1)).timestamp() * 1000)
    first = record("ann", 1, T + timedelta(days=1), referral_id=ulid(millis << 80 | 9))
    second = record("ann", 2, T + timedelta(days=1), referral_id=ulid(millis << 80 | 1))
    proposal = RuleVersion(tiers=TierSchedule.parse("1:1000,2:1200"), monthly_cap_cents=1500)
    result = run([first, second], proposal)
    tiers = {(t.threshold, t.cents) for t in result.simulated.tiers}
    assert tiers == {(1, 1000), (2, 500)}  # the second one is the one capped


def test_turning_a_shadow_check_to_hold_holds_what_it_flagged() -> None:
    shadow = replace(DISPOSABLE, shadow=True)
    records = [record("ann", 1, T + timedelta(days=1), checks=(shadow,))]
    result = run(records, replace(V1, checks=replace(V1.checks, disposable_email=CheckMode.HOLD)))
    assert (result.actual.held_count, result.simulated.held_count) == (0, 1)
    assert result.movers[0].simulated_held_cents == 1000 and result.unjudged == 0


def test_a_check_that_did_not_run_has_no_verdict_to_judge() -> None:
    records = [record("ann", 1, T + timedelta(days=1)), record("ann", 2, T + timedelta(days=2))]
    result = run(records, replace(V1, checks=FraudChecks()))  # email_alias on: it was off
    assert result.unjudged == 2 and result.simulated.held_count == 0


def test_a_proposal_paying_on_conversion_earns_from_the_recorded_conversions_only() -> None:
    on_purchase = RuleVersion(trigger=Trigger.CONVERSION, tiers=V1.tiers, version=2)
    converted = record(
        "ann",
        1,
        T + timedelta(hours=12),
        rule="conversion:purchase",
        earned_at=T + timedelta(days=2),
    )
    signed_up = record("ben", 1, T + timedelta(days=1))  # earned by its signup
    result = run([converted, signed_up], on_purchase)
    assert (result.actual.count, result.simulated.count) == (2, 1)
    assert {d.referrer_id: d.simulated_count for d in result.movers} == {"ann": 1, "ben": 0}
    other_event = replace(on_purchase, conversion_event="subscribe")
    assert run([converted, signed_up], other_event).simulated.count == 0
    window_too_short = replace(on_purchase, conversion_window_days=1)  # it came in 1.5
    assert run([converted, signed_up], window_too_short).simulated.count == 0


def test_a_backtest_prices_a_conversion_by_the_version_in_force_when_it_came() -> None:
    on_purchase = RuleVersion(trigger=Trigger.CONVERSION, tiers=TierSchedule.parse("1:700"))
    later = replace(on_purchase, tiers=TierSchedule.parse("1:900"), version=2, effective_from=T)
    converted = replace(
        record(
            "ann",
            1,
            T - timedelta(days=3),
            900,
            rule="conversion:purchase",
            earned_at=T + timedelta(days=1),
        ),
    )
    result = run([converted], None, versions=(on_purchase, later))
    assert result.simulated.earned_cents == result.actual.earned_cents == 900


def test_the_movers_are_the_largest_changes_first_and_bounded() -> None:
    records = [
        record("ann", 1, T + timedelta(days=1)),
        *(
            record("ben", n, T + timedelta(days=1, hours=n), 1000 if n < 3 else 2000)
            for n in (1, 2, 3)
        ),
        *(
            record("cat", n, T + timedelta(days=2, hours=n), 1000 if n < 3 else 2000)
            for n in (1, 2)
        ),
    ]
    result = run(records, RuleVersion(tiers=TierSchedule.parse("1:1000,2:100")), limit=2)
    assert [(d.referrer_id, d.change_cents) for d in result.movers] == [
        ("ben", -2800),
        ("cat", -900),
    ]
    assert (result.referrers, result.changed) == (3, 2)


def test_each_reward_is_priced_by_its_own_version_however_many_share_a_receipt() -> None:
    """The replay asks `price` once per rules, ordinal and verdicts (without caps): two
    rewards of the same ordinal and receipt under two versions are priced apart."""
    later = replace(V1, tiers=TierSchedule.parse("1:700"), version=2, effective_from=T)
    receipt = Receipt("signup", 1, 1000, 0, (), None)
    before = replace(record("ann", 1, T - timedelta(days=1)), receipt=receipt)
    after = replace(record("ben", 1, T + timedelta(days=1), 700), receipt=receipt)
    result = run([before, after], None, versions=(V1, later))
    assert (result.simulated.count, result.simulated.earned_cents) == (1, 700)
    early = Window(T - timedelta(days=2), T + timedelta(days=2))
    replay = Replay(early, (V1, later))
    replay.feed([replay_row(before), replay_row(after)])
    both = replay.result(5)
    assert [t.reward_cents for t in both.simulated.tiers] == [700, 1000]
    assert (both.simulated.earned_cents, both.changed) == (1700, 0)


def test_memos_that_start_again_when_full_change_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    shadow = replace(DISPOSABLE, shadow=True)
    records = [
        record(name, n, T + timedelta(days=n, hours=h), checks=(shadow,) if n % 2 else ())
        for h, name in enumerate(("ann", "ben", "cat"))
        for n in (1, 2, 3, 4)
    ]
    capped = replace(V1, checks=replace(V1.checks, disposable_email=CheckMode.HOLD))
    proposals = (None, capped, replace(capped, monthly_cap_cents=2500))
    expected = [run(records, proposal) for proposal in proposals]
    monkeypatch.setattr(simulation, "_MEMO", 1)
    assert [run(records, proposal) for proposal in proposals] == expected
