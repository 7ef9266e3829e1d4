"""RewardRepository.held_shares and services.sales.held_shares: the revenue shares a
dispute holds, the queue an admin reviews them from, on every store."""

from datetime import UTC, datetime

import pytest

from referrals.domain.errors import InvalidInput
from referrals.domain.model import ReferralStatus
from referrals.domain.program import RuleVersion
from referrals.domain.sales import SaleKind, ShareTier, ShareTiers
from referrals.domain.tiers import Tier, TierSchedule
from referrals.ports import Store
from referrals.services.programs import ensure_default_program
from referrals.services.referrers import enroll
from referrals.services.sales import SaleIn, held_shares, hold_sale, record_sale, review_share
from referrals.services.signups import sign_up
from tests.clocks import FixedClock

START = datetime(2026, 1, 10, tzinfo=UTC)
TEN_PERCENT = RuleVersion(
    tiers=TierSchedule((Tier(1, 500),)), share_tiers=ShareTiers((ShareTier(1, 1000),))
)


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(START)


@pytest.fixture
def sold(store: Store, clock: FixedClock) -> Store:
    """Four sales of bob's (referred by alice), each earning a share; carol's referral
    (alice's too) is held for review, which is a held reward but not a share."""
    ensure_default_program(store, clock, TEN_PERCENT)
    code = enroll(store, clock, "alice").referrer.code
    sign_up(store, clock, TEN_PERCENT, "bob", code)
    carol = sign_up(store, clock, TEN_PERCENT, "carol", code).referral
    with store.unit_of_work() as uow:
        uow.referrals.transition(carol.id, {ReferralStatus.PENDING}, ReferralStatus.HELD, "x")
        uow.commit()
    for n in range(1, 5):
        clock.advance(seconds=1)  # ids in the order of the sales
        sale = SaleIn(f"in_{n}", "bob", 1000 * n, "USD", START, SaleKind.PURCHASE)
        record_sale(store, clock, sale)
    return store


def test_only_the_shares_a_dispute_holds_are_listed_oldest_first(
    sold: Store, clock: FixedClock
) -> None:
    for sale in ("in_3", "in_1", "in_4"):
        hold_sale(sold, clock, sale, f"dispute of {sale}")
    page = held_shares(sold, 10, None)
    assert [(h.share.sale_id, h.share.cents, h.share.note) for h in page.items] == [
        ("in_1", 100, "dispute of in_1"),
        ("in_3", 300, "dispute of in_3"),
        ("in_4", 400, "dispute of in_4"),
    ]
    for held in page.items:
        assert held.share.user_id == "alice" and held.share.status is ReferralStatus.HELD
        assert not held.with_referral  # bob's referral stands: held by the dispute alone
    assert page.next_cursor is None


def test_the_queue_pages_by_cursor(sold: Store, clock: FixedClock) -> None:
    for sale in ("in_1", "in_2", "in_3"):
        hold_sale(sold, clock, sale, "dispute")
    first = held_shares(sold, 2, None)
    assert [h.share.sale_id for h in first.items] == ["in_1", "in_2"]
    second = held_shares(sold, 2, first.next_cursor)
    assert [h.share.sale_id for h in second.items] == ["in_3"] and second.next_cursor is None


def test_a_reviewed_share_leaves_the_queue(sold: Store, clock: FixedClock) -> None:
    hold_sale(sold, clock, "in_1", "dispute")
    hold_sale(sold, clock, "in_2", "dispute")
    review_share(sold, clock, "key-1", "in_1", True, "won")
    review_share(sold, clock, "key-1", "in_2", False, "lost")
    assert held_shares(sold, 10, None).items == []


def test_a_cursor_that_is_not_one_is_refused(sold: Store) -> None:
    with pytest.raises(InvalidInput):
        held_shares(sold, 10, "not a cursor!")


def test_a_share_of_a_held_referral_is_listed_as_held_with_it(
    sold: Store, clock: FixedClock
) -> None:
    # carol's referral is held: her sale's share is born held, decided with the referral.
    record_sale(sold, clock, SaleIn("in_9", "carol", 5000, "USD", START, SaleKind.PURCHASE))
    (held,) = held_shares(sold, 10, None).items
    assert (held.share.sale_id, held.share.cents, held.with_referral) == ("in_9", 500, True)
