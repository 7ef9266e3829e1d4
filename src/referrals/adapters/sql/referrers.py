"""Referrers, their referrals, the other entries paid to users (rewards) and the
conversions that earn them: the records a signup writes, on SQLAlchemy Core.

The statements of a signup are built once, at import, with bound parameters:
SQLAlchemy caches their compiled form by statement, and building a statement per
call costs more Python than SQLite takes to run it.
"""

from collections.abc import Collection, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    BigInteger,
    Select,
    String,
    Table,
    and_,
    bindparam,
    case,
    func,
    insert,
    literal,
    or_,
    select,
    true,
    union_all,
    update,
)

from referrals.adapters.sql import rows
from referrals.adapters.sql.repository import Repository
from referrals.adapters.sql.schema import conversions, referrals, referrers, rewards, signup_slots
from referrals.domain.codes import normalize_code
from referrals.domain.model import (
    DEFAULT_PROGRAM,
    Conversion,
    Earnings,
    Receipt,
    Referral,
    ReferralStatus,
    Referrer,
    Reward,
    RewardKind,
    SignupParties,
    SignupSlot,
)

# A referrer's row: the user (`key`) in the program (`program`).
_THE_REFERRER = and_(
    referrers.c.program_id == bindparam("program"), referrers.c.user_id == bindparam("key")
)
_REFERRER_BY_ID = select(referrers).where(_THE_REFERRER)
_REFERRER_BY_CODE = select(referrers).where(referrers.c.code_key == bindparam("key"))
_REFERRAL_BY_ID = select(referrals).where(referrals.c.id == bindparam("key"))
_REFERRAL_BY_REFEREE = select(referrals).where(
    referrals.c.program_id == bindparam("program"), referrals.c.referee_id == bindparam("key")
)
# A billing system's customer matched by email: through ix_referrals_program_email,
# both sides lowered by the database, the first referral made.
_REFERRAL_BY_EMAIL = (
    select(referrals)
    .where(
        referrals.c.program_id == bindparam("program"),
        func.lower(referrals.c.email) == func.lower(bindparam("email", type_=String)),
    )
    .order_by(referrals.c.id)
    .limit(1)
)
# One statement: the row lock (PostgreSQL) or the write lock (SQLite) makes the
# read of the old count and the write of the new one indivisible.
_INCREMENT_COUNT = (
    update(referrers)
    .where(_THE_REFERRER)
    .values(referral_count=referrers.c.referral_count + 1)
    .returning(*referrers.c)
)
_GIVE_BACK_COUNT = (
    update(referrers).where(_THE_REFERRER).values(referral_count=referrers.c.referral_count - 1)
)
_referee = referrers.alias("referee")


def _signup_parties(holder: Any, found: Any) -> Select[Any]:
    """A signup's three reads in one statement: each LEFT JOIN finds its row or NULLs.
    `holder`, the code's referrer, is the row for which `found` holds; the referee's
    referral and profile are those in the holder's program."""
    return select(
        *(column.label(f"r_{column.name}") for column in holder.c),
        *(column.label(f"p_{column.name}") for column in referrals.c),
        *(column.label(f"e_{column.name}") for column in _referee.c),
    ).select_from(
        select(literal(1).label("one"))
        .subquery("one")
        .outerjoin(holder, found)
        .outerjoin(
            referrals,
            and_(
                referrals.c.program_id == holder.c.program_id,
                referrals.c.referee_id == bindparam("referee"),
            ),
        )
        .outerjoin(
            _referee,
            and_(
                _referee.c.program_id == holder.c.program_id,
                _referee.c.user_id == bindparam("referee"),
            ),
        )
    )


_code_holder = referrers.alias("code_holder")
_PARTIES = _signup_parties(_code_holder, _code_holder.c.code_key == bindparam("key"))
# PostgreSQL: the code holder's increment in a data-modifying WITH clause (SQLite
# allows no UPDATE there), so that a signup's first statement also takes its ordinal.
# The other joins read the rows as they were before it.
_counted = (
    update(referrers)
    .where(referrers.c.code_key == bindparam("key"))
    .values(referral_count=referrers.c.referral_count + 1)
    .returning(*referrers.c)
    .cte("counted")
)
_PARTIES_COUNTED = _signup_parties(_counted, true())
# Referrer.counting in one statement, relative to the row's values (every SET reads
# the old row), so it needs no read; the WHERE on the counters, when given, makes it
# conditional on the profile the reward was priced from.
_cents, _month = bindparam("cents", type_=BigInteger), bindparam("month", type_=String)
_new_month = and_(_cents > 0, or_(referrers.c.cap_month.is_(None), referrers.c.cap_month < _month))


def _at_least_zero(value: Any) -> Any:
    return case((value < 0, 0), else_=value)  # GREATEST is not SQLite's


_ADD_EARNED = (
    update(referrers)
    .where(_THE_REFERRER)
    .values(
        cap_lifetime_cents=_at_least_zero(referrers.c.cap_lifetime_cents + _cents),
        cap_month=case((_new_month, _month), else_=referrers.c.cap_month),
        cap_month_cents=case(
            (_new_month, _cents),
            (referrers.c.cap_month == _month, _at_least_zero(referrers.c.cap_month_cents + _cents)),
            else_=referrers.c.cap_month_cents,
        ),
    )
)
_ADD_EARNED_IF_UNCHANGED = _ADD_EARNED.where(
    referrers.c.cap_lifetime_cents == bindparam("seen_lifetime"),
    referrers.c.cap_month_cents == bindparam("seen_month_cents"),
    referrers.c.cap_month.is_not_distinct_from(bindparam("seen_month", type_=String)),
)
_INSERT_REFERRER, _INSERT_REFERRAL, _INSERT_REWARD, _INSERT_CONVERSION, _INSERT_SIGNUP_SLOT = (
    insert(table) for table in (referrers, referrals, rewards, conversions, signup_slots)
)
_SIGNUP_SLOT = select(signup_slots).where(
    signup_slots.c.program_id == bindparam("program"), signup_slots.c.user_id == bindparam("key")
)
_CLAWBACK = RewardKind.CLAWBACK.value


def _earnings_rows(table: Table, user: Any, cents: Any, clawback: Any) -> Select[Any]:
    later = case((table.c.payable_at > bindparam("now"), 1), else_=0)
    return select(
        clawback.label("clawback"), table.c.status, later.label("later"), cents.label("cents")
    ).where(user == bindparam("user"), table.c.program_id == bindparam("program"))


# A user's entries by state, in one statement: their rewards as a referrer and the
# entries paid to them. Grouped outside the union, on plain columns: PostgreSQL would
# not match a CASE with bound parameters in GROUP BY to the same CASE in the select.
_by_state = union_all(
    _earnings_rows(referrals, referrals.c.referrer_id, referrals.c.reward_cents, literal(0)),
    _earnings_rows(
        rewards, rewards.c.user_id, rewards.c.cents, case((rewards.c.kind == _CLAWBACK, 1), else_=0)
    ),
).subquery("by_state")
_EARNINGS = select(
    _by_state.c.clawback, _by_state.c.status, _by_state.c.later, func.sum(_by_state.c.cents)
).group_by(_by_state.c.clawback, _by_state.c.status, _by_state.c.later)


class SqlReferrers(Repository):
    def get(self, user_id: str, *, program: str = DEFAULT_PROGRAM) -> Referrer | None:
        row = self._execute(_REFERRER_BY_ID, {"key": user_id, "program": program}).first()
        return rows.referrer(row) if row else None

    def by_code(self, code: str) -> Referrer | None:
        row = self._execute(_REFERRER_BY_CODE, {"key": normalize_code(code)}).first()
        return rows.referrer(row) if row else None

    def add(self, referrer: Referrer) -> None:
        values = {
            "program_id": referrer.program_id,
            "user_id": referrer.user_id,
            "code": referrer.code,
            "code_key": normalize_code(referrer.code),
            "email": referrer.email,
            "referral_count": referrer.referral_count,
            "created_at": referrer.created_at,
            "ip_hash": referrer.ip_hash,
            "device_hash": referrer.device_hash,
        }
        self._execute(_INSERT_REFERRER, values)

    def increment_referral_count(self, user_id: str, *, program: str = DEFAULT_PROGRAM) -> Referrer:
        found = self._execute(_INCREMENT_COUNT, {"key": user_id, "program": program})
        return rows.referrer(found.one())

    def give_back_count(self, user_id: str, *, program: str = DEFAULT_PROGRAM) -> None:
        values = {"key": user_id, "program": program}
        self._change_one(_GIVE_BACK_COUNT, values, f"no referrer {user_id!r}")

    def add_earned(
        self,
        user_id: str,
        month: str,
        cents: int,
        seen: Referrer | None = None,
        *,
        program: str = DEFAULT_PROGRAM,
    ) -> None:
        values: dict[str, object] = {
            "key": user_id,
            "program": program,
            "month": month,
            "cents": cents,
        }
        statement = _ADD_EARNED
        if seen is not None:
            statement = _ADD_EARNED_IF_UNCHANGED
            values |= {
                "seen_lifetime": seen.cap_lifetime_cents,
                "seen_month_cents": seen.cap_month_cents,
                "seen_month": seen.cap_month,
            }
        self._change_one(statement, values, "the referrer's earnings changed meanwhile")

    def earnings(self, user_id: str, now: datetime, *, program: str = DEFAULT_PROGRAM) -> Earnings:
        found = self._execute(_EARNINGS, {"user": user_id, "now": now, "program": program})
        return Earnings.tally(
            (bool(clawback), status, bool(later), int(cents))
            for clawback, status, later, cents in found
        )


class SqlReferrals(Repository):
    def get(self, referral_id: str) -> Referral | None:
        row = self._execute(_REFERRAL_BY_ID, {"key": referral_id}).first()
        return rows.referral(row) if row else None

    def by_referee(self, referee_id: str, *, program: str = DEFAULT_PROGRAM) -> Referral | None:
        values = {"key": referee_id, "program": program}
        row = self._execute(_REFERRAL_BY_REFEREE, values).first()
        return rows.referral(row) if row else None

    def by_email(self, email: str, *, program: str = DEFAULT_PROGRAM) -> Referral | None:
        row = self._execute(_REFERRAL_BY_EMAIL, {"email": email, "program": program}).first()
        return rows.referral(row) if row else None

    def parties_counted(self, code: str, referee_id: str) -> SignupParties:
        values = {"key": normalize_code(code), "referee": referee_id}
        if self._postgresql:
            return rows.parties(self._execute(_PARTIES_COUNTED, values).one())
        parties = rows.parties(self._execute(_PARTIES, values).one())
        if parties.referrer is None:
            return parties
        holder = parties.referrer
        counted = SqlReferrers(self._conn).increment_referral_count(
            holder.user_id, program=holder.program_id
        )
        return SignupParties(counted, parties.earlier, parties.referee)

    def add(self, referral: Referral) -> None:
        values = {
            "id": referral.id,
            "program_id": referral.program_id,
            "referee_id": referral.referee_id,
            "referrer_id": referral.referrer_id,
            "code": referral.code,
            "email": referral.email,
            "ordinal": referral.ordinal,
            "reward_cents": referral.reward_cents,
            "status": referral.status.value,
            "created_at": referral.created_at,
            "payout_period": referral.payout_period,
            "payable_at": referral.payable_at,
            "receipt": rows.receipt_json(referral.receipt),
            "note": referral.note,
            "click_id": referral.click_id,
        }
        self._execute(_INSERT_REFERRAL, values)

    def transition(
        self,
        referral_id: str,
        allowed: Collection[ReferralStatus],
        to: ReferralStatus,
        note: str | None,
    ) -> Referral | None:
        row = self._transition(referrals, referral_id, allowed, to, note)
        return rows.referral(row) if row else None

    def qualify(
        self,
        referral_id: str,
        to: ReferralStatus,
        hold: timedelta,
        receipt: Receipt,
        reward_cents: int,
    ) -> Referral | None:
        # Conditional on the status, as transition: one conversion qualifies it.
        row = self._execute(
            update(referrals)
            .where(
                referrals.c.id == referral_id,
                referrals.c.status == ReferralStatus.AWAITING.value,
            )
            .values(
                status=to.value,
                payable_at=referrals.c.created_at + hold // timedelta(microseconds=1),
                receipt=rows.receipt_json(receipt),
                reward_cents=reward_cents,
            )
            .returning(*referrals.c)
        ).first()
        return rows.referral(row) if row else None

    def for_referrer(
        self,
        referrer_id: str,
        after_ordinal: int | None,
        limit: int,
        *,
        program: str = DEFAULT_PROGRAM,
    ) -> Sequence[Referral]:
        query = select(referrals).where(
            referrals.c.program_id == program, referrals.c.referrer_id == referrer_id
        )
        if after_ordinal is not None:
            query = query.where(referrals.c.ordinal > after_ordinal)
        query = query.order_by(referrals.c.ordinal).limit(limit)
        return [rows.referral(row) for row in self._execute(query)]

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
        query = select(referrals)
        if program is not None:
            query = query.where(referrals.c.program_id == program)
        if status is not None:
            query = query.where(referrals.c.status == status.value)
        if referrer_id is not None:
            query = query.where(referrals.c.referrer_id == referrer_id)
        if after_id is not None:
            query = query.where(referrals.c.id > after_id)
        query = query.order_by(referrals.c.id).limit(limit)
        return [rows.referral(row) for row in self._execute(query)]


class SqlRewards(Repository):
    def add(self, reward: Reward) -> None:
        values = {
            "id": reward.id,
            "program_id": reward.program_id,
            "referral_id": reward.referral_id,
            "user_id": reward.user_id,
            "kind": reward.kind.value,
            "cents": reward.cents,
            "status": reward.status.value,
            "created_at": reward.created_at,
            "payable_at": reward.payable_at,
            "payout_period": reward.payout_period,
            "note": reward.note,
            "sale_id": reward.sale_id,
        }
        self._execute(_INSERT_REWARD, values)

    def get(self, reward_id: str) -> Reward | None:
        row = self._execute(select(rewards).where(rewards.c.id == reward_id)).first()
        return rows.reward(row) if row else None

    def for_referral(self, referral_id: str) -> Sequence[Reward]:
        query = select(rewards).where(rewards.c.referral_id == referral_id).order_by(rewards.c.id)
        return [rows.reward(row) for row in self._execute(query)]

    def held_shares(self, after_id: str | None, limit: int) -> Sequence[Reward]:
        # ix_rewards_status_id: the few held entries, in id order.
        query = select(rewards).where(
            rewards.c.status == ReferralStatus.HELD.value, rewards.c.kind == RewardKind.SHARE.value
        )
        if after_id is not None:
            query = query.where(rewards.c.id > after_id)
        query = query.order_by(rewards.c.id).limit(limit)
        return [rows.reward(row) for row in self._execute(query)]

    def transition(
        self,
        reward_id: str,
        allowed: Collection[ReferralStatus],
        to: ReferralStatus,
        note: str | None,
    ) -> Reward | None:
        row = self._transition(rewards, reward_id, allowed, to, note)
        return rows.reward(row) if row else None


class SqlConversions(Repository):
    def add(self, conversion: Conversion) -> None:
        values = {
            "external_id": conversion.external_id,
            "user_id": conversion.user_id,
            "event": conversion.event,
            "value_cents": conversion.value_cents,
            "created_at": conversion.created_at,
            "referral_id": conversion.referral_id,
            "awaits_signup": conversion.awaits_signup,
            "program_id": conversion.program_id,
        }
        self._execute(_INSERT_CONVERSION, values)

    def get(self, external_id: str) -> Conversion | None:
        query = select(conversions).where(conversions.c.external_id == external_id)
        row = self._execute(query).first()
        return rows.conversion(row) if row else None

    def signup_slot(self, user_id: str, *, program: str = DEFAULT_PROGRAM) -> SignupSlot | None:
        row = self._execute(_SIGNUP_SLOT, {"key": user_id, "program": program}).first()
        return SignupSlot(row.user_id, row.external_id, row.program_id) if row else None

    def take_signup_slot(self, slot: SignupSlot) -> None:
        values = {
            "program_id": slot.program_id,
            "user_id": slot.user_id,
            "external_id": slot.external_id,
        }
        self._execute(_INSERT_SIGNUP_SLOT, values)
