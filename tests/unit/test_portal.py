from datetime import UTC, datetime

import pytest

from referrals.adapters.memory import MemoryStore
from referrals.domain import links
from referrals.domain.errors import InvalidInput, NotFound
from referrals.domain.links import InvalidLink, LinkClaims
from referrals.domain.program import Program
from referrals.services import portal
from referrals.services.referrers import enroll
from referrals.services.signups import sign_up
from tests.clocks import FixedClock

KEY = b"k" * 32
DAY = 24 * 3600


@pytest.fixture
def code(store: MemoryStore, clock: FixedClock, program: Program) -> str:
    code = enroll(store, clock, "alice").referrer.code
    for i in range(3):
        sign_up(store, clock, program, f"user-{i}", code)
    return code


def issue(store: MemoryStore, clock: FixedClock, ttl: int = DAY) -> portal.PortalLink:
    return portal.issue_link(store, clock, KEY, "alice", ttl, 7 * DAY)


def test_an_issued_link_opens_the_referrers_page(
    store: MemoryStore, clock: FixedClock, program: Program, code: str
) -> None:
    link = issue(store, clock)
    view = portal.open_portal(store, clock, program, KEY, code, link.token)
    assert view.stats.referrer.user_id == "alice"
    assert view.stats.referrer.referral_count == 3
    assert view.stats.earnings.payable_cents == 3 * 1000
    assert view.expires_at == link.expires_at


def test_the_link_expires_after_its_ttl_in_whole_seconds(
    store: MemoryStore, clock: FixedClock, code: str
) -> None:
    clock.moment = datetime(2026, 3, 14, 12, 0, 0, 700_000, tzinfo=UTC)
    link = issue(store, clock, ttl=120)
    assert link.expires_at == datetime(2026, 3, 14, 12, 2, tzinfo=UTC)
    assert link.code == code


def test_the_link_is_refused_once_expired(
    store: MemoryStore, clock: FixedClock, program: Program, code: str
) -> None:
    link = issue(store, clock, ttl=60)
    clock.advance(seconds=60)
    with pytest.raises(InvalidLink):
        portal.open_portal(store, clock, program, KEY, code, link.token)


def test_the_code_in_the_path_matches_in_any_case(
    store: MemoryStore, clock: FixedClock, program: Program, code: str
) -> None:
    view = portal.open_portal(store, clock, program, KEY, code.lower(), issue(store, clock).token)
    assert view.stats.referrer.user_id == "alice"


@pytest.mark.parametrize("ttl", [0, 59, 7 * DAY + 1, -1])
def test_a_ttl_out_of_bounds_is_invalid(store: MemoryStore, clock: FixedClock, ttl: int) -> None:
    enroll(store, clock, "alice")
    with pytest.raises(InvalidInput):
        issue(store, clock, ttl)


def test_no_link_for_an_unknown_referrer(store: MemoryStore, clock: FixedClock) -> None:
    with pytest.raises(NotFound):
        issue(store, clock)


def test_the_most_recent_referrals_come_first_and_are_bounded(
    store: MemoryStore, clock: FixedClock, program: Program, code: str
) -> None:
    extra = portal.RECENT_REFERRALS + 2
    for i in range(extra):
        sign_up(store, clock, program, f"more-{i}", code)
    view = portal.open_portal(store, clock, program, KEY, code, issue(store, clock).token)
    ordinals = [r.ordinal for r in view.recent]
    total = 3 + extra
    assert ordinals == list(range(total, total - portal.RECENT_REFERRALS, -1))


@pytest.mark.parametrize("path_code", ["NOSUCHCODE", "x", "<script>", "a/b", "", "A" * 33])
def test_a_code_no_referrer_has_is_not_found(
    store: MemoryStore, clock: FixedClock, program: Program, code: str, path_code: str
) -> None:
    with pytest.raises(NotFound):
        portal.open_portal(store, clock, program, KEY, path_code, issue(store, clock).token)


def test_a_missing_token_is_refused(
    store: MemoryStore, clock: FixedClock, program: Program, code: str
) -> None:
    with pytest.raises(InvalidLink):
        portal.open_portal(store, clock, program, KEY, code, None)


def test_a_link_for_another_code_is_refused(
    store: MemoryStore, clock: FixedClock, program: Program, code: str
) -> None:
    bob_code = enroll(store, clock, "bob").referrer.code
    with pytest.raises(InvalidLink):
        portal.open_portal(store, clock, program, KEY, bob_code, issue(store, clock).token)


def test_a_link_naming_the_code_but_another_user_is_refused(
    store: MemoryStore, clock: FixedClock, program: Program, code: str
) -> None:
    enroll(store, clock, "bob")
    expires = int(clock.now().timestamp()) + 60
    token = links.sign(KEY, LinkClaims("bob", code, expires))
    with pytest.raises(InvalidLink):
        portal.open_portal(store, clock, program, KEY, code, token)


def test_a_link_signed_with_another_key_is_refused(
    store: MemoryStore, clock: FixedClock, program: Program, code: str
) -> None:
    link = portal.issue_link(store, clock, b"other" * 8, "alice", DAY, DAY)
    with pytest.raises(InvalidLink):
        portal.open_portal(store, clock, program, KEY, code, link.token)
