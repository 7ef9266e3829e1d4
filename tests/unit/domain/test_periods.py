from datetime import UTC, datetime

import pytest

from referrals.domain.errors import InvalidInput
from referrals.domain.periods import Period, last_ended_period


def test_cutoff_is_the_first_instant_of_the_next_month() -> None:
    assert Period.parse("2026-01").cutoff == datetime(2026, 2, 1, tzinfo=UTC)
    assert Period.parse("2026-12").cutoff == datetime(2027, 1, 1, tzinfo=UTC)


def test_last_millisecond_of_the_month_is_inside_and_midnight_is_not() -> None:
    period = Period.parse("2026-02")
    last = datetime(2026, 2, 28, 23, 59, 59, 999_000, tzinfo=UTC)
    assert last < period.cutoff
    assert not datetime(2026, 3, 1, tzinfo=UTC) < period.cutoff
    assert Period.containing(last) == period


def test_next_and_previous_cross_years() -> None:
    assert Period(2026, 12).next() == Period(2027, 1)
    assert Period(2026, 1).previous() == Period(2025, 12)


def test_the_schedule_pays_the_month_just_ended() -> None:
    assert last_ended_period(datetime(2026, 3, 1, 0, 0, tzinfo=UTC)) == Period(2026, 2)
    assert last_ended_period(datetime(2026, 1, 15, tzinfo=UTC)) == Period(2025, 12)


def test_a_period_ends_at_its_cutoff() -> None:
    period = Period(2026, 2)
    assert not period.has_ended(datetime(2026, 2, 28, 23, 59, 59, tzinfo=UTC))
    assert period.has_ended(datetime(2026, 3, 1, tzinfo=UTC))


@pytest.mark.parametrize(
    "text", ["2026-13", "2026-00", "2026-1", "26-01", "2026/01", "", "1969-12", "9999-12"]
)
def test_bad_periods_refused(text: str) -> None:
    with pytest.raises(InvalidInput):
        Period.parse(text)


def test_str_round_trips() -> None:
    assert str(Period.parse("2026-07")) == "2026-07"


@pytest.mark.parametrize(
    "text",
    [
        "\u0662\u0660\u0662\u0666-11",
        "\uff12\uff10\uff12\uff16-11",
        "2026-\u0661\u0661",
        "\u0967\u096f\u096d\u0966-01",
    ],
)
def test_digits_of_other_scripts_are_refused(text: str) -> None:
    """int() reads any script's digits; a period is written in ASCII digits only."""
    with pytest.raises(InvalidInput):
        Period.parse(text)


@pytest.mark.parametrize(
    ("text", "ok"), [("1969-12", False), ("1970-01", True), ("9998-12", True), ("9999-01", False)]
)
def test_years_run_from_1970_to_9998(text: str, ok: bool) -> None:
    if ok:
        assert str(Period.parse(text)) == text
    else:
        with pytest.raises(InvalidInput):
            Period.parse(text)
