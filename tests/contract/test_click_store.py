"""Clicks on tracked links, the programs' attribution settings and the click a referral
came from: every store keeps them alike."""

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

import pytest

from referrals.domain.clicks import Click, ClickCount, new_click_id
from referrals.domain.errors import Conflict
from referrals.domain.program import Attribution, Program, ProgramStatus, RuleVersion
from referrals.ports import Store
from referrals.services.programs import ensure_default_program
from referrals.services.referrers import enroll
from referrals.services.signups import sign_up
from tests.clocks import FixedClock

T0 = datetime(2026, 3, 1, 23, 59, 59, 999_999, tzinfo=UTC)  # a microsecond before a day ends
FULL = Click(
    id=new_click_id(),
    program_id="partners",
    code="Alice-1",
    referrer_id="alice",
    at=T0,
    ip_hash="k1:" + "a" * 32,
    ua_hash="k1:" + "b" * 32,
    referring_site="news.example.com",
    utm_source="newsletter",
    utm_medium="email",
    utm_campaign="spring",
    utm_term="referral program",
    utm_content="footer",
)


def click(referrer_id: str, at: datetime, program_id: str = "partners") -> Click:
    return Click(new_click_id(), program_id, referrer_id.upper(), referrer_id, at)


def add(store: Store, *clicks: Click) -> None:
    with store.unit_of_work() as uow:
        for c in clicks:
            uow.clicks.add(c)
        uow.commit()


def tally(store: Store, since: datetime, until: datetime, program_id: str = "partners") -> list:
    with store.read() as uow:
        return list(uow.clicks.tally(program_id, since, until))


def test_a_click_reads_back_as_written(store: Store) -> None:
    add(store, FULL)
    with store.read() as uow:
        assert uow.clicks.get(FULL.id) == FULL
        assert uow.clicks.get(new_click_id()) is None


def test_a_click_without_its_optional_parts_reads_them_back_as_none(store: Store) -> None:
    bare = click("bob", T0)
    add(store, bare)
    with store.read() as uow:
        assert uow.clicks.get(bare.id) == bare


def test_a_click_not_committed_leaves_nothing(store: Store) -> None:
    with store.unit_of_work() as uow:
        uow.clicks.add(FULL)
    with store.read() as uow:
        assert uow.clicks.get(FULL.id) is None


def test_a_click_id_is_written_once(store: Store) -> None:
    add(store, FULL)
    with pytest.raises(Conflict), store.unit_of_work() as uow:
        uow.clicks.add(replace(FULL, referrer_id="mallory"))
        uow.commit()
    with store.read() as uow:
        assert uow.clicks.get(FULL.id) == FULL


def test_the_tally_counts_per_utc_day_and_referrer_in_the_window(store: Store) -> None:
    since = T0 - timedelta(days=1)
    until = T0 + timedelta(days=2)
    add(
        store,
        click("bob", since),  # the first instant is in
        click("bob", T0),
        click("alice", T0),
        click("alice", T0 - timedelta(hours=1)),
        click("alice", T0 + timedelta(microseconds=1)),  # the next UTC day
        click("carol", until - timedelta(microseconds=1)),
        click("carol", until),  # the end is out
        click("alice", since - timedelta(microseconds=1)),  # before the window
        click("alice", T0, program_id="other"),  # another program's
    )
    assert tally(store, since, until) == [
        ClickCount(date(2026, 2, 28), "bob", 1),
        ClickCount(date(2026, 3, 1), "alice", 2),
        ClickCount(date(2026, 3, 1), "bob", 1),
        ClickCount(date(2026, 3, 2), "alice", 1),
        ClickCount(date(2026, 3, 3), "carol", 1),
    ]
    assert tally(store, since, until, "other") == [ClickCount(date(2026, 3, 1), "alice", 1)]


def test_a_referrers_count_is_theirs_in_the_program_and_the_window(store: Store) -> None:
    add(
        store,
        click("alice", T0),
        click("alice", T0 + timedelta(microseconds=1)),
        click("alice", T0 + timedelta(days=1)),
        click("alice", T0, program_id="default"),
        click("bob", T0),
    )
    with store.read() as uow:
        count = uow.clicks.count
        assert count("partners", "alice", T0, T0 + timedelta(days=1)) == 2
        assert (
            count("partners", "alice", T0 + timedelta(microseconds=1), T0 + timedelta(days=2)) == 2
        )
        assert count("default", "alice", T0 - timedelta(days=1), T0 + timedelta(days=1)) == 1
        assert count("partners", "carol", T0, T0 + timedelta(days=1)) == 0


def test_an_empty_or_clickless_window_tallies_nothing(store: Store) -> None:
    add(store, click("bob", T0))
    assert tally(store, T0, T0) == []
    assert tally(store, T0 + timedelta(days=3), T0 + timedelta(days=40)) == []
    assert tally(store, T0, T0 + timedelta(days=1), "nobody") == []


# -- the programs' attribution settings -------------------------------------------------

PARTNERS = Program("partners", "Partners", created_at=T0)
FIRST = RuleVersion(program_id="partners", effective_from=T0, created_at=T0)


def test_a_program_keeps_its_landing_url_and_attribution_settings(store: Store) -> None:
    program = replace(
        PARTNERS,
        landing_url="https://example.com/welcome?lang=en",
        attribution_window_days=7,
        attribution=Attribution.LAST,
    )
    with store.unit_of_work() as uow:
        uow.programs.add(program, FIRST)
        uow.commit()
    with store.read() as uow:
        assert uow.programs.get("partners") == program
        assert uow.programs.list() == [program]


def test_a_program_without_them_reads_back_the_defaults(store: Store) -> None:
    with store.unit_of_work() as uow:
        uow.programs.add(PARTNERS, FIRST)
        uow.commit()
    with store.read() as uow:
        found = uow.programs.get("partners")
    assert found is not None
    assert (found.landing_url, found.attribution_window_days, found.attribution) == (
        None,
        30,
        Attribution.FIRST,
    )


def test_an_update_changes_the_attribution_settings_and_removes_the_landing_url(
    store: Store,
) -> None:
    with store.unit_of_work() as uow:
        uow.programs.add(replace(PARTNERS, landing_url="https://example.com/"), FIRST)
        uow.commit()
    changed = replace(
        PARTNERS,
        landing_url=None,
        attribution_window_days=365,
        attribution=Attribution.LAST,
        status=ProgramStatus.PAUSED,
    )
    with store.unit_of_work() as uow:
        uow.programs.update(changed, ProgramStatus.ACTIVE)
        uow.commit()
    with store.read() as uow:
        assert uow.programs.get("partners") == changed


# -- the click a referral came from -----------------------------------------------------


def test_a_referral_keeps_the_click_it_came_from(store: Store) -> None:
    clock = FixedClock(T0)
    rules = RuleVersion()
    ensure_default_program(store, clock, rules)  # its attribution window: 30 days
    enroll(store, clock, "alice", code="ALICE")
    came_from = Click(new_click_id(), "default", "ALICE", "alice", T0 - timedelta(days=1))
    add(store, came_from)
    result = sign_up(store, clock, rules, "bob", None, click_id=came_from.id)
    plain = sign_up(store, clock, rules, "carol", "alice")
    with store.read() as uow:
        kept = uow.referrals.by_referee("bob")
        assert kept is not None and kept == result.referral
        assert kept.click_id == came_from.id and kept.code == "ALICE"
        without = uow.referrals.by_referee("carol")
        assert without is not None and without == plain.referral and without.click_id is None
