"""The records of the referral program, as plain immutable values."""

import os
import time
from collections.abc import Mapping
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
class SignupParties:
    """What a signup reads before it writes, fetched together (one round trip on SQL)."""

    referrer: Referrer | None  # holds the code signed up with
    earlier: Referral | None  # the referee's referral, if they were referred before
    referee: Referrer | None  # the referee's own profile, if they are a referrer


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


class RunStatus(StrEnum):
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"  # may be claimed again: its assigned rewards are paid by the re-run


@dataclass(frozen=True, slots=True)
class PayoutRun:
    period: str
    status: RunStatus
    cutoff: datetime
    started_at: datetime
    lease_owner: str | None = None
    lease_expires_at: datetime | None = None
    referrer_count: int = 0
    referral_count: int = 0
    total_cents: int = 0
    report_key: str | None = None
    report_sha256: str | None = None
    previous_sha256: str | None = None
    completed_at: datetime | None = None
    error: str | None = None


@dataclass(frozen=True, slots=True)
class PayoutLine:
    """What one referrer is paid in one run."""

    referrer_id: str
    referral_count: int
    amount_cents: int


class EventStatus(StrEnum):
    PENDING = "pending"
    DELIVERED = "delivered"
    DEAD = "dead"  # gave up after the retry limit; an admin can send it again


@dataclass(frozen=True, slots=True)
class Event:
    """A notification, written in the same transaction as the change it describes."""

    id: str
    type: str
    payload: Mapping[str, object]
    created_at: datetime
    status: EventStatus = EventStatus.PENDING
    attempts: int = 0
    next_attempt_at: datetime | None = None
    last_error: str | None = None


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
