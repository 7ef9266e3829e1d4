"""Referrers, referrals, rewards and conversions, in memory."""

from collections.abc import Collection, Sequence
from dataclasses import replace
from datetime import datetime, timedelta

from referrals.adapters.memory.state import State, cents_of, entries, kind_of, transition, user_of
from referrals.domain.codes import normalize_code
from referrals.domain.errors import Conflict
from referrals.domain.model import (
    DEFAULT_PROGRAM,
    Conversion,
    Earnings,
    LineKind,
    Receipt,
    Referral,
    ReferralStatus,
    Referrer,
    Reward,
    RewardKind,
    SignupParties,
    SignupSlot,
)


class MemoryReferrers:
    def __init__(self, state: State) -> None:
        self._s = state

    def get(self, user_id: str, *, program: str = DEFAULT_PROGRAM) -> Referrer | None:
        return self._s.referrers.get((program, user_id))

    def by_code(self, code: str) -> Referrer | None:
        member = self._s.codes.get(normalize_code(code))
        return self._s.referrers[member] if member else None

    def add(self, referrer: Referrer) -> None:
        key, member = normalize_code(referrer.code), (referrer.program_id, referrer.user_id)
        if member in self._s.referrers or key in self._s.codes:
            raise Conflict("referrer or code exists")
        self._s.referrers[member] = referrer
        self._s.codes[key] = member

    def increment_referral_count(self, user_id: str, *, program: str = DEFAULT_PROGRAM) -> Referrer:
        referrer = self._s.referrers[program, user_id]
        updated = replace(referrer, referral_count=referrer.referral_count + 1)
        self._s.referrers[program, user_id] = updated
        return updated

    def give_back_count(self, user_id: str, *, program: str = DEFAULT_PROGRAM) -> None:
        referrer = self._s.referrers[program, user_id]
        counted = replace(referrer, referral_count=referrer.referral_count - 1)
        self._s.referrers[program, user_id] = counted

    def add_earned(
        self,
        user_id: str,
        month: str,
        cents: int,
        seen: Referrer | None = None,
        *,
        program: str = DEFAULT_PROGRAM,
    ) -> None:
        referrer = self._s.referrers[program, user_id]
        if seen is not None and seen.cap_counters != referrer.cap_counters:
            raise Conflict("the referrer's earnings changed meanwhile")
        self._s.referrers[program, user_id] = referrer.counting(month, cents)

    def earnings(self, user_id: str, now: datetime, *, program: str = DEFAULT_PROGRAM) -> Earnings:
        return Earnings.tally(
            (kind_of(e) is LineKind.CLAWBACK, e.status, e.payable_at > now, cents_of(e))
            for e in entries(self._s)
            if user_of(e) == user_id and e.program_id == program
        )


class MemoryReferrals:
    def __init__(self, state: State) -> None:
        self._s = state

    def get(self, referral_id: str) -> Referral | None:
        return self._s.referrals.get(referral_id)

    def by_referee(self, referee_id: str, *, program: str = DEFAULT_PROGRAM) -> Referral | None:
        referral_id = self._s.referees.get((program, referee_id))
        return self._s.referrals[referral_id] if referral_id else None

    def by_email(self, email: str, *, program: str = DEFAULT_PROGRAM) -> Referral | None:
        wanted = email.lower()
        return min(
            (
                r
                for r in self._s.referrals.values()
                if r.program_id == program and r.email is not None and r.email.lower() == wanted
            ),
            key=lambda r: r.id,
            default=None,
        )

    def parties_counted(self, code: str, referee_id: str) -> SignupParties:
        referrers = MemoryReferrers(self._s)
        referrer = referrers.by_code(code)
        if referrer is None:
            return SignupParties(None, None, None)
        program = referrer.program_id
        counted = referrers.increment_referral_count(referrer.user_id, program=program)
        return SignupParties(
            counted,
            self.by_referee(referee_id, program=program),
            referrers.get(referee_id, program=program),
        )

    def add(self, referral: Referral) -> None:
        referee = (referral.program_id, referral.referee_id)
        if referee in self._s.referees or referral.id in self._s.referrals:
            raise Conflict("referee already referred")
        if (referral.program_id, referral.referrer_id) not in self._s.referrers:
            raise Conflict("unknown referrer")
        self._s.referrals[referral.id] = referral
        self._s.referees[referee] = referral.id

    def transition(
        self,
        referral_id: str,
        allowed: Collection[ReferralStatus],
        to: ReferralStatus,
        note: str | None,
    ) -> Referral | None:
        return transition(self._s.referrals, referral_id, allowed, to, note)

    def qualify(
        self,
        referral_id: str,
        to: ReferralStatus,
        hold: timedelta,
        receipt: Receipt,
        reward_cents: int,
    ) -> Referral | None:
        referral = self._s.referrals.get(referral_id)
        if referral is None or referral.status is not ReferralStatus.AWAITING:
            return None
        changed = replace(
            referral, status=to, hold=hold, receipt=receipt, reward_cents=reward_cents
        )
        self._s.referrals[referral_id] = changed
        return changed

    def for_referrer(
        self,
        referrer_id: str,
        after_ordinal: int | None,
        limit: int,
        *,
        program: str = DEFAULT_PROGRAM,
    ) -> Sequence[Referral]:
        rows = sorted(
            (
                r
                for r in self._s.referrals.values()
                if r.referrer_id == referrer_id and r.program_id == program
            ),
            key=lambda r: r.ordinal,
        )
        return [r for r in rows if after_ordinal is None or r.ordinal > after_ordinal][:limit]

    def search(
        self,
        status: ReferralStatus | None,
        referrer_id: str | None,
        after_id: str | None,
        limit: int,
        *,
        program: str | None = None,
    ) -> Sequence[Referral]:
        if referrer_id is not None and program is None:
            program = DEFAULT_PROGRAM
        rows = [
            r
            for r in sorted(self._s.referrals.values(), key=lambda r: r.id)
            if (status is None or r.status is status)
            and (program is None or r.program_id == program)
            and (referrer_id is None or r.referrer_id == referrer_id)
            and (after_id is None or r.id > after_id)
        ]
        return rows[:limit]


class MemoryRewards:
    def __init__(self, state: State) -> None:
        self._s = state

    def add(self, reward: Reward) -> None:
        if reward.id in self._s.rewards or reward.id in self._s.referrals:
            raise Conflict("reward exists")
        self._s.rewards[reward.id] = reward

    def get(self, reward_id: str) -> Reward | None:
        return self._s.rewards.get(reward_id)

    def for_referral(self, referral_id: str) -> Sequence[Reward]:
        return sorted(
            (r for r in self._s.rewards.values() if r.referral_id == referral_id),
            key=lambda r: r.id,
        )

    def held_shares(self, after_id: str | None, limit: int) -> Sequence[Reward]:
        held = (
            r
            for r in self._s.rewards.values()
            if r.kind is RewardKind.SHARE
            and r.status is ReferralStatus.HELD
            and (after_id is None or r.id > after_id)
        )
        return sorted(held, key=lambda r: r.id)[:limit]

    def transition(
        self,
        reward_id: str,
        allowed: Collection[ReferralStatus],
        to: ReferralStatus,
        note: str | None,
    ) -> Reward | None:
        return transition(self._s.rewards, reward_id, allowed, to, note)


class MemoryConversions:
    def __init__(self, state: State) -> None:
        self._s = state

    def add(self, conversion: Conversion) -> None:
        if conversion.external_id in self._s.conversions:
            raise Conflict("conversion exists")
        self._s.conversions[conversion.external_id] = conversion

    def get(self, external_id: str) -> Conversion | None:
        return self._s.conversions.get(external_id)

    def signup_slot(self, user_id: str, *, program: str = DEFAULT_PROGRAM) -> SignupSlot | None:
        return self._s.signup_slots.get((program, user_id))

    def take_signup_slot(self, slot: SignupSlot) -> None:
        key = (slot.program_id, slot.user_id)
        if key in self._s.signup_slots:
            raise Conflict("signup slot taken")
        self._s.signup_slots[key] = slot
