from dataclasses import replace
from datetime import timedelta

import pytest

from referrals.adapters.memory import MemoryStore
from referrals.domain.errors import (
    InvalidInput,
    ProgramArchived,
    ProgramExists,
    ProgramNotFound,
    ProgramPaused,
)
from referrals.domain.program import BEGINNING, Program, ProgramStatus, RuleVersion
from referrals.domain.tiers import Tier, TierSchedule
from referrals.services import programs
from referrals.services.audit import audit_log
from referrals.services.programs import SCHEDULE_LEAD, RulesBook
from referrals.services.referrers import enroll
from referrals.services.signups import sign_up
from tests.clocks import FixedClock

SEED = RuleVersion(tiers=TierSchedule((Tier(1, 700),)))


def pays(cents: int) -> RuleVersion:
    return RuleVersion(tiers=TierSchedule((Tier(1, cents),)))


@pytest.fixture
def book(store: MemoryStore, clock: FixedClock) -> RulesBook:
    book = RulesBook(store, clock, SEED, ttl=timedelta(hours=1))  # forget() or a miss reads
    book.ensure_default()
    return book


def test_the_default_program_is_seeded_once_and_in_force_from_the_beginning(
    store: MemoryStore, clock: FixedClock, book: RulesBook
) -> None:
    programs.ensure_default_program(store, clock, pays(1))  # settings changed: no effect
    view = programs.get_program(store, "default")
    assert view.versions == (replace(SEED, effective_from=BEGINNING, created_at=clock.now()),)
    assert book.in_force("default", BEGINNING) == view.versions[0]


def test_a_scheduled_version_prices_from_its_start_on(
    store: MemoryStore, clock: FixedClock, book: RulesBook
) -> None:
    starts = clock.now() + timedelta(days=1)
    made = programs.schedule_rules(store, clock, "admin", "default", pays(900), starts)
    assert (made.version, made.effective_from, made.program_id) == (2, starts, "default")
    assert book.in_force("default", starts - timedelta(microseconds=1)).version == 1
    assert book.in_force("default", starts).version == 2
    assert [e.action for e in audit_log(store, 10, None).items] == ["program.rules"]


def test_a_version_is_scheduled_at_least_the_lead_ahead_by_default(
    store: MemoryStore, clock: FixedClock, book: RulesBook
) -> None:
    made = programs.schedule_rules(store, clock, "admin", "default", pays(900))
    assert made.effective_from == clock.now() + SCHEDULE_LEAD
    with pytest.raises(InvalidInput) as soon:
        programs.schedule_rules(
            store, clock, "admin", "default", pays(1), clock.now() + SCHEDULE_LEAD / 2
        )
    assert soon.value.field == "effective_from"


def test_a_book_cannot_miss_a_version_in_force_while_it_keeps_what_it_read(
    store: MemoryStore, clock: FixedClock
) -> None:
    # Read at the start of its life, the book is kept for BOOK_TTL; a version scheduled
    # meanwhile starts at least SCHEDULE_LEAD later, after the book has expired.
    book = RulesBook(store, clock, SEED)
    assert book.in_force("default", clock.now()).version == 1
    made = programs.schedule_rules(store, clock, "admin", "default", pays(900))
    kept_until = clock.now() + programs.BOOK_TTL
    assert made.effective_from > kept_until
    assert book.in_force("default", kept_until).version == 1  # right: v2 is not in force yet


def test_a_book_reads_again_once_told_to_forget(
    store: MemoryStore, clock: FixedClock, book: RulesBook
) -> None:
    assert book.view("default").program.status is ProgramStatus.ACTIVE
    programs.update_program(store, clock, "admin", "default", status=ProgramStatus.PAUSED)
    assert book.view("default").program.status is ProgramStatus.ACTIVE  # kept
    book.forget("default")
    with pytest.raises(ProgramPaused):
        book.for_signup("default", clock.now())


def test_the_default_program_is_made_the_first_time_a_book_needs_it(
    store: MemoryStore, clock: FixedClock
) -> None:
    book = RulesBook(store, clock, SEED, "https://example.com/?ref={code}")
    with store.read() as uow:
        assert uow.programs.get("default") is None  # a book reads nothing until asked
    assert book.for_signup("default", clock.now()).tiers == SEED.tiers
    assert book.view("default").program.share_url_template == "https://example.com/?ref={code}"


def test_a_missing_program_is_not_kept(
    store: MemoryStore, clock: FixedClock, book: RulesBook
) -> None:
    with pytest.raises(ProgramNotFound):
        book.view("partners")
    programs.create_program(store, clock, "admin", Program("partners", "Partners"), pays(100))
    assert book.view("partners").program.id == "partners"


def test_a_new_program_prices_from_its_creation_not_before(
    store: MemoryStore, clock: FixedClock, book: RulesBook
) -> None:
    view = programs.create_program(store, clock, "admin", Program("partners", "P"), pays(100))
    assert view.versions[0].effective_from == clock.now()
    with pytest.raises(InvalidInput):
        book.in_force("partners", clock.now() - timedelta(days=1))
    with pytest.raises(ProgramExists):
        programs.create_program(store, clock, "admin", Program("partners", "Q"), pays(1))


def test_an_archived_program_cannot_come_back(store: MemoryStore, clock: FixedClock) -> None:
    programs.create_program(store, clock, "admin", Program("partners", "P"), pays(100))
    programs.update_program(store, clock, "admin", "partners", status=ProgramStatus.ARCHIVED)
    with pytest.raises(ProgramArchived):
        programs.update_program(store, clock, "admin", "partners", status=ProgramStatus.ACTIVE)
    renamed = programs.update_program(store, clock, "admin", "partners", name="Old partners")
    assert (renamed.program.name, renamed.program.status) == (
        "Old partners",
        ProgramStatus.ARCHIVED,
    )


def test_a_reward_names_the_version_that_priced_it(
    store: MemoryStore, clock: FixedClock, book: RulesBook
) -> None:
    code = enroll(store, clock, "alice").referrer.code
    programs.schedule_rules(
        store, clock, "admin", "default", pays(900), clock.now() + SCHEDULE_LEAD
    )
    first = sign_up(store, clock, book.for_signup("default", clock.now()), "bob", code)
    clock.advance(seconds=SCHEDULE_LEAD.seconds)
    second = sign_up(store, clock, book.for_signup("default", clock.now()), "carol", code)
    assert (first.referral.reward_cents, second.referral.reward_cents) == (700, 900)
    receipts = [r.referral.receipt for r in (first, second)]
    assert [(r.program, r.rule_version) for r in receipts if r] == [("default", 1), ("default", 2)]
