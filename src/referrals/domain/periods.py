"""Payout periods: calendar months in UTC, named YYYY-MM."""

import re
from dataclasses import dataclass
from datetime import UTC, datetime

from referrals.domain.errors import InvalidInput

# YYYY-MM from 1970-01 to 9998-12 (9999-12 would end in year 10000, past what a
# datetime holds), in ASCII digits: `\d` would take any script's digits, which int()
# reads too. The API's schemas use the same pattern, so OpenAPI says what is accepted.
PERIOD_REGEX = r"(19[7-9][0-9]|[2-8][0-9]{3}|9[0-8][0-9]{2}|99[0-8][0-9]|999[0-8])-(0[1-9]|1[0-2])"
PERIOD_PATTERN = re.compile(PERIOD_REGEX)


@dataclass(frozen=True, slots=True, order=True)
class Period:
    year: int
    month: int

    @classmethod
    def parse(cls, text: str) -> "Period":
        match = PERIOD_PATTERN.fullmatch(text)
        if match is None:
            raise InvalidInput(f"period must be YYYY-MM from 1970-01 to 9998-12, got {text!r}")
        return cls(int(match.group(1)), int(match.group(2)))

    @classmethod
    def containing(cls, moment: datetime) -> "Period":
        utc = moment.astimezone(UTC)
        return cls(utc.year, utc.month)

    @property
    def start(self) -> datetime:
        return datetime(self.year, self.month, 1, tzinfo=UTC)

    @property
    def cutoff(self) -> datetime:
        """The first instant of the next month: rewards earned before it are paid in this run."""
        return self.next().start

    def next(self) -> "Period":
        return Period(self.year + self.month // 12, self.month % 12 + 1)

    def previous(self) -> "Period":
        return Period(self.year - (self.month == 1), (self.month - 2) % 12 + 1)

    def has_ended(self, now: datetime) -> bool:
        return now >= self.cutoff

    def __str__(self) -> str:
        return f"{self.year:04d}-{self.month:02d}"


def last_ended_period(now: datetime) -> Period:
    """The month just ended: what the schedule pays at 00:00 UTC on the 1st."""
    return Period.containing(now).previous()
