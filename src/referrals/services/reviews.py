"""Reviewing held rewards and reversing rewards, each logged in the audit log.

A state change and its audit entry commit together. The change is conditional
on the state read, so two admins acting at once cannot both win: the loser's
retry finds the new state and is told so.
"""

from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime

from referrals.domain import events
from referrals.domain.errors import Conflict, InvalidInput, NotFound, NotHeld, NotReversible
from referrals.domain.model import (
    Referral,
    ReferralStatus,
    Reward,
    RewardKind,
    RunStatus,
    new_id,
)
from referrals.domain.pricing import month_of
from referrals.ports import Clock, Store, UnitOfWork
from referrals.services.audit import add_entry
from referrals.services.queries import Page, search_referrals
from referrals.services.retry import retry_on_conflict
from referrals.services.signups import give_back_earned

MAX_REASON = 500
HELD, PENDING, PAID = ReferralStatus.HELD, ReferralStatus.PENDING, ReferralStatus.PAID
PROCESSING, REVERSED = ReferralStatus.PROCESSING, ReferralStatus.REVERSED
CLAWED_BACK = ReferralStatus.CLAWED_BACK
REVERSIBLE = {ReferralStatus.AWAITING, PENDING, HELD, PAID}
REFEREE, CLAWBACK, SHARE = RewardKind.REFEREE, RewardKind.CLAWBACK, RewardKind.SHARE
# The entries that share their referral's fate: the referee's reward and the referrer's
# revenue shares of the referee's sales (held with it, approved, rejected or reversed
# with it).
FOLLOWERS = {REFEREE, SHARE}


def approve(
    store: Store, clock: Clock, actor: str, referral_id: str, reason: str | None = None
) -> Referral:
    """A held reward becomes payable (with its referee's reward, if any): the next run
    whose cutoff is after its hold pays it."""
    _check_reason(reason, required=False)
    return _review(
        store,
        clock,
        actor,
        referral_id,
        PENDING,
        "review.approve",
        reason,
        events.REFERRAL_APPROVED,
    )


def reject(store: Store, clock: Clock, actor: str, referral_id: str, reason: str) -> Referral:
    """A held reward (and its referee's) is refused for good; the referral itself stays,
    so the referee cannot be referred again."""
    _check_reason(reason, required=True)
    return _review(
        store,
        clock,
        actor,
        referral_id,
        ReferralStatus.REJECTED,
        "review.reject",
        reason,
        events.REFERRAL_REJECTED,
    )


def reverse(store: Store, clock: Clock, actor: str, referral_id: str, reason: str) -> Referral:
    """Cancel a referral's rewards (a refund, a cancelled account).

    A reward not paid yet is reversed; one already paid is clawed back: a clawback
    entry takes its amount back in the next run, as a line of its own. A reward
    being paid out right now cannot be reversed until its run completes.
    """
    _check_reason(reason, required=True)

    def attempt() -> Referral:
        with store.unit_of_work() as uow:
            referral = _get(uow, referral_id)
            everything = uow.rewards.for_referral(referral_id)
            entries = [e for e in everything if e.kind in FOLLOWERS]
            rewards: list[Referral | Reward] = [referral, *entries]
            if any(
                r.status is PROCESSING or _paid_by_a_running_run(uow, r.status, r.payout_period)
                for r in rewards
            ):
                raise NotReversible("the reward is being paid out: reverse it after the run")
            if referral.status not in REVERSIBLE:
                raise NotReversible(f"the reward is {referral.status}: nothing to reverse")
            now = clock.now()
            changed = uow.referrals.transition(
                referral_id, {referral.status}, _reversal(referral.status), reason
            )
            if changed is None:
                raise Conflict("the referral changed meanwhile")  # retried
            give_back_earned(uow, referral)
            if changed.status is CLAWED_BACK:
                _claw_back(uow, referral, referral.referrer_id, referral.reward_cents, now)
            for e in entries:
                if e.status not in REVERSIBLE:
                    continue
                if uow.rewards.transition(e.id, {e.status}, _reversal(e.status), reason) is None:
                    raise Conflict("an entry of the referral changed meanwhile")
                kept = e.cents - _clawed_back_by_refunds(everything, e)
                _give_back_share(uow, replace(e, cents=kept))
                if e.status is PAID:
                    _claw_back(uow, referral, e.user_id, kept, now)
            add_entry(uow, clock, actor, "referral.reverse", f"referral:{referral_id}", reason)
            uow.outbox.add(events.referral_reviewed(events.REFERRAL_REVERSED, changed, reason, now))
            uow.commit()
            return changed

    return retry_on_conflict(attempt)


def _paid_by_a_running_run(uow: UnitOfWork, status: ReferralStatus, period: str | None) -> bool:
    """A store may mark a run's rewards paid in batches before the run completes
    (DynamoDB): until the run and its report are done, nothing of it is taken back."""
    if status is not PAID or period is None:
        return False
    run = uow.payouts.get(period)
    return run is None or run.status is not RunStatus.COMPLETED


def _reversal(status: ReferralStatus) -> ReferralStatus:
    """Unpaid: cancelled outright. Paid: clawed back by a negative entry."""
    return CLAWED_BACK if status is PAID else REVERSED


def review_queue(store: Store, limit: int, cursor: str | None) -> Page[Referral]:
    """The held rewards, oldest first."""
    return search_referrals(store, limit, cursor, status=HELD)


def _review(
    store: Store,
    clock: Clock,
    actor: str,
    referral_id: str,
    to: ReferralStatus,
    action: str,
    reason: str | None,
    event: str,
) -> Referral:
    def attempt() -> Referral:
        with store.unit_of_work() as uow:
            changed = uow.referrals.transition(referral_id, {HELD}, to, reason)
            if changed is None:
                raise NotHeld(f"the reward is {_get(uow, referral_id).status}, not held")
            if to is ReferralStatus.REJECTED:
                give_back_earned(uow, changed)
            for entry in uow.rewards.for_referral(referral_id):
                if entry.kind in FOLLOWERS and entry.status is HELD:
                    if uow.rewards.transition(entry.id, {HELD}, to, reason) is None:
                        raise Conflict("an entry of the referral changed meanwhile")
                    if to is ReferralStatus.REJECTED:
                        _give_back_share(uow, entry)
            add_entry(uow, clock, actor, action, f"referral:{referral_id}", reason)
            uow.outbox.add(events.referral_reviewed(event, changed, reason, clock.now()))
            uow.commit()
            return changed

    return retry_on_conflict(attempt)


def _clawed_back_by_refunds(entries: Sequence[Reward], entry: Reward) -> int:
    """What refunds of a paid share's sale took back already, by clawbacks of their own
    (services.sales): a reversal takes back only the rest. An unpaid share was lowered in
    place instead, so its cents are what it keeps."""
    if entry.kind is not SHARE or entry.sale_id is None:
        return 0
    return -sum(e.cents for e in entries if e.kind is CLAWBACK and e.sale_id == entry.sale_id)


def _give_back_share(uow: UnitOfWork, entry: Reward) -> None:
    """A revenue share refused or reversed no longer counts toward its referrer's caps
    (in the month its sale earned it, as services.sales counted it)."""
    if entry.kind is SHARE and entry.cents:
        uow.referrers.add_earned(
            entry.user_id, month_of(entry.created_at), -entry.cents, program=entry.program_id
        )


def _claw_back(
    uow: UnitOfWork, referral: Referral, user_id: str, cents: int, now: datetime
) -> None:
    if not cents:  # a reward the caps cut to nothing: there is nothing to take back
        return
    clawback = Reward(
        new_id(now),
        referral.id,
        user_id,
        CLAWBACK,
        -cents,
        PENDING,
        now,
        program_id=referral.program_id,
    )
    uow.rewards.add(clawback)


def _get(uow: UnitOfWork, referral_id: str) -> Referral:
    referral = uow.referrals.get(referral_id)
    if referral is None:
        raise NotFound(f"no referral {referral_id!r}")
    return referral


def _check_reason(reason: str | None, *, required: bool) -> None:
    if reason is None:
        if required:
            raise InvalidInput("a reason is required")
        return
    if not 1 <= len(reason.strip()) <= MAX_REASON:
        raise InvalidInput(f"reason must be 1-{MAX_REASON} characters")
