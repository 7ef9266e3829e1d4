"""The dashboard's aggregates."""

from collections.abc import Sequence
from datetime import datetime
from typing import Protocol

from referrals.domain.funnel import ReferralDay
from referrals.domain.model import (
    ReferrerTally,
    SignupTally,
    StateTally,
)


class StatsRepository(Protocol):
    """The dashboard's aggregates. Each reads an index range, never every referral, so a
    page view costs the same with a million referrals as with a thousand (but for the
    window's own rows). With `program`, only that program's records count; without,
    every program's."""

    def signups(self, since: datetime, *, program: str | None = None) -> Sequence[SignupTally]:
        """Referrals created at or after `since`, counted by UTC day of `created_at`,
        reward amount and state, in no particular order.

        A referral's id is minted when it is written: at its `created_at` (within
        ID_SLACK), or later for an import with an older `signed_up_at`. So a store
        may read only the ids minted since `since - ID_SLACK`, then filter on
        `created_at`.
        """
        ...

    def top_referrers(
        self, since: datetime, limit: int, *, program: str | None = None
    ) -> Sequence[ReferrerTally]:
        """The `limit` referrers with the most referrals created since `since`, most
        first, ties by referrer id (bytes); read like `signups`."""
        ...

    def referral_days(
        self, program: str, since: datetime, until: datetime
    ) -> Sequence[ReferralDay]:
        """The program's referrals created in [since, until), counted per UTC day of
        `created_at` and referrer, with what they earned (UNEARNED ones nothing), in no
        particular order; read like `signups` (the ids minted since `since - ID_SLACK`)."""
        ...

    def unsettled(self, *, program: str | None = None) -> Sequence[StateTally]:
        """What is owed and not paid yet, per UNSETTLED state that has any: referrals'
        rewards and other entries (referee rewards, clawbacks) together."""
        ...
