"""Reviewing held rewards and reversing rewards, each logged in the audit log.

A state change and its audit entry commit together. The change is conditional
on the state read, so two admins acting at once cannot both win: the loser's
retry finds the new state and is told so.
"""

from collections.abc import Collection

from referrals.domain.errors import InvalidInput, NotFound, NotHeld, NotReversible
from referrals.domain.model import Referral, ReferralStatus
from referrals.ports import Clock, Store
from referrals.services.audit import add_entry
from referrals.services.queries import Page, search_referrals
from referrals.services.retry import retry_on_conflict

MAX_REASON = 500
HELD, PENDING = ReferralStatus.HELD, ReferralStatus.PENDING


def approve(
    store: Store, clock: Clock, actor: str, referral_id: str, reason: str | None = None
) -> Referral:
    """A held reward becomes payable: the next run whose cutoff is after its hold pays it."""
    return _change(store, clock, actor, referral_id, {HELD}, PENDING, "review.approve", reason)


def reject(store: Store, clock: Clock, actor: str, referral_id: str, reason: str) -> Referral:
    """A held reward is refused for good; the referral itself stays, so the referee
    cannot be referred again."""
    return _change(
        store, clock, actor, referral_id, {HELD}, ReferralStatus.REJECTED, "review.reject", reason
    )


def reverse(store: Store, clock: Clock, actor: str, referral_id: str, reason: str) -> Referral:
    """Cancel a reward that is not paid yet (a refund, a cancelled account)."""
    return _change(
        store,
        clock,
        actor,
        referral_id,
        {PENDING, HELD},
        ReferralStatus.REVERSED,
        "referral.reverse",
        reason,
    )


def review_queue(store: Store, limit: int, cursor: str | None) -> Page[Referral]:
    """The held rewards, oldest first."""
    return search_referrals(store, limit, cursor, status=HELD)


def _change(
    store: Store,
    clock: Clock,
    actor: str,
    referral_id: str,
    allowed: Collection[ReferralStatus],
    to: ReferralStatus,
    action: str,
    reason: str | None,
) -> Referral:
    if reason is not None and not 1 <= len(reason.strip()) <= MAX_REASON:
        raise InvalidInput(f"reason must be 1-{MAX_REASON} characters")
    if reason is None and to is not PENDING:
        raise InvalidInput("a reason is required")

    def attempt() -> Referral:
        with store.unit_of_work() as uow:
            changed = uow.referrals.transition(referral_id, allowed, to, reason)
            if changed is None:
                current = uow.referrals.get(referral_id)
                if current is None:
                    raise NotFound(f"no referral {referral_id!r}")
                if allowed == {HELD}:
                    raise NotHeld(f"the reward is {current.status}, not held")
                raise NotReversible(
                    f"the reward is {current.status}: only a pending or held reward can be reversed"
                )
            add_entry(uow, clock, actor, action, f"referral:{referral_id}", reason)
            uow.commit()
            return changed

    return retry_on_conflict(attempt)
