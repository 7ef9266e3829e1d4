"""Sales and refunds from the billing system, and the revenue-share rewards they move.

A sale of a referred user earns their referrer a share (`domain.sales`), priced by the
rule version in force when the sale occurred, against the referrer's caps, as a
`share` entry that payout runs pay like any other. A refund lowers the share by the
exact difference of the shares kept: while the entry is unpaid its amount is lowered
in place (one entry per sale, so a run's lines and counts stay honest, and nothing
negative can be paid while the share itself is held); once a run has it, a clawback
entry takes the difference back, as a reversal does (services.reviews). A dispute
holds an unpaid share for review.

Each is idempotent on the billing system's id: the same report again answers what
the first did; another report under a recorded id is refused.
"""

import re
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

from referrals.domain import events
from referrals.domain.codes import is_valid_user_id
from referrals.domain.errors import (
    Conflict,
    CurrencyMismatch,
    InvalidInput,
    NotHeld,
    RefundConflict,
    RefundExceedsSale,
    SaleConflict,
    SaleNotFound,
)
from referrals.domain.model import (
    DEFAULT_PROGRAM,
    Referral,
    ReferralStatus,
    Reward,
    RewardKind,
    new_id,
)
from referrals.domain.pricing import month_of, price_share
from referrals.domain.program import currencies, in_force, is_valid_program_id
from referrals.domain.sales import MAX_AMOUNT, Refund, Sale, SaleKind, within_share_months
from referrals.ports import Clock, Store, UnitOfWork
from referrals.services.audit import add_entry
from referrals.services.programs import program_in
from referrals.services.queries import Page, check_limit, decode_cursor, page
from referrals.services.retry import retry_on_conflict

PENDING, HELD = ReferralStatus.PENDING, ReferralStatus.HELD
# A referral refused or cancelled earns no share of its referee's sales.
CANCELLED = {ReferralStatus.REJECTED, ReferralStatus.REVERSED, ReferralStatus.CLAWED_BACK}
# A sale may be reported a little ahead of this server's clock (another machine's).
CLOCK_SKEW = timedelta(minutes=5)
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
_EXTERNAL_ID = re.compile(r"[\x21-\x7e]{1,128}")
MAX_REASON = 500


@dataclass(frozen=True, slots=True)
class SaleIn:
    """A sale as reported: `amount_minor` in the minor unit of `currency`."""

    external_id: str
    user_id: str
    amount_minor: int
    currency: str
    occurred_at: datetime
    kind: SaleKind = SaleKind.PURCHASE
    program: str = DEFAULT_PROGRAM


@dataclass(frozen=True, slots=True)
class RefundIn:
    sale_external_id: str
    amount_minor: int
    external_id: str | None = None  # the billing system's refund id: makes it idempotent
    occurred_at: datetime | None = None  # default: now


@dataclass(frozen=True, slots=True)
class SaleOutcome:
    sale: Sale
    reward: Reward | None  # the share it earned, if any
    replayed: bool


@dataclass(frozen=True, slots=True)
class RefundOutcome:
    refund: Refund
    sale: Sale  # as the refund left it
    clawback: Reward | None  # the entry taking back a share already paid, if one
    replayed: bool


@dataclass(frozen=True, slots=True)
class HoldOutcome:
    sale: Sale
    reward: Reward | None  # the share as it is now, if the sale earned one
    held: bool  # the share waits for review (now, or since an earlier hold)


def record_sale(store: Store, clock: Clock, sale: SaleIn) -> SaleOutcome:
    """Record a sale; if its user was referred in the program, their referrer earns the
    share the rules in force when it occurred pay. A sale of a user nobody referred is
    kept unattributed (the funnel counts it)."""
    _check_external_id(sale.external_id, "external_id")
    if not is_valid_user_id(sale.user_id):
        raise InvalidInput("user_id must be 1-128 characters of [A-Za-z0-9._:@+-]", "user_id")
    _check_amount(sale.amount_minor, minimum=0)
    if sale.currency not in currencies():
        raise InvalidInput("currency: an ISO 4217 currency code, e.g. USD", "currency")
    if not is_valid_program_id(sale.program):
        raise InvalidInput("program_id: not a program id", "program_id")
    occurred_at = _moment(sale.occurred_at, clock.now(), "occurred_at")
    kind = SaleKind(sale.kind)

    def attempt() -> SaleOutcome:
        with store.unit_of_work() as uow:
            now = clock.now()
            new = Sale(
                sale.external_id,
                sale.user_id,
                sale.amount_minor,
                sale.currency,
                occurred_at,
                kind,
                now,
                program_id=sale.program,
            )
            earlier = uow.sales.get(sale.external_id)
            if earlier is not None:
                if not earlier.same_as(new):
                    raise SaleConflict(f"{sale.external_id!r} was recorded for another sale")
                reward = uow.rewards.get(earlier.reward_id) if earlier.reward_id else None
                return SaleOutcome(earlier, reward, replayed=True)
            program = program_in(uow, sale.program).program
            if sale.currency != program.currency:
                raise CurrencyMismatch(
                    f"the program {program.id!r} is in {program.currency}, not {sale.currency}"
                )
            referral = uow.referrals.by_referee(sale.user_id, program=sale.program)
            recorded, reward = _attributed(uow, new, referral, now)
            uow.sales.add(recorded)
            if reward is not None:
                uow.outbox.add(events.share_earned(recorded, reward, now))
            uow.commit()
            return SaleOutcome(recorded, reward, replayed=False)

    return retry_on_conflict(attempt)


def _attributed(
    uow: UnitOfWork, sale: Sale, referral: Referral | None, now: datetime
) -> tuple[Sale, Reward | None]:
    """The sale attributed to `referral` (if any), with the share it earns written."""
    if referral is None:
        return sale, None
    sale = replace(sale, referral_id=referral.id, referrer_id=referral.referrer_id)
    if referral.status in CANCELLED:
        return sale, None
    versions = uow.programs.versions(sale.program_id)
    # A sale before the program's first version (paid at checkout a moment before the
    # signup, in a program made since) is priced by that first version.
    rules = in_force(versions, sale.occurred_at) or (versions[0] if versions else None)
    if rules is None or not rules.share_tiers:
        return sale, None
    if not within_share_months(referral.created_at, sale.occurred_at, rules.share_months):
        return sale, None
    profile = uow.referrers.get(referral.referrer_id, program=sale.program_id)
    if profile is None:
        return sale, None  # never deleted
    month = month_of(sale.occurred_at)
    priced = price_share(
        rules,
        sale.kind.value,
        sale.amount_minor,
        profile.referral_count,
        profile,
        month,
        held=referral.status is HELD,
    )
    if priced is None:
        return sale, None
    tier = rules.share_tiers.tier_of(profile.referral_count)
    assert tier is not None  # priced
    sale = replace(
        sale,
        share_bps=tier.bps,
        share_ceiling_minor=rules.share_ceiling_cents,
        awarded_minor=priced.cents,
        receipt=priced.receipt,
    )
    if not priced.cents:  # the caps left nothing: the receipt says why
        return sale, None
    reward = Reward(
        id=new_id(now),
        referral_id=referral.id,
        user_id=referral.referrer_id,
        kind=RewardKind.SHARE,
        cents=priced.cents,
        status=priced.status,
        created_at=sale.occurred_at,  # earned when the sale occurred; the hold counts from it
        hold=rules.hold,
        program_id=sale.program_id,
        sale_id=sale.external_id,
    )
    uow.rewards.add(reward)
    # Conditional on the counters that priced it, so two shares cannot both pass a cap.
    uow.referrers.add_earned(
        referral.referrer_id, month, priced.cents, profile, program=sale.program_id
    )
    return replace(sale, reward_id=reward.id), reward


def record_refund(store: Store, clock: Clock, refund: RefundIn) -> RefundOutcome:
    """Record a refund of part or all of a sale, and take back the matching share.

    The refunds of a sale never add up to more than it (409 `refund_exceeds_sale`):
    the sale's total moves by a conditional write, so two refunds at once cannot both
    pass the check.
    """
    _check_external_id(refund.sale_external_id, "sale_external_id")
    if refund.external_id is not None:
        _check_external_id(refund.external_id, "external_id")
    _check_amount(refund.amount_minor, minimum=1)
    asked_at = refund.occurred_at
    if asked_at is not None:
        asked_at = _moment(asked_at, clock.now(), "occurred_at")

    def attempt() -> RefundOutcome:
        with store.unit_of_work() as uow:
            if refund.external_id is not None:
                earlier = uow.sales.refund(refund.external_id)
                if earlier is not None:
                    return _replayed(uow, earlier, refund, asked_at)
            sale = uow.sales.get(refund.sale_external_id)
            if sale is None:
                raise SaleNotFound(f"no sale {refund.sale_external_id!r}")
            if refund.amount_minor > sale.net_minor:
                raise RefundExceedsSale(
                    f"{refund.amount_minor} is more than the {sale.net_minor} left of the sale"
                )
            now = clock.now()
            refund_id = new_id(now)
            reversed_minor, share, clawback = _reverse_share(
                uow, sale, refund.amount_minor, refund_id, now
            )
            recorded = Refund(
                id=refund_id,
                sale_external_id=sale.external_id,
                amount_minor=refund.amount_minor,
                occurred_at=asked_at or now,
                created_at=now,
                program_id=sale.program_id,
                referrer_id=sale.referrer_id,
                external_id=refund.external_id,
                reversed_minor=reversed_minor,
            )
            uow.sales.add_refund(recorded, sale)
            if share is not None:
                uow.outbox.add(events.share_refunded(sale, recorded, share, clawback, now))
            uow.commit()
            after = replace(sale, refunded_minor=sale.refunded_minor + refund.amount_minor)
            return RefundOutcome(recorded, after, clawback, replayed=False)

    return retry_on_conflict(attempt)


def _replayed(
    uow: UnitOfWork, earlier: Refund, refund: RefundIn, asked_at: datetime | None
) -> RefundOutcome:
    if not earlier.same_as(refund.sale_external_id, refund.amount_minor, asked_at):
        raise RefundConflict(f"{refund.external_id!r} was recorded for another refund")
    sale = uow.sales.get(earlier.sale_external_id)
    if sale is None:  # a refund's sale is never deleted
        raise SaleNotFound(f"no sale {earlier.sale_external_id!r}")
    clawback = None
    if earlier.reversed_minor and sale.reward_id:
        clawback = next(
            (
                e
                for e in uow.rewards.for_referral(sale.referral_id or "")
                if e.kind is RewardKind.CLAWBACK and e.id == _clawback_id_of(earlier)
            ),
            None,
        )
    return RefundOutcome(earlier, sale, clawback, replayed=True)


def _clawback_id_of(refund: Refund) -> str:
    # A refund's clawback carries the refund's id: found again on a replay, and unique.
    return refund.id


def _reverse_share(
    uow: UnitOfWork, sale: Sale, refund_minor: int, refund_id: str, now: datetime
) -> tuple[int, Reward | None, Reward | None]:
    """Take back what a refund of `refund_minor` takes from the sale's share: lowered in
    place while unpaid, by a clawback entry once a run has it. Returns the amount taken
    back, the share as it is now (None if nothing was taken) and the clawback, if one."""
    if sale.reward_id is None:
        return 0, None, None
    taken = sale.reversal(refund_minor)
    reward = uow.rewards.get(sale.reward_id)
    if not taken or reward is None or reward.status in CANCELLED:
        return 0, None, None  # nothing owed, or a share refused or reversed: nothing taken
    clawback = None
    if reward.status in (PENDING, HELD):
        left = reward.cents - taken
        to = reward.status if left else ReferralStatus.REVERSED
        note = f"refunded: {sale.refunded_minor + refund_minor} of {sale.amount_minor}"
        repriced = uow.sales.reprice_share(reward, left, to, note)
        if repriced is None:
            raise Conflict("the share changed meanwhile")  # a run took it: retried
        reward = repriced
    else:  # processing or paid: the run pays it whole, the clawback takes back the rest
        clawback = Reward(
            id=refund_id,  # see _clawback_id_of
            referral_id=reward.referral_id,
            user_id=reward.user_id,
            kind=RewardKind.CLAWBACK,
            cents=-taken,
            status=PENDING,
            created_at=now,
            program_id=reward.program_id,
            sale_id=sale.external_id,
        )
        uow.rewards.add(clawback)
    # The caps give back what is taken back, in the month the share was earned in.
    uow.referrers.add_earned(
        reward.user_id, month_of(reward.created_at), -taken, program=reward.program_id
    )
    return taken, reward, clawback


def hold_sale(store: Store, clock: Clock, sale_external_id: str, reason: str) -> HoldOutcome:
    """A dispute of a sale: its share, if not paid yet, is held for review, as a failed
    fraud check holds a reward (approve or reject it with `review_share`). Idempotent:
    a share held already stays so. A share a run has taken is not held (a lost dispute
    comes back as a refund, which claws it back)."""
    _check_external_id(sale_external_id, "sale_external_id")
    _check_reason(reason)

    def attempt() -> HoldOutcome:
        with store.unit_of_work() as uow:
            now = clock.now()
            sale = uow.sales.get(sale_external_id)
            if sale is None:
                raise SaleNotFound(f"no sale {sale_external_id!r}")
            reward = uow.rewards.get(sale.reward_id) if sale.reward_id else None
            if reward is None or reward.status is not PENDING:
                return HoldOutcome(sale, reward, held=reward is not None and reward.status is HELD)
            held = uow.rewards.transition(reward.id, {PENDING}, HELD, reason.strip())
            if held is None:
                raise Conflict("the share changed meanwhile")
            event = events.share_reviewed(events.SHARE_HELD, sale, held, reason.strip(), now)
            uow.outbox.add(event)
            uow.commit()
            return HoldOutcome(sale, held, held=True)

    return retry_on_conflict(attempt)


@dataclass(frozen=True, slots=True)
class HeldShare:
    share: Reward
    # Held from its start with its referral (a fraud check): decided with the referral,
    # whose approval or rejection does the same to it. Otherwise held by a dispute, whose
    # reason is the share's `note`, and decided on its own with `review_share`.
    with_referral: bool


def held_shares(store: Store, limit: int, cursor: str | None) -> Page[HeldShare]:
    """The revenue shares held for review, oldest first."""
    check_limit(limit)
    after = decode_cursor(cursor)
    with store.read() as uow:
        shares = uow.rewards.held_shares(after, limit + 1)
        # One read per referral: a referee's sales are often many shares of one referral.
        referrals = {r: uow.referrals.get(r) for r in {share.referral_id for share in shares}}
    held = [HeldShare(share, _is_held(referrals[share.referral_id])) for share in shares]
    return page(held, limit, lambda last: last.share.id)


def _is_held(referral: Referral | None) -> bool:
    return referral is not None and referral.status is HELD


def review_share(
    store: Store,
    clock: Clock,
    actor: str,
    sale_external_id: str,
    approve: bool,
    reason: str,
) -> Reward:
    """Approve (payable again) or reject (never paid, the caps give it back) a sale's
    held share; logged in the audit log with the reason."""
    _check_external_id(sale_external_id, "sale_external_id")
    _check_reason(reason)

    def attempt() -> Reward:
        with store.unit_of_work() as uow:
            sale = uow.sales.get(sale_external_id)
            if sale is None or sale.reward_id is None:
                raise SaleNotFound(f"no sale {sale_external_id!r} with a share")
            to = PENDING if approve else ReferralStatus.REJECTED
            changed = uow.rewards.transition(sale.reward_id, {HELD}, to, reason.strip())
            if changed is None:
                reward = uow.rewards.get(sale.reward_id)
                state = reward.status if reward else "gone"
                raise NotHeld(f"the share is {state}, not held")
            if not approve and changed.cents:
                uow.referrers.add_earned(
                    changed.user_id,
                    month_of(changed.created_at),
                    -changed.cents,
                    program=changed.program_id,
                )
            action = "share.approve" if approve else "share.reject"
            add_entry(uow, clock, actor, action, f"sale:{sale_external_id}", reason.strip())
            kind = events.SHARE_APPROVED if approve else events.SHARE_REJECTED
            uow.outbox.add(events.share_reviewed(kind, sale, changed, reason.strip(), clock.now()))
            uow.commit()
            return changed

    return retry_on_conflict(attempt)


def _check_external_id(value: str, field: str) -> None:
    if not isinstance(value, str) or not _EXTERNAL_ID.fullmatch(value):
        raise InvalidInput(f"{field} must be 1-128 visible ASCII characters", field)


def _check_amount(amount: int, *, minimum: int) -> None:
    if isinstance(amount, bool) or not isinstance(amount, int):
        raise InvalidInput("amount_minor must be an integer of minor units", "amount_minor")
    if not minimum <= amount <= MAX_AMOUNT:
        raise InvalidInput(f"amount_minor must be {minimum}-{MAX_AMOUNT}", "amount_minor")


def _check_reason(reason: str) -> None:
    if not 1 <= len(reason.strip()) <= MAX_REASON:
        raise InvalidInput(f"reason must be 1-{MAX_REASON} characters", "reason")


def _moment(moment: datetime, now: datetime, field: str) -> datetime:
    """A reported time in UTC, as stored, so a replay compares equal to the first."""
    if moment.tzinfo is None:
        raise InvalidInput(f"{field} needs a timezone", field)
    try:
        utc = moment.astimezone(UTC)
    except OverflowError:
        raise InvalidInput(f"{field} is out of range", field) from None
    if utc < EARLIEST or utc > now + CLOCK_SKEW:
        raise InvalidInput(f"{field} must be after 1970 and not in the future", field)
    return utc
