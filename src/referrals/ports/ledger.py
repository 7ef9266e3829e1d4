"""Referrers, referrals, their other payout entries and conversions: the ledger a signup writes."""

from collections.abc import Collection, Sequence
from datetime import datetime, timedelta
from typing import Protocol

from referrals.domain.model import (
    DEFAULT_PROGRAM,
    Conversion,
    Earnings,
    Receipt,
    Referral,
    ReferralStatus,
    Referrer,
    Reward,
    SignupParties,
    SignupSlot,
)


class ReferrerRepository(Protocol):
    """A referrer is a user in a program: keyed by both (`program` is keyword-only and
    defaults to the default program, as routes without a program do). Codes are unique
    across programs, so a code finds its program."""

    def get(self, user_id: str, *, program: str = DEFAULT_PROGRAM) -> Referrer | None: ...

    def by_code(self, code: str) -> Referrer | None:
        """Look a referrer up by code, case-insensitively, in any program."""
        ...

    def add(self, referrer: Referrer) -> None:
        """Insert; raises Conflict if the user is a referrer of the program already, or
        the code is taken in any program."""
        ...

    def increment_referral_count(self, user_id: str, *, program: str = DEFAULT_PROGRAM) -> Referrer:
        """Atomically add one referral and return the profile as updated: its count is
        the referral's ordinal, its cap counters are current.

        The increment must serialize concurrent signups for one referrer, so that
        ordinals are exactly 1..n with no gap and no duplicate.
        """
        ...

    def give_back_count(self, user_id: str, *, program: str = DEFAULT_PROGRAM) -> None:
        """Undo an increment of this unit of work (a signup refused once counted); like
        a write, it may reach the store as late as the commit."""
        ...

    def add_earned(
        self,
        user_id: str,
        month: str,
        cents: int,
        seen: Referrer | None = None,
        *,
        program: str = DEFAULT_PROGRAM,
    ) -> None:
        """Count `cents` earned in `month` (YYYY-MM) toward the referrer's caps; negative
        cents give back a cancelled reward. The lifetime counter always moves; the month
        counter if `month` is its month, or restarts at a later month; an earlier month
        leaves it.

        With `seen` (the profile the amount was priced from), the write is conditional
        on the counters being unchanged since, and raises Conflict otherwise (at the
        latest on commit), so two rewards priced at once cannot both pass a cap. In one
        unit of work, after `increment_referral_count` of the same referrer, it joins
        that write (DynamoDB writes an item once per transaction).
        """
        ...

    def earnings(self, user_id: str, now: datetime, *, program: str = DEFAULT_PROGRAM) -> Earnings:
        """Every entry of the program paid to `user_id` (their rewards as a referrer,
        their reward as a referee, clawbacks), by state; pending ones payable by `now`
        count as payable."""
        ...


class ReferralRepository(Protocol):
    def get(self, referral_id: str) -> Referral | None: ...

    def by_referee(self, referee_id: str, *, program: str = DEFAULT_PROGRAM) -> Referral | None:
        """The referee's referral in the program: a user is referred once per program."""
        ...

    def by_email(self, email: str, *, program: str = DEFAULT_PROGRAM) -> Referral | None:
        """The referral in the program whose referee signed up with `email`, compared
        case-insensitively (ASCII letters at least); of several, the first made. Read
        through an index (a billing system's customer is matched by it), so a store may
        see a signup committed a moment ago late."""
        ...

    def parties_counted(self, code: str, referee_id: str) -> SignupParties:
        """The referrer of `code` (case-insensitively), the referee's earlier referral
        and the referee's profile in the code's program, read together, with the
        referrer's count incremented as by `increment_referral_count` in the same step:
        the referrer comes as updated, its count the ordinal of the signup if it goes
        ahead (else the signup gives it back). A referee signing up with their own code
        is always refused; whether `referee` then reads as counted or not is up to the
        store."""
        ...

    def add(self, referral: Referral) -> None:
        """Insert; raises Conflict if the referee was already referred in its program."""
        ...

    def transition(
        self,
        referral_id: str,
        allowed: Collection[ReferralStatus],
        to: ReferralStatus,
        note: str | None,
    ) -> Referral | None:
        """Move the reward to `to` if it is in one of the `allowed` states, with `note`.

        Returns the referral as changed, or None if there is no such referral or
        it is in another state. The write is conditional on the state: of two
        concurrent transitions one wins, and the other finds the new state
        (None) or raises Conflict, at the latest on commit (then a retry reads
        the new state).
        """
        ...

    def qualify(
        self,
        referral_id: str,
        to: ReferralStatus,
        hold: timedelta,
        receipt: Receipt,
        reward_cents: int,
    ) -> Referral | None:
        """An awaiting referral's conversion: it moves to `to` (pending or held) with a
        new hold, receipt and reward (the caps may cut it now). None if it is missing or
        not awaiting; conditional like `transition`."""
        ...

    def for_referrer(
        self,
        referrer_id: str,
        after_ordinal: int | None,
        limit: int,
        *,
        program: str = DEFAULT_PROGRAM,
    ) -> Sequence[Referral]:
        """A referrer's referrals in the program by ordinal, those after `after_ordinal`."""
        ...

    def search(
        self,
        status: ReferralStatus | None,
        referrer_id: str | None,
        after_id: str | None,
        limit: int,
        *,
        program: str | None = None,
    ) -> Sequence[Referral]:
        """Referrals in id (creation) order, optionally filtered: of every program if
        `program` is None, but a `referrer_id` is a referrer of `program` (of the default
        program if None)."""
        ...


class RewardRepository(Protocol):
    """Entries besides a referral's own reward: referee rewards and clawbacks."""

    def add(self, reward: Reward) -> None:
        """Insert; raises Conflict if the id is taken."""
        ...

    def get(self, reward_id: str) -> Reward | None: ...

    def for_referral(self, referral_id: str) -> Sequence[Reward]:
        """The entries that came from one referral, by id."""
        ...

    def held_shares(self, after_id: str | None, limit: int) -> Sequence[Reward]:
        """Revenue shares held for review (by a dispute, or with their referral), in id
        order, those after `after_id`, at most `limit`."""
        ...

    def transition(
        self,
        reward_id: str,
        allowed: Collection[ReferralStatus],
        to: ReferralStatus,
        note: str | None,
    ) -> Reward | None:
        """As ReferralRepository.transition, for an entry."""
        ...


class ConversionRepository(Protocol):
    def add(self, conversion: Conversion) -> None:
        """Insert; raises Conflict if the external id was recorded before."""
        ...

    def get(self, external_id: str) -> Conversion | None: ...

    def signup_slot(self, user_id: str, *, program: str = DEFAULT_PROGRAM) -> SignupSlot | None: ...

    def take_signup_slot(self, slot: SignupSlot) -> None:
        """Insert; raises Conflict if the user's slot in the program is taken (at the
        latest on commit).
        A conversion and a signup of one user at once both take it: one commits, the
        other retries and finds the first one's work."""
        ...
