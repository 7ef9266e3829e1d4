"""The referrer portal's use cases: the claims of a link, and the page they open. The
token carrying the claims is the web layer's (tests/unit/web/test_tokens.py)."""

from dataclasses import replace
from datetime import UTC, datetime

import pytest

from referrals.adapters.memory import MemoryStore
from referrals.domain.errors import InvalidInput, NotFound
from referrals.domain.links import InvalidLink, LinkClaims
from referrals.domain.program import RuleVersion
from referrals.services import portal_views
from referrals.services.referrers import enroll
from referrals.services.signups import sign_up
from tests.clocks import FixedClock

DAY = 24 * 3600


@pytest.fixture
def code(store: MemoryStore, clock: FixedClock, program: RuleVersion) -> str:
    code = enroll(store, clock, "alice").referrer.code
    for i in range(3):
        sign_up(store, clock, program, f"user-{i}", code)
    return code


def claims(store: MemoryStore, clock: FixedClock, ttl: int = DAY) -> LinkClaims:
    return portal_views.link_claims(store, clock, "alice", ttl, 7 * DAY)


def test_a_links_claims_open_the_referrers_page(
    store: MemoryStore, clock: FixedClock, program: RuleVersion, code: str
) -> None:
    link = claims(store, clock)
    assert (link.user_id, link.code) == ("alice", code)
    view = portal_views.open_portal(store, clock, lambda _: program, code, link)
    assert view.stats.referrer.user_id == "alice"
    assert view.stats.referrer.referral_count == 3
    assert view.stats.earnings.payable_cents == 3 * 1000
    assert view.expires_at == datetime.fromtimestamp(link.expires_at, UTC)


def test_the_link_expires_after_its_ttl_in_whole_seconds(
    store: MemoryStore, clock: FixedClock, code: str
) -> None:
    clock.moment = datetime(2026, 3, 14, 12, 0, 0, 700_000, tzinfo=UTC)
    link = claims(store, clock, ttl=120)
    assert link.expires_at == int(datetime(2026, 3, 14, 12, 2, tzinfo=UTC).timestamp())
    assert link.code == code


def test_the_code_in_the_path_matches_in_any_case(
    store: MemoryStore, clock: FixedClock, program: RuleVersion, code: str
) -> None:
    view = portal_views.open_portal(
        store, clock, lambda _: program, code.lower(), claims(store, clock)
    )
    assert view.stats.referrer.user_id == "alice"


@pytest.mark.parametrize("ttl", [0, 59, 7 * DAY + 1, -1])
def test_a_ttl_out_of_bounds_is_invalid(store: MemoryStore, clock: FixedClock, ttl: int) -> None:
    enroll(store, clock, "alice")
    with pytest.raises(InvalidInput):
        claims(store, clock, ttl)


def test_no_link_for_an_unknown_referrer(store: MemoryStore, clock: FixedClock) -> None:
    with pytest.raises(NotFound):
        claims(store, clock)


def test_the_most_recent_referrals_come_first_and_are_bounded(
    store: MemoryStore, clock: FixedClock, program: RuleVersion, code: str
) -> None:
    extra = portal_views.RECENT_REFERRALS + 2
    for i in range(extra):
        sign_up(store, clock, program, f"more-{i}", code)
    view = portal_views.open_portal(store, clock, lambda _: program, code, claims(store, clock))
    ordinals = [r.ordinal for r in view.recent]
    total = 3 + extra
    assert ordinals == list(range(total, total - portal_views.RECENT_REFERRALS, -1))


@pytest.mark.parametrize("path_code", ["NOSUCHCODE", "x", "<script>", "a/b", "", "A" * 33])
def test_a_code_no_referrer_has_is_not_found(
    store: MemoryStore, clock: FixedClock, program: RuleVersion, code: str, path_code: str
) -> None:
    with pytest.raises(NotFound):
        portal_views.open_portal(store, clock, lambda _: program, path_code, claims(store, clock))


def test_a_code_no_referrer_has_is_not_found_without_a_link_too(
    store: MemoryStore, clock: FixedClock, program: RuleVersion, code: str
) -> None:
    with pytest.raises(NotFound):
        portal_views.open_portal(store, clock, lambda _: program, "NOSUCHCODE", None)


def test_no_valid_link_is_refused(
    store: MemoryStore, clock: FixedClock, program: RuleVersion, code: str
) -> None:
    with pytest.raises(InvalidLink):
        portal_views.open_portal(store, clock, lambda _: program, code, None)


def test_a_link_for_another_code_is_refused(
    store: MemoryStore, clock: FixedClock, program: RuleVersion, code: str
) -> None:
    bob_code = enroll(store, clock, "bob").referrer.code
    with pytest.raises(InvalidLink):
        portal_views.open_portal(store, clock, lambda _: program, bob_code, claims(store, clock))


def test_a_link_naming_the_code_but_another_user_is_refused(
    store: MemoryStore, clock: FixedClock, program: RuleVersion, code: str
) -> None:
    enroll(store, clock, "bob")
    forged = replace(claims(store, clock), user_id="bob")
    with pytest.raises(InvalidLink):
        portal_views.open_portal(store, clock, lambda _: program, code, forged)
