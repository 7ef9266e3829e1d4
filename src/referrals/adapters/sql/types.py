"""Column types of our own: times stored as integer microseconds since the epoch (UTC).

Integers are exact, sort as the instants do, and mean the same on SQLite and
PostgreSQL. The conversion lives in one type, so statements take and rows give
`datetime`s, never raw integers.
"""

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Dialect
from sqlalchemy.types import TypeDecorator, TypeEngine

from referrals.adapters.times import from_micros, to_micros


class MicrosTime(TypeDecorator[datetime]):
    """A timezone-aware `datetime`, stored as a BIGINT of microseconds since the epoch."""

    impl = BigInteger
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> int | None:
        return None if value is None else to_micros(value)

    def process_result_value(self, value: int | None, dialect: Dialect) -> datetime | None:
        return None if value is None else from_micros(value)

    def coerce_compared_value(self, op: Any, value: Any) -> TypeEngine[Any]:
        # A time plus a duration in microseconds (an int) is arithmetic on the integer.
        return self if isinstance(value, datetime) else BigInteger()
