"""The records of the referral program, as plain immutable values."""

import os
import time
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from referrals.domain.codes import CROCKFORD_ALPHABET


class Role(StrEnum):
    ADMIN = "admin"
    INGEST = "ingest"


class ReferralStatus(StrEnum):
    PENDING = "pending"
    PROCESSING = "processing"  # assigned to a payout run that has not completed yet
    PAID = "paid"


@dataclass(frozen=True, slots=True)
class Referrer:
    user_id: str
    code: str
    email: str | None
    referral_count: int
    created_at: datetime


@dataclass(frozen=True, slots=True)
class Referral:
    id: str
    referee_id: str
    referrer_id: str
    code: str
    email: str | None
    ordinal: int
    reward_cents: int
    status: ReferralStatus
    created_at: datetime
    payout_period: str | None = None


@dataclass(frozen=True, slots=True)
class Earnings:
    """A referrer's rewards by state, in cents; pending includes rewards being paid out."""

    pending_cents: int = 0
    paid_cents: int = 0

    @property
    def earned_cents(self) -> int:
        return self.pending_cents + self.paid_cents


@dataclass(frozen=True, slots=True)
class ApiKey:
    id: str
    role: Role
    key_hash: str
    created_at: datetime


def new_id() -> str:
    """A ULID: 48 bits of milliseconds then 80 random bits, 26 Crockford characters.

    Ids sort by creation time, which makes them usable as pagination cursors.
    """
    value = (time.time_ns() // 1_000_000) << 80 | int.from_bytes(os.urandom(10), "big")
    chars = []
    for _ in range(26):
        value, digit = divmod(value, 32)
        chars.append(CROCKFORD_ALPHABET[digit])
    return "".join(reversed(chars))
