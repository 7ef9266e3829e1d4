"""Stored times are integer microseconds since the epoch (UTC): exact, sortable, portable."""

from datetime import UTC, datetime, timedelta

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def to_micros(moment: datetime) -> int:
    delta = moment.astimezone(UTC) - EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def from_micros(micros: int) -> datetime:
    # Exact integer arithmetic, and half the time of fromtimestamp().replace(): every
    # stored time of every row read comes through here.
    return EPOCH + timedelta(microseconds=micros)
