"""Conversions: the qualifying events that earn referrals their rewards, once per id."""

from dataclasses import dataclass

from referrals.domain import events
from referrals.domain.codes import is_valid_user_id
from referrals.domain.errors import Conflict, ConversionConflict, InvalidInput, NotFound
from referrals.domain.model import Conversion, Referral, ReferralStatus, SignupSlot
from referrals.domain.pricing import CONVERSION_RULE, month_of, price
from referrals.domain.program import RuleVersion
from referrals.ports import Clock, Store
from referrals.services.retry import retry_on_conflict
from referrals.services.signups import add_referee_reward, count_earned


@dataclass(frozen=True, slots=True)
class ConversionResult:
    conversion: Conversion
    referral: Referral | None  # the referral this conversion earned its reward, if any
    replayed: bool


def record_conversion(
    store: Store,
    clock: Clock,
    rules: RuleVersion,
    user_id: str,
    event: str,
    external_id: str,
    value_cents: int | None = None,
) -> ConversionResult:
    """Record `user_id`'s event in the program of `rules` (the version in force there);
    if it qualifies, the user's referral in that program earns its reward.

    Idempotent by `external_id`: the same conversion again answers what the first
    did; another conversion under a recorded id is refused. Only the first
    qualifying conversion of a referee earns anything: the referral leaves the
    awaiting state by a conditional write.
    """
    if not is_valid_user_id(user_id):
        raise InvalidInput("user_id must be 1-128 characters of [A-Za-z0-9._:@+-]")
    if value_cents is not None and value_cents < 0:
        raise InvalidInput("value_cents cannot be negative")
    program = rules.program_id

    def attempt() -> ConversionResult:
        with store.unit_of_work() as uow:
            earlier = uow.conversions.get(external_id)
            if earlier is not None:
                if (earlier.user_id, earlier.event, earlier.value_cents, earlier.program_id) != (
                    user_id,
                    event,
                    value_cents,
                    program,
                ):
                    raise ConversionConflict(f"{external_id!r} was recorded for another event")
                referral = uow.referrals.get(earlier.referral_id) if earlier.referral_id else None
                return ConversionResult(earlier, referral, replayed=True)
            now = clock.now()
            qualified = None
            referral = uow.referrals.by_referee(user_id, program=program)
            if (
                referral is not None
                and referral.status is ReferralStatus.AWAITING
                and referral.receipt is not None  # every signup writes one
                and rules.qualifies(event, value_cents, referral.created_at, now)
            ):
                # Earned now: priced by the rule version in force now (its tier for the
                # referral's ordinal, this month's caps), payable its hold after this.
                profile = uow.referrers.get(referral.referrer_id, program=program)
                if profile is None:
                    raise NotFound(f"no referrer {referral.referrer_id!r}")  # never deleted
                priced = price(
                    rules,
                    referral.ordinal,
                    profile,
                    f"{CONVERSION_RULE}{event}",
                    referral.receipt.checks,  # the signup's verdicts stand
                    month_of(now),
                )
                hold = now - referral.created_at + rules.hold
                qualified = uow.referrals.qualify(
                    referral.id, priced.status, hold, priced.receipt, priced.cents
                )
                if qualified is not None:
                    count_earned(uow, qualified, profile)
                    add_referee_reward(uow, rules, qualified, now, now)
                    uow.outbox.add(events.referral_qualified(qualified, now))
            awaits_signup = False
            if referral is None and rules.qualifies(event, value_cents, now, now):
                # The webhooks may come out of order: the user's signup will find this
                # in their slot. A slot taken by the signup means it committed since
                # `by_referee` read: the retry finds its referral.
                slot = uow.conversions.signup_slot(user_id, program=program)
                if slot is not None and slot.external_id is None:
                    raise Conflict(f"{user_id} signed up meanwhile")
                if slot is None:  # else an earlier conversion waits already
                    uow.conversions.take_signup_slot(SignupSlot(user_id, external_id, program))
                    awaits_signup = True
            conversion = Conversion(
                external_id,
                user_id,
                event,
                value_cents,
                now,
                qualified.id if qualified else None,
                awaits_signup,
                program,
            )
            uow.conversions.add(conversion)
            uow.commit()
            return ConversionResult(conversion, qualified, replayed=False)

    return retry_on_conflict(attempt)
