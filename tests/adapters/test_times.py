from datetime import UTC, datetime, timedelta, timezone

from hypothesis import given
from hypothesis import strategies as st

from referrals.adapters.times import from_micros, to_micros


@given(st.datetimes(timezones=st.just(UTC)))
def test_a_time_survives_storage_to_the_microsecond(moment: datetime) -> None:
    assert from_micros(to_micros(moment)) == moment
    assert from_micros(to_micros(moment)).tzinfo is UTC


def test_stored_times_count_microseconds_from_the_epoch_either_side_of_it() -> None:
    assert from_micros(0) == datetime(1970, 1, 1, tzinfo=UTC)
    assert from_micros(-1) == datetime(1969, 12, 31, 23, 59, 59, 999_999, tzinfo=UTC)
    assert from_micros(1_764_915_000_123_456) == datetime(
        2025, 12, 5, 6, 10, 0, 123_456, tzinfo=UTC
    )


def test_a_time_in_another_zone_is_stored_as_its_instant() -> None:
    paris = datetime(2026, 7, 1, 2, 0, tzinfo=timezone(timedelta(hours=2)))
    assert from_micros(to_micros(paris)) == datetime(2026, 7, 1, 0, 0, tzinfo=UTC)
