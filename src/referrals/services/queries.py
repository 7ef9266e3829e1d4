"""Read-side use cases: a referrer's stats and paginated referral lists."""

import base64
import binascii
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from referrals.domain.errors import InvalidInput, NotFound
from referrals.domain.model import (
    DEFAULT_PROGRAM,
    Earnings,
    Referral,
    ReferralStatus,
    Referrer,
    Reward,
)
from referrals.domain.program import RuleVersion
from referrals.domain.tiers import Tier
from referrals.ports import Clock, Store, UnitOfWork

MAX_PAGE = 500
# A cursor is a position (an ordinal or an id) of at most 64 ASCII characters, in unpadded
# URL-safe base64: at most 86 characters, so a longer one is refused unread.
MAX_CURSOR_POSITION = 64
MAX_CURSOR_LENGTH = -(-MAX_CURSOR_POSITION * 4 // 3)
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class ReferrerStats:
    referrer: Referrer
    earnings: Earnings
    next_tier: Tier | None


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    items: Sequence[T]
    next_cursor: str | None


def referrer_stats(store: Store, clock: Clock, rules: RuleVersion, user_id: str) -> ReferrerStats:
    """`user_id`'s stats as a referrer of the program of `rules` (its version in force)."""
    with store.read() as uow:
        referrer = uow.referrers.get(user_id, program=rules.program_id)
        if referrer is None:
            raise NotFound(f"no referrer {user_id!r}")
        return stats_of(uow, clock, rules, referrer)


def stats_of(
    uow: UnitOfWork, clock: Clock, rules: RuleVersion, referrer: Referrer
) -> ReferrerStats:
    """A referrer's stats, read in the caller's unit of work."""
    earnings = uow.referrers.earnings(referrer.user_id, clock.now(), program=referrer.program_id)
    return ReferrerStats(referrer, earnings, rules.tiers.next_tier(referrer.referral_count))


def referral_with_entries(store: Store, referral_id: str) -> tuple[Referral, Sequence[Reward]]:
    """A referral, and the entries that came from it (the referee's reward, clawbacks)."""
    with store.read() as uow:
        referral = uow.referrals.get(referral_id)
        if referral is None:
            raise NotFound(f"no referral {referral_id!r}")
        return referral, uow.rewards.for_referral(referral_id)


def referrals_of(
    store: Store,
    user_id: str,
    limit: int,
    cursor: str | None,
    *,
    program: str = DEFAULT_PROGRAM,
) -> Page[Referral]:
    after = decode_cursor(cursor)
    # Ordinals are positive integers that a database column can hold.
    if after is not None and not (after.isdigit() and after.isascii() and int(after) < 2**31):
        raise InvalidInput("invalid cursor")
    check_limit(limit)
    with store.read() as uow:
        if uow.referrers.get(user_id, program=program) is None:
            raise NotFound(f"no referrer {user_id!r}")
        position = int(after) if after else None
        rows = uow.referrals.for_referrer(user_id, position, limit + 1, program=program)
    return page(rows, limit, lambda last: str(last.ordinal))


def search_referrals(
    store: Store,
    limit: int,
    cursor: str | None,
    status: ReferralStatus | None = None,
    referrer_id: str | None = None,
    *,
    program: str | None = None,
) -> Page[Referral]:
    check_limit(limit)
    after = decode_cursor(cursor)
    with store.read() as uow:
        rows = uow.referrals.search(status, referrer_id, after, limit + 1, program=program)
    return page(rows, limit, lambda last: last.id)


def page(rows: Sequence[T], limit: int, key: Callable[[T], str]) -> Page[T]:
    """Rows were fetched with one extra: its presence says whether a next page exists."""
    if len(rows) <= limit:
        return Page(rows, None)
    items = rows[:limit]
    return Page(items, encode_cursor(key(items[-1])))


def check_limit(limit: int) -> None:
    if not 1 <= limit <= MAX_PAGE:
        raise InvalidInput(f"limit must be between 1 and {MAX_PAGE}")


def encode_cursor(value: str) -> str:
    return base64.urlsafe_b64encode(value.encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> str | None:
    if cursor is None:
        return None
    try:
        value = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise InvalidInput("invalid cursor") from None
    if not value or len(value) > MAX_CURSOR_POSITION or not value.isascii():
        raise InvalidInput("invalid cursor")
    return value
