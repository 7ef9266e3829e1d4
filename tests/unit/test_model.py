import time

from referrals.domain.codes import CROCKFORD_ALPHABET
from referrals.domain.model import Earnings, new_id


def test_ids_are_26_crockford_characters_and_unique() -> None:
    ids = [new_id() for _ in range(1000)]
    assert len(set(ids)) == 1000
    assert all(len(i) == 26 and set(i) <= set(CROCKFORD_ALPHABET) for i in ids)


def test_ids_sort_by_creation_millisecond() -> None:
    first = new_id()
    time.sleep(0.002)
    assert new_id() > first


def test_earned_is_pending_plus_paid() -> None:
    assert Earnings(pending_cents=1500, paid_cents=1000).earned_cents == 2500
