"""Programs and rule versions: every store keeps them alike."""

from datetime import UTC, datetime, timedelta

import pytest

from referrals.domain.checks import CheckMode, FraudChecks
from referrals.domain.errors import Conflict
from referrals.domain.program import Program, ProgramStatus, RuleVersion, Trigger
from referrals.domain.tiers import Tier, TierSchedule
from referrals.ports import Store

T0 = datetime(2026, 3, 1, 12, 0, 0, 123456, tzinfo=UTC)
PARTNERS = Program(
    "partners",
    "Partner program",
    currency="EUR",
    share_url_template="https://example.com/join?ref={code}",
    created_at=T0,
)
RULES = RuleVersion(
    tiers=TierSchedule((Tier(1, 500), Tier(3, 900))),
    hold=timedelta(days=14),
    checks=FraudChecks(
        email_alias=CheckMode.SHADOW, same_device=CheckMode.OFF, velocity_per_hour=5
    ),
    referee_reward_cents=250,
    minimum_payout_cents=2000,
    trigger=Trigger.CONVERSION,
    conversion_event="subscribe",
    conversion_min_cents=999,
    conversion_window_days=30,
    monthly_cap_cents=10_000,
    lifetime_cap_cents=50_000,
    auto_enroll_referees=False,
    program_id="partners",
    version=1,
    effective_from=T0,
    created_at=T0,
)


def add(store: Store, program: Program = PARTNERS, first: RuleVersion = RULES) -> None:
    with store.unit_of_work() as uow:
        uow.programs.add(program, first)
        uow.commit()


def test_a_program_and_its_first_version_read_back_as_written(store: Store) -> None:
    add(store)
    with store.read() as uow:
        assert uow.programs.get("partners") == PARTNERS
        assert uow.programs.versions("partners") == [RULES]
        assert uow.programs.get("nobody") is None
        assert uow.programs.versions("nobody") == []


def test_a_taken_program_id_conflicts_and_keeps_the_first(store: Store) -> None:
    add(store)
    with pytest.raises(Conflict), store.unit_of_work() as uow:
        uow.programs.add(
            Program("partners", "Other", created_at=T0), RuleVersion(program_id="partners")
        )
        uow.commit()
    with store.read() as uow:
        assert uow.programs.get("partners") == PARTNERS


def test_programs_are_listed_by_id(store: Store) -> None:
    for program_id in ("zeta", "alpha", "mid"):
        add(
            store,
            Program(program_id, program_id.title(), created_at=T0),
            RuleVersion(program_id=program_id, effective_from=T0),
        )
    with store.read() as uow:
        assert [p.id for p in uow.programs.list()] == ["alpha", "mid", "zeta"]


def test_an_update_changes_name_status_and_share_url_only(store: Store) -> None:
    add(store)
    changed = Program(
        "partners",
        "Partners (paused)",
        currency="JPY",  # ignored: a program's currency never changes
        status=ProgramStatus.PAUSED,
        share_url_template=None,
        created_at=T0 + timedelta(days=1),  # ignored too
    )
    with store.unit_of_work() as uow:
        uow.programs.update(changed, ProgramStatus.ACTIVE)
        uow.commit()
    with store.read() as uow:
        assert uow.programs.get("partners") == Program(
            "partners", "Partners (paused)", "EUR", ProgramStatus.PAUSED, None, T0
        )


def test_versions_come_back_in_number_order(store: Store) -> None:
    add(store)
    later = [
        RuleVersion(
            tiers=TierSchedule((Tier(1, 100 * n),)),
            program_id="partners",
            version=n,
            effective_from=T0 + timedelta(days=n),
            created_at=T0 + timedelta(hours=n),
        )
        for n in (3, 2)
    ]
    for version in later:
        with store.unit_of_work() as uow:
            uow.programs.add_version(version)
            uow.commit()
    with store.read() as uow:
        versions = uow.programs.versions("partners")
    assert [v.version for v in versions] == [1, 2, 3]
    assert versions[1:] == [later[1], later[0]]


def test_a_taken_version_number_conflicts(store: Store) -> None:
    add(store)
    second = RuleVersion(program_id="partners", version=2, effective_from=T0 + timedelta(days=1))
    with store.unit_of_work() as uow:
        uow.programs.add_version(second)
        uow.commit()
    rival = RuleVersion(
        tiers=TierSchedule((Tier(1, 1),)),
        program_id="partners",
        version=2,
        effective_from=T0 + timedelta(days=2),
    )
    with pytest.raises(Conflict), store.unit_of_work() as uow:
        uow.programs.add_version(rival)
        uow.commit()
    with store.read() as uow:
        assert uow.programs.versions("partners")[1] == second


def test_nothing_is_kept_without_a_commit(store: Store) -> None:
    with store.unit_of_work() as uow:
        uow.programs.add(PARTNERS, RULES)
    with store.read() as uow:
        assert uow.programs.get("partners") is None
        assert uow.programs.versions("partners") == []


def test_an_update_holds_only_over_the_status_it_read(store: Store) -> None:
    # A pause and an archive read "active" at once; the first to write wins, and the
    # other, still expecting "active", conflicts: "archived" cannot be undone by a race.
    add(store)
    archived = Program("partners", "Partners", status=ProgramStatus.ARCHIVED, created_at=T0)
    with store.unit_of_work() as uow:
        uow.programs.update(archived, ProgramStatus.ACTIVE)
        uow.commit()
    with pytest.raises(Conflict), store.unit_of_work() as uow:
        resumed = Program("partners", "Partners", status=ProgramStatus.PAUSED, created_at=T0)
        uow.programs.update(resumed, ProgramStatus.ACTIVE)
        uow.commit()
    with pytest.raises(Conflict), store.unit_of_work() as uow:
        uow.programs.update(Program("ghost", "Ghost", created_at=T0), ProgramStatus.ACTIVE)
        uow.commit()
    with store.read() as uow:
        kept = uow.programs.get("partners")
        assert kept is not None and kept.status is ProgramStatus.ARCHIVED
        assert uow.programs.get("ghost") is None
