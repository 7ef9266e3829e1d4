"""The events the service announces. Payloads carry no email: notifications leave the system."""

import json
from dataclasses import asdict
from datetime import datetime

from referrals.domain.model import Event, PayoutRun, Referral, Reward, new_id
from referrals.domain.sales import Refund, Sale

REFERRAL_CREATED = "referral.created"
REFERRAL_QUALIFIED = "referral.qualified"
REFERRAL_APPROVED = "referral.approved"
REFERRAL_REJECTED = "referral.rejected"
REFERRAL_REVERSED = "referral.reversed"
PAYOUT_COMPLETED = "payout.completed"
PAYOUT_FAILED = "payout.failed"
SHARE_EARNED = "share.earned"
SHARE_REFUNDED = "share.refunded"
SHARE_HELD = "share.held"
SHARE_APPROVED = "share.approved"
SHARE_REJECTED = "share.rejected"


def referral_created(referral: Referral, now: datetime) -> Event:
    payload = {
        "referral_id": referral.id,
        "program_id": referral.program_id,  # its rewards are in that program's currency
        "referrer_id": referral.referrer_id,
        "referee_id": referral.referee_id,
        "ordinal": referral.ordinal,
        "reward_cents": referral.reward_cents,
        # pending: earned; held: waiting for review; awaiting: earned only on conversion.
        "status": referral.status.value,
        "created_at": referral.created_at.isoformat(),
    }
    return Event(new_id(now), REFERRAL_CREATED, payload, now, next_attempt_at=now)


def referral_qualified(referral: Referral, now: datetime) -> Event:
    """A referral earned its reward by the referee's conversion."""
    return Event(new_id(now), REFERRAL_QUALIFIED, _reward(referral), now, next_attempt_at=now)


def referral_reviewed(kind: str, referral: Referral, reason: str | None, now: datetime) -> Event:
    """An admin approved, rejected or reversed a referral's reward (`kind`). A reversal's
    `status` says whether it was cancelled before payment (reversed) or will be taken
    back by the next run (clawed_back)."""
    payload = {**_reward(referral), "reason": reason}
    return Event(new_id(now), kind, payload, now, next_attempt_at=now)


def _reward(referral: Referral) -> dict[str, object]:
    """Who earns what from a referral, and where the reward stands."""
    return {
        "referral_id": referral.id,
        "referrer_id": referral.referrer_id,
        "referee_id": referral.referee_id,
        "reward_cents": referral.reward_cents,
        "status": referral.status.value,
    }


def share_earned(sale: Sale, share: Reward, now: datetime) -> Event:
    """A sale earned its referrer a revenue share. Credit the referrer on `pending`, not
    on `held` (waiting for review), as with `referral.created`."""
    payload = {
        **_share(sale, share),
        "sale_amount_minor": sale.amount_minor,
        "occurred_at": sale.occurred_at.isoformat(),
    }
    return Event(new_id(now), SHARE_EARNED, payload, now, next_attempt_at=now)


def share_refunded(
    sale: Sale, refund: Refund, share: Reward, clawback: Reward | None, now: datetime
) -> Event:
    """A refund took `taken_back_cents` of a sale's share: lowered in place while unpaid
    (`share_cents` is what is left, `status` reversed once nothing is), or, once a run
    had it, by the clawback entry `clawback_id` that the next run deducts."""
    payload = {
        **_share(sale, share),
        "status": "clawed_back" if clawback else share.status.value,
        "refund_id": refund.id,
        "refund_external_id": refund.external_id,
        "refund_minor": refund.amount_minor,
        "taken_back_cents": refund.reversed_minor,
        "clawback_id": clawback.id if clawback else None,
    }
    return Event(new_id(now), SHARE_REFUNDED, payload, now, next_attempt_at=now)


def share_reviewed(kind: str, sale: Sale, share: Reward, reason: str, now: datetime) -> Event:
    """A sale's share held (`share.held`: a dispute), then approved or rejected by an
    admin (`kind`), with the reason given."""
    payload = {**_share(sale, share), "reason": reason}
    return Event(new_id(now), kind, payload, now, next_attempt_at=now)


def _share(sale: Sale, share: Reward) -> dict[str, object]:
    """Who earns what from a sale, in the program's currency, and where it stands."""
    return {
        "reward_id": share.id,
        "sale_id": sale.external_id,
        "program_id": sale.program_id,
        "currency": sale.currency,
        "referral_id": share.referral_id,
        "referrer_id": share.user_id,
        "referee_id": sale.user_id,
        "share_cents": share.cents,
        "status": share.status.value,
    }


def payout_completed(run: PayoutRun, now: datetime) -> Event:
    """`totals`: per currency, in its minor units. `total_cents` is the run's one
    currency's total (the field the event always had), null when it paid in several:
    a run never sums different currencies."""
    payload = {
        "period": run.period,
        "referrer_count": run.referrer_count,
        "referral_count": run.referral_count,
        "total_cents": run.total_cents,
        "totals": [asdict(total) for total in run.totals],
        "report_key": run.report_key,
        "report_sha256": run.report_sha256,
    }
    return Event(new_id(now), PAYOUT_COMPLETED, payload, now, next_attempt_at=now)


def payout_failed(period: str, error: str, now: datetime) -> Event:
    return Event(
        new_id(now), PAYOUT_FAILED, {"period": period, "error": error}, now, next_attempt_at=now
    )


def envelope(event: Event) -> bytes:
    """The wire form of an event, the same for every notifier."""
    body = {
        "id": event.id,
        "type": event.type,
        "created_at": event.created_at.isoformat(),
        "data": dict(event.payload),
    }
    return json.dumps(body, sort_keys=True, separators=(",", ":")).encode()
