from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st

from referrals.domain.codes import CROCKFORD_ALPHABET
from referrals.domain.model import Earnings, Referrer, first_id_at, new_id, ulid


def test_ids_are_26_crockford_characters_and_unique() -> None:
    ids = [new_id(datetime.now(UTC)) for _ in range(1000)]
    assert len(set(ids)) == 1000
    assert all(len(i) == 26 and set(i) <= set(CROCKFORD_ALPHABET) for i in ids)


def test_ids_sort_by_the_millisecond_they_are_minted_at() -> None:
    moment = datetime(2026, 12, 5, 12, 0, 0, 1000, tzinfo=UTC)
    later = datetime(2026, 12, 5, 12, 0, 0, 2000, tzinfo=UTC)
    first = new_id(moment)
    assert first.startswith(first_id_at(moment)[:10])
    assert new_id(later) > first


@given(st.integers(min_value=0, max_value=2**128 - 1))
def test_a_ulid_is_the_value_in_26_base_32_digits(value: int) -> None:
    digits = [(value >> (5 * place)) % 32 for place in reversed(range(26))]
    assert ulid(value) == "".join(CROCKFORD_ALPHABET[d] for d in digits)


def test_the_first_id_of_a_moment_is_its_milliseconds_then_zeros() -> None:
    moment = datetime(2026, 12, 5, 12, 0, 0, 1000, tzinfo=UTC)
    millis = int(moment.timestamp() * 1000)
    assert first_id_at(moment) == ulid(millis << 80)
    assert first_id_at(moment).endswith("0" * 16)


def test_earned_is_pending_plus_paid() -> None:
    assert Earnings(pending_cents=1500, paid_cents=1000).earned_cents == 2500


def _alice() -> Referrer:
    return Referrer("alice", "A1", None, 0, datetime(2026, 1, 1, tzinfo=UTC))


def test_counting_adds_to_the_lifetime_and_the_month() -> None:
    alice = _alice().counting("2026-03", 1000).counting("2026-03", 500)
    assert alice.cap_counters == (1500, "2026-03", 1500)


def test_a_later_month_restarts_the_month_counter() -> None:
    alice = _alice().counting("2026-03", 1000).counting("2026-04", 700)
    assert alice.cap_counters == (1700, "2026-04", 700)


def test_an_earlier_month_counts_in_the_lifetime_only() -> None:
    alice = _alice().counting("2026-04", 700).counting("2026-03", 1000)
    assert alice.cap_counters == (1700, "2026-04", 700)
    assert alice.earned_in("2026-03") is None  # not tracked: the counter keeps one month
    assert alice.earned_in("2026-05") == 0


def test_giving_back_never_goes_below_zero_nor_moves_the_month() -> None:
    alice = _alice().counting("2026-04", 700)
    assert alice.counting("2026-04", -700).cap_counters == (0, "2026-04", 0)
    assert alice.counting("2026-03", -500).cap_counters == (200, "2026-04", 700)
    # A reward earned before the counters existed is given back from nothing.
    assert _alice().counting("2026-04", -900).cap_counters == (0, None, 0)
