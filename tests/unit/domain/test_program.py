from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from referrals.domain.checks import CheckMode, FraudChecks
from referrals.domain.errors import InvalidInput
from referrals.domain.model import Referrer
from referrals.domain.program import Program, RuleVersion, Trigger, in_force, next_version
from referrals.domain.tiers import Tier, TierSchedule

ALICE = Referrer("alice", "A1", None, 0, datetime(2026, 1, 1, tzinfo=UTC))


def test_no_caps_pay_the_tier() -> None:
    assert RuleVersion().capped(2500, ALICE.counting("2026-03", 10**9), "2026-03") == (2500, None)


@pytest.mark.parametrize(
    ("earned", "expected"),
    [(0, (1000, None)), (2000, (1000, None)), (2500, (500, "monthly")), (4000, (0, "monthly"))],
)
def test_the_monthly_cap_cuts_what_exceeds_it(earned: int, expected: tuple[int, str]) -> None:
    program = RuleVersion(monthly_cap_cents=3000)
    assert program.capped(1000, ALICE.counting("2026-03", earned), "2026-03") == expected


def test_the_monthly_cap_counts_only_its_month() -> None:
    program = RuleVersion(monthly_cap_cents=3000)
    full_march = ALICE.counting("2026-03", 3000)
    assert program.capped(1000, full_march, "2026-04") == (1000, None)
    # A month before the counter's (an import): the monthly cap cannot be checked.
    assert program.capped(1000, ALICE.counting("2026-05", 3000), "2026-03") == (1000, None)


def test_the_lifetime_cap_binds_across_months() -> None:
    program = RuleVersion(monthly_cap_cents=3000, lifetime_cap_cents=5000)
    alice = ALICE.counting("2026-01", 3000).counting("2026-02", 1500)
    assert program.capped(1000, alice, "2026-03") == (500, "lifetime")
    assert program.capped(1000, alice.counting("2026-03", 500), "2026-03") == (0, "lifetime")


def test_the_tighter_cap_is_named() -> None:
    program = RuleVersion(monthly_cap_cents=1200, lifetime_cap_cents=10_000)
    assert program.capped(1000, ALICE.counting("2026-03", 1000), "2026-03") == (200, "monthly")


T0 = datetime(2026, 5, 1, tzinfo=UTC)


def chain(*starts: datetime) -> list[RuleVersion]:
    return [RuleVersion(version=n, effective_from=at) for n, at in enumerate(starts, 1)]


def test_the_version_in_force_is_the_last_one_started() -> None:
    versions = chain(T0, T0 + timedelta(days=10), T0 + timedelta(days=20))
    assert in_force(versions, T0 - timedelta(microseconds=1)) is None
    assert in_force(versions, T0) == versions[0]
    assert in_force(versions, T0 + timedelta(days=10)) == versions[1]
    assert in_force(versions, T0 + timedelta(days=19, hours=23)) == versions[1]
    assert in_force(versions, T0 + timedelta(days=400)) == versions[2]


def test_a_next_version_is_numbered_after_the_last_and_starts_after_it() -> None:
    versions = chain(T0, T0 + timedelta(days=10))
    now = T0 + timedelta(days=5)
    proposed = RuleVersion(effective_from=T0 + timedelta(days=11), version=99)
    made = next_version(versions, proposed, now)
    assert (made.version, made.created_at) == (3, now)
    with pytest.raises(InvalidInput) as before_last:
        next_version(versions, RuleVersion(effective_from=T0 + timedelta(days=9)), now)
    assert before_last.value.field == "effective_from"
    with pytest.raises(InvalidInput):
        next_version(versions, RuleVersion(effective_from=now - timedelta(seconds=1)), now)


def test_rules_read_back_from_their_dict_whatever_they_hold() -> None:
    rules = RuleVersion(
        tiers=TierSchedule((Tier(1, 100), Tier(4, 700))),
        hold=timedelta(days=9),
        checks=FraudChecks(CheckMode.SHADOW, CheckMode.OFF, CheckMode.HOLD, CheckMode.SHADOW, 12),
        referee_reward_cents=300,
        minimum_payout_cents=5000,
        trigger=Trigger.CONVERSION,
        conversion_event="subscribe",
        conversion_min_cents=1200,
        conversion_window_days=30,
        monthly_cap_cents=9000,
        lifetime_cap_cents=90000,
        auto_enroll_referees=False,
    )
    identity = {"program_id": "p", "version": 4, "effective_from": T0, "created_at": T0}
    assert RuleVersion.from_dict(rules.to_dict(), **identity) == replace(rules, **identity)


def test_a_conversion_after_the_window_earns_nothing() -> None:
    rules = RuleVersion(trigger=Trigger.CONVERSION, conversion_window_days=30)
    assert rules.qualifies("purchase", 0, T0, T0 + timedelta(days=30))
    assert not rules.qualifies("purchase", 0, T0, T0 + timedelta(days=30, seconds=1))
    assert RuleVersion(trigger=Trigger.CONVERSION).qualifies(
        "purchase", 0, T0, T0 + timedelta(days=900)
    )


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"id": "-bad"}, "id"),
        ({"id": "x" * 65}, "id"),
        ({"name": ""}, "name"),
        ({"currency": "XXX"}, "currency"),
        ({"share_url_template": "ftp://example.com/{code}"}, "share_url_template"),
        ({"share_url_template": "https://example.com/"}, "share_url_template"),
    ],
)
def test_a_program_names_the_field_it_refuses(fields: dict[str, str], field: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        Program(**{"id": "ok", "name": "OK", **fields})  # type: ignore[arg-type]
    assert refused.value.field == field


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"referee_reward_cents": -1}, "referee_reward_cents"),
        ({"monthly_cap_cents": -5}, "monthly_cap_cents"),
        ({"hold": timedelta(days=-1)}, "hold_days"),
        ({"version": 0}, "version"),
    ],
)
def test_a_rule_version_names_the_field_it_refuses(fields: dict[str, object], field: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        RuleVersion(**fields)  # type: ignore[arg-type]
    assert refused.value.field == field
