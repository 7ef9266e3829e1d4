"""Signing up a referred user: the referral, its ordinal and its tier reward, atomically."""

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

from referrals.domain import events
from referrals.domain.checks import Fingerprint, Fingerprints, signup_checks, velocity_check
from referrals.domain.clicks import Click, is_valid_click_id
from referrals.domain.codes import is_valid_code, is_valid_user_id, normalize_code
from referrals.domain.errors import (
    AlreadyReferred,
    ClickMismatch,
    ClickNotFound,
    CodeNotFound,
    DomainError,
    InvalidInput,
    ProgramNotFound,
    SelfReferral,
)
from referrals.domain.model import (
    Referral,
    ReferralStatus,
    Referrer,
    Reward,
    RewardKind,
    SignupSlot,
    new_id,
)
from referrals.domain.pricing import AWAITING_RULE, month_of, price
from referrals.domain.program import RuleVersion, Trigger
from referrals.ports import Clock, Store, UnitOfWork
from referrals.services.referrers import add_referrer, fingerprints_of, stored
from referrals.services.retry import retry_on_conflict


class RulesFor(Protocol):
    """The rule version that prices a signup in a program at a moment, refusing one in
    a program that takes no signups (RulesBook.for_signup). A signup finds its program
    by its code, so the version is chosen after the code is read, in the signup's unit
    of work, which is where any reading it needs must go."""

    def __call__(self, program_id: str, at: datetime, uow: UnitOfWork) -> RuleVersion: ...


# Payout periods start in 1970 (times are stored as microseconds since the epoch).
EARLIEST_IMPORT = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class SignupResult:
    referral: Referral
    referee_code: str | None
    replayed: bool  # the same signup was recorded before; this is its original result

    @property
    def referral_count(self) -> int:
        """The referrer's count right after this referral: its ordinal, also on replay."""
        return self.referral.ordinal


@dataclass(frozen=True, slots=True)
class _Signup:
    user_id: str
    referral_code: str | None
    email: str | None
    signed_up_at: datetime | None
    ip: Fingerprint | None
    device: Fingerprint | None
    click_id: str | None = None


def sign_up(
    store: Store,
    clock: Clock,
    rules: RuleVersion | RulesFor,
    user_id: str,
    referral_code: str | None,
    email: str | None = None,
    signed_up_at: datetime | None = None,
    ip: str | None = None,
    device_id: str | None = None,
    *,
    fingerprints: Fingerprints | None = None,
    click_id: str | None = None,
) -> SignupResult:
    """Record that `user_id` signed up with `referral_code` and price the reward.

    The ordinal comes from an atomic increment of the referrer's counter in the
    same transaction as the referral row, so concurrent signups never share or
    skip an ordinal, and the tier is priced from that ordinal, never a stale read.
    The program's fraud checks run on the way: a failed one holds the reward for
    review, and the receipt keeps every verdict. `ip` and `device_id` are compared
    and kept only as keyed `fingerprints` (required with either). A program that pays on
    conversion records the referral as awaiting: `record_conversion` earns it.
    `rules`: the version in force in the code's program, or one fixed version (which
    prices signups in its own program only).

    `click_id`, the tracked link's click the visitor came from (instead of the code or
    beside it), gives the code if it names a click within its program's attribution
    window, and the referral records it. One that does not attributes nothing: the
    signup goes on by `referral_code` if given, else `ClickNotFound`. With both, the
    click must be of the code's link (`ClickMismatch`).
    """
    ip_print, device_print = fingerprints_of(fingerprints, ip, device_id)
    if not is_valid_user_id(user_id):
        raise InvalidInput("user_id must be 1-128 characters of [A-Za-z0-9._:@+-]")
    if referral_code is None and click_id is None:
        raise InvalidInput("referral_code or click_id is required", field="referral_code")
    if referral_code is not None and not is_valid_code(referral_code):
        raise CodeNotFound(f"no referrer has the code {referral_code!r}")
    if signed_up_at is not None:
        signed_up_at = _imported_moment(signed_up_at, clock.now())

    signup = _Signup(user_id, referral_code, email, signed_up_at, ip_print, device_print, click_id)
    rules_for = _fixed(rules) if isinstance(rules, RuleVersion) else rules

    def record() -> SignupResult:
        with store.unit_of_work() as uow:
            result = _record(uow, clock, rules_for, signup)
            if not result.replayed:  # a replay wrote nothing worth keeping
                uow.commit()
            return result

    return retry_on_conflict(record)


def _fixed(version: RuleVersion) -> RulesFor:
    def rules_for(program_id: str, at: datetime, uow: UnitOfWork) -> RuleVersion:
        if program_id != version.program_id:
            raise ProgramNotFound(f"no rules for the program {program_id!r}")
        return version

    return rules_for


def _record(uow: UnitOfWork, clock: Clock, rules_for: RulesFor, signup: _Signup) -> SignupResult:
    """One signup, in `uow`: refused or replayed (its count given back), or recorded."""
    user_id, email = signup.user_id, signup.email
    signed_up_at = signup.signed_up_at
    # The click is read before the count goes up: a refusal here has nothing to give back.
    click = _click_of(uow, signup, signed_up_at or clock.now())
    referral_code = click.code if click and not signup.referral_code else signup.referral_code
    if referral_code is None:
        raise ClickNotFound(f"no click {signup.click_id!r} within its attribution window")
    # The referrer's count goes up with the read of the parties, before the signup is
    # judged, so the ordinal is the increment's and never a stale read. The increment
    # locks the referrer's row (PostgreSQL) until the unit ends: signups of one
    # referrer queue there, and a refused or replayed one gives the count back.
    parties = uow.referrals.parties_counted(referral_code, user_id)
    profile, earlier, referee = parties.referrer, parties.earlier, parties.referee
    if profile is None:
        raise CodeNotFound(f"no referrer has the code {referral_code!r}")
    program = profile.program_id
    try:
        # A replay answers as the first time did, even once the program is paused.
        replay = _replay(profile, earlier, referee, user_id, email)
        if replay is None:
            rules = rules_for(program, signed_up_at or clock.now(), uow)
    except DomainError:
        uow.referrers.give_back_count(profile.user_id, program=program)
        raise
    if replay is not None:
        uow.referrers.give_back_count(profile.user_id, program=program)
        return replay

    checks = signup_checks(rules.checks, profile, email, signup.ip, signup.device)
    rule = _earning_rule(uow, rules, user_id)
    ordinal = profile.referral_count
    limit = rules.checks.velocity_per_hour
    if rules.checks.velocity_runs and signed_up_at is None:  # an import is history
        earlier = _referral_by_ordinal(uow, profile, ordinal - limit)
        checks.append(velocity_check(limit, earlier, clock.now(), rules.checks.velocity))
    created_at = signed_up_at or clock.now()
    earned = rule != AWAITING_RULE
    # A conversion program prices the caps when the reward is earned.
    month = month_of(created_at) if earned else None
    priced = price(rules, ordinal, profile, rule, tuple(checks), month)
    referral = Referral(
        id=new_id(clock.now()),
        referee_id=user_id,
        referrer_id=profile.user_id,
        code=profile.code,
        email=email,
        ordinal=ordinal,
        reward_cents=priced.cents,
        status=priced.status,
        created_at=created_at,
        hold=rules.hold,
        receipt=priced.receipt,
        program_id=program,
        click_id=click.id if click else None,
    )
    if earned:
        count_earned(uow, referral, profile)
    if referee is None and rules.auto_enroll_referees:
        ip_hash, device_hash = stored(signup.ip), stored(signup.device)
        referee = add_referrer(uow, clock, user_id, email, ip_hash, device_hash, program=program)
    uow.referrals.add(referral)
    if earned:
        add_referee_reward(uow, rules, referral, referral.created_at, clock.now())
    uow.outbox.add(events.referral_created(referral, clock.now()))
    return SignupResult(referral, referee.code if referee else None, replayed=False)


def _click_of(uow: UnitOfWork, signup: _Signup, at: datetime) -> Click | None:
    """The click `signup` names, if it was recorded and `at` is within its program's
    attribution window; None if it names none (a forged, mistyped or expired id
    attributes nothing). Raises if the signup's code is another referrer's."""
    if signup.click_id is None or not is_valid_click_id(signup.click_id):
        return None
    click = uow.clicks.get(signup.click_id)
    if click is None:
        return None
    program = uow.programs.get(click.program_id)
    if program is None or not click.attributes_at(at, program.attribution_window_days):
        return None
    code = signup.referral_code
    if code is not None and normalize_code(code) != normalize_code(click.code):
        raise ClickMismatch(
            f"click {click.id!r} was on the link of another code than {code!r}: send one of them"
        )
    return click


def _replay(
    referrer: Referrer,
    earlier: Referral | None,
    referee: Referrer | None,
    user_id: str,
    email: str | None,
) -> SignupResult | None:
    """The original result of a signup recorded before; None for a new signup; raises
    if `user_id` may not be referred by `referrer`."""
    if earlier is not None:
        if earlier.referrer_id != referrer.user_id:
            raise AlreadyReferred(f"{user_id} was already referred by someone else")
        return SignupResult(earlier, referee.code if referee else None, replayed=True)
    if user_id == referrer.user_id or _same_email(email, referrer.email):
        raise SelfReferral("a user cannot refer themselves")
    return None


def _earning_rule(uow: UnitOfWork, rules: RuleVersion, user_id: str) -> str:
    """What earns a new referral its reward: the signup; in a conversion program, a
    qualifying conversion of the user reported before the signup (it took the user's
    signup slot); else, later, one reported after it (the referral awaits it, and the
    signup takes the slot, so a conversion racing it retries and finds the referral)."""
    if rules.trigger is Trigger.SIGNUP:
        return "signup"
    slot = uow.conversions.signup_slot(user_id, program=rules.program_id)
    if slot is None:
        uow.conversions.take_signup_slot(SignupSlot(user_id, None, rules.program_id))
        return AWAITING_RULE
    early = uow.conversions.get(slot.external_id) if slot.external_id else None
    if early is not None and rules.qualifies(
        early.event, early.value_cents, early.created_at, early.created_at
    ):
        return f"conversion:{early.event}"
    return AWAITING_RULE


def count_earned(uow: UnitOfWork, referral: Referral, priced_from: Referrer) -> None:
    """Count an earned reward toward its referrer's caps (the counters move even with
    no cap set, so caps set later start from the truth). `priced_from`: the profile
    that priced it, which must still hold when this commits."""
    if referral.reward_cents:
        uow.referrers.add_earned(
            referral.referrer_id,
            month_of(referral.earned_at),
            referral.reward_cents,
            priced_from,
            program=referral.program_id,
        )


def give_back_earned(uow: UnitOfWork, referral: Referral) -> None:
    """A rejected or reversed reward no longer counts toward its referrer's caps."""
    if referral.reward_cents and referral.status is not ReferralStatus.AWAITING:
        uow.referrers.add_earned(
            referral.referrer_id,
            month_of(referral.earned_at),
            -referral.reward_cents,
            program=referral.program_id,
        )


def add_referee_reward(
    uow: UnitOfWork, rules: RuleVersion, referral: Referral, earned_at: datetime, now: datetime
) -> None:
    """The referee's own reward, in a double-sided program: it shares its referral's
    fate (held with it, approved or rejected with it)."""
    if not rules.referee_reward_cents:
        return
    uow.rewards.add(
        Reward(
            id=new_id(now),
            referral_id=referral.id,
            user_id=referral.referee_id,
            kind=RewardKind.REFEREE,
            cents=rules.referee_reward_cents,
            status=referral.status,
            created_at=earned_at,
            hold=rules.hold,
            program_id=referral.program_id,
        )
    )


def _referral_by_ordinal(uow: UnitOfWork, referrer: Referrer, ordinal: int) -> Referral | None:
    if ordinal < 1:
        return None
    found = uow.referrals.for_referrer(
        referrer.user_id, ordinal - 1, 1, program=referrer.program_id
    )
    return found[0] if found else None


def _imported_moment(moment: datetime, now: datetime) -> datetime:
    """An import's time in UTC, as stored: so a replay answers exactly what the first did."""
    if moment.tzinfo is None:
        raise InvalidInput("signed_up_at needs a timezone")
    try:
        utc = moment.astimezone(UTC)
    except OverflowError:
        raise InvalidInput("signed_up_at is out of range") from None
    if utc < EARLIEST_IMPORT:
        raise InvalidInput(f"signed_up_at cannot be before {EARLIEST_IMPORT.isoformat()}")
    if utc > now:
        raise InvalidInput("signed_up_at cannot be in the future")
    return utc


def _same_email(a: str | None, b: str | None) -> bool:
    return a is not None and b is not None and a.casefold() == b.casefold()
