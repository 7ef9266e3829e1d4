"""The store ports on SQLAlchemy Core; rows are mapped to domain values explicitly."""

import heapq
import json
from collections.abc import Collection, Iterator, Sequence
from datetime import datetime, timedelta
from itertools import groupby
from operator import itemgetter
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    Engine,
    MetaData,
    Row,
    Select,
    String,
    Table,
    and_,
    bindparam,
    case,
    delete,
    func,
    insert,
    literal,
    or_,
    select,
    text,
    true,
    union_all,
    update,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.schema import CreateTable, DropTable

from referrals.adapters.sql.auth_failures import count_failure
from referrals.adapters.sql.failures import StorageWatch, require_room
from referrals.adapters.sql.group_commit import GroupCommit
from referrals.adapters.sql.schema import (
    api_keys,
    audit_log,
    conversions,
    outbox,
    payout_runs,
    referrals,
    referrers,
    rewards,
    service_secrets,
    sessions,
    signup_slots,
)
from referrals.adapters.sql.stats import SqlStats
from referrals.adapters.sql.tx import Tx
from referrals.adapters.times import from_micros, to_micros
from referrals.domain.codes import normalize_code
from referrals.domain.errors import Conflict
from referrals.domain.model import (
    ApiKey,
    AuditEntry,
    Conversion,
    DashboardSession,
    Earnings,
    Event,
    EventStatus,
    LineKind,
    PayoutLine,
    PayoutRun,
    Receipt,
    Referral,
    ReferralStatus,
    Referrer,
    Reward,
    RewardKind,
    Role,
    RunStatus,
    SignupParties,
    SignupSlot,
    first_id_at,
    payout_floor,
)

AWAITING, PENDING, HELD, PROCESSING, PAID, CLAWED_BACK = (
    ReferralStatus.AWAITING.value,
    ReferralStatus.PENDING.value,
    ReferralStatus.HELD.value,
    ReferralStatus.PROCESSING.value,
    ReferralStatus.PAID.value,
    ReferralStatus.CLAWED_BACK.value,
)
CLAWBACK = RewardKind.CLAWBACK.value

# The statements of a signup are built once, with bound parameters: building a
# Core statement and its cache key on every call cost more than SQLite took to
# run it (a profile of the signup path, BENCHMARKS.md).
_REFERRER_BY_ID = select(referrers).where(referrers.c.user_id == bindparam("key"))
_REFERRER_BY_CODE = select(referrers).where(referrers.c.code_key == bindparam("key"))
_REFERRAL_BY_REFEREE = select(referrals).where(referrals.c.referee_id == bindparam("key"))
# One statement: the row lock (PostgreSQL) or the write lock (SQLite) makes the
# read of the old count and the write of the new one indivisible.
_INCREMENT_COUNT = (
    update(referrers)
    .where(referrers.c.user_id == bindparam("key"))
    .values(referral_count=referrers.c.referral_count + 1)
    .returning(*referrers.c)
)
_GIVE_BACK_COUNT = (
    update(referrers)
    .where(referrers.c.user_id == bindparam("key"))
    .values(referral_count=referrers.c.referral_count - 1)
)
_referee = referrers.alias("referee")


def _signup_parties(holder: Any, found: Any) -> Select[Any]:
    """A signup's three reads in one statement: each LEFT JOIN finds its row or NULLs.
    `holder`, the code's referrer, is the row for which `found` holds."""
    return select(
        *(column.label(f"r_{column.name}") for column in holder.c),
        *(column.label(f"p_{column.name}") for column in referrals.c),
        *(column.label(f"e_{column.name}") for column in _referee.c),
    ).select_from(
        select(literal(1).label("one"))
        .subquery("one")
        .outerjoin(holder, found)
        .outerjoin(referrals, referrals.c.referee_id == bindparam("referee"))
        .outerjoin(_referee, _referee.c.user_id == bindparam("referee"))
    )


_code_holder = referrers.alias("code_holder")
_PARTIES = _signup_parties(_code_holder, _code_holder.c.code_key == bindparam("code"))
# PostgreSQL: with the code holder's increment, in a WITH clause (SQLite allows no
# UPDATE there), so that a signup's first round trip also takes its ordinal. The
# other joins read the rows as they were before it.
_counted = (
    update(referrers)
    # "key", not "code": compiled with its values' names as column keys, an UPDATE
    # would also SET the columns they name.
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
    .where(referrers.c.user_id == bindparam("key"))
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
_INSERT_REFERRER, _INSERT_REFERRAL, _INSERT_EVENT, _INSERT_AUDIT = (
    insert(table) for table in (referrers, referrals, outbox, audit_log)
)
_INSERT_REWARD, _INSERT_CONVERSION = insert(rewards), insert(conversions)
_SIGNUP_SLOT = select(signup_slots).where(signup_slots.c.user_id == bindparam("key"))
_INSERT_SIGNUP_SLOT = insert(signup_slots)
_HEALTH_CHECK = text("SELECT 1")
_WRITE_CHECK = text("SELECT version_num FROM alembic_version FOR UPDATE")
# Outbox delivery, every tenth of a second while signups come in. Built once: built
# per call, its two statements cost more Python than the round's events (BENCHMARKS.md).
_DUE = and_(
    outbox.c.status == EventStatus.PENDING.value, outbox.c.next_attempt_at <= bindparam("now")
)
_CLAIM_DUE = (
    update(outbox)
    .where(
        outbox.c.id.in_(
            select(outbox.c.id)
            .where(_DUE)
            .order_by(outbox.c.next_attempt_at, outbox.c.id)
            .limit(bindparam("limit", type_=BigInteger))
        ),
        _DUE,
    )
    .values(next_attempt_at=bindparam("until", type_=BigInteger))
    .returning(*outbox.c)
)
# The ids as one JSON array: one parameter however many there are, so the statement
# is compiled once (an IN list's parameters are expanded on every call).
_IDS_FROM_JSON = {
    "sqlite": "SELECT value FROM json_each(:ids)",
    "postgresql": "SELECT json_array_elements_text(CAST(:ids AS json)) AS value",
}
_DELIVERED = {
    dialect: update(outbox)
    .where(outbox.c.id.in_(text(ids).columns(value=String)))
    .values(
        status=EventStatus.DELIVERED.value,
        attempts=outbox.c.attempts + 1,
        next_attempt_at=None,
        last_error=None,
    )
    for dialect, ids in _IDS_FROM_JSON.items()
}


def _earnings_rows(table: Table, user: Any, cents: Any, clawback: Any) -> Select[Any]:
    later = case((table.c.payable_at > bindparam("now"), 1), else_=0)
    return select(
        clawback.label("clawback"), table.c.status, later.label("later"), cents.label("cents")
    ).where(user == bindparam("user"))


# A user's entries by state, in one round trip: their rewards as a referrer and the
# entries paid to them. Grouped outside the union, on plain columns: PostgreSQL would
# not match a CASE with bound parameters in GROUP BY to the same CASE in the select.
_by_state = union_all(
    _earnings_rows(referrals, referrals.c.referrer_id, referrals.c.reward_cents, literal(0)),
    _earnings_rows(
        rewards, rewards.c.user_id, rewards.c.cents, case((rewards.c.kind == CLAWBACK, 1), else_=0)
    ),
).subquery("by_state")
_EARNINGS = select(
    _by_state.c.clawback, _by_state.c.status, _by_state.c.later, func.sum(_by_state.c.cents)
).group_by(_by_state.c.clawback, _by_state.c.status, _by_state.c.later)

# Where a release keeps the users it carries forward, between the statements that
# release their referrals and their entries: each statement changes the totals the
# next would compute. A temporary table of this connection, dropped before returning.
_released = Table(
    "release_totals",
    MetaData(),
    Column("user_id", String(128), primary_key=True),
    Column("cents", BigInteger, nullable=False),
    prefixes=["TEMPORARY"],
)
# assign_batch's cursor once the referrals are walked: this prefix, then the last entry id.
_ENTRIES = "rewards:"


class SqlReferrers:
    def __init__(self, tx: Tx) -> None:
        self._tx = tx

    def get(self, user_id: str) -> Referrer | None:
        row = self._tx.execute(_REFERRER_BY_ID, {"key": user_id}).first()
        return _referrer(row) if row else None

    def by_code(self, code: str) -> Referrer | None:
        row = self._tx.execute(_REFERRER_BY_CODE, {"key": normalize_code(code)}).first()
        return _referrer(row) if row else None

    def add(self, referrer: Referrer) -> None:
        values = {
            "user_id": referrer.user_id,
            "code": referrer.code,
            "code_key": normalize_code(referrer.code),
            "email": referrer.email,
            "referral_count": referrer.referral_count,
            "created_at": to_micros(referrer.created_at),
            "ip_hash": referrer.ip_hash,
            "device_hash": referrer.device_hash,
        }
        self._tx.insert(_INSERT_REFERRER, values)

    def increment_referral_count(self, user_id: str) -> Referrer:
        [row] = self._tx.rows(_INCREMENT_COUNT, {"key": user_id})
        return _referrer(row)

    def give_back_count(self, user_id: str) -> None:
        self._tx.update_one(_GIVE_BACK_COUNT, {"key": user_id}, f"no referrer {user_id!r}")

    def add_earned(
        self, user_id: str, month: str, cents: int, seen: Referrer | None = None
    ) -> None:
        values: dict[str, object] = {"key": user_id, "month": month, "cents": cents}
        statement = _ADD_EARNED
        if seen is not None:
            statement = _ADD_EARNED_IF_UNCHANGED
            values |= {
                "seen_lifetime": seen.cap_lifetime_cents,
                "seen_month_cents": seen.cap_month_cents,
                "seen_month": seen.cap_month,
            }
        self._tx.update_one(statement, values, "the referrer's earnings changed meanwhile")

    def earnings(self, user_id: str, now: datetime) -> Earnings:
        rows = self._tx.execute(_EARNINGS, {"user": user_id, "now": to_micros(now)})
        return Earnings.tally(
            (bool(clawback), status, bool(later), int(cents))
            for clawback, status, later, cents in rows
        )


class SqlReferrals:
    def __init__(self, tx: Tx) -> None:
        self._tx = tx

    def get(self, referral_id: str) -> Referral | None:
        row = self._tx.execute(select(referrals).where(referrals.c.id == referral_id)).first()
        return _referral(row) if row else None

    def by_referee(self, referee_id: str) -> Referral | None:
        row = self._tx.execute(_REFERRAL_BY_REFEREE, {"key": referee_id}).first()
        return _referral(row) if row else None

    def parties_counted(self, code: str, referee_id: str) -> SignupParties:
        key = normalize_code(code)
        if self._tx.dialect.name == "postgresql":
            [row] = self._tx.rows(_PARTIES_COUNTED, {"key": key, "referee": referee_id})
            return _parties(row)
        [row] = self._tx.rows(_PARTIES, {"code": key, "referee": referee_id})
        parties = _parties(row)
        if parties.referrer is None:
            return parties
        counted = SqlReferrers(self._tx).increment_referral_count(parties.referrer.user_id)
        return SignupParties(counted, parties.earlier, parties.referee)

    def add(self, referral: Referral) -> None:
        values = {
            "id": referral.id,
            "referee_id": referral.referee_id,
            "referrer_id": referral.referrer_id,
            "code": referral.code,
            "email": referral.email,
            "ordinal": referral.ordinal,
            "reward_cents": referral.reward_cents,
            "status": referral.status.value,
            "created_at": to_micros(referral.created_at),
            "payout_period": referral.payout_period,
            "payable_at": to_micros(referral.payable_at),
            "receipt": _receipt_json(referral.receipt),
            "note": referral.note,
        }
        self._tx.insert(_INSERT_REFERRAL, values)

    def transition(
        self,
        referral_id: str,
        allowed: Collection[ReferralStatus],
        to: ReferralStatus,
        note: str | None,
    ) -> Referral | None:
        row = _transition(self._tx, referrals, referral_id, allowed, to, note)
        return _referral(row) if row else None

    def qualify(
        self,
        referral_id: str,
        to: ReferralStatus,
        hold: timedelta,
        receipt: Receipt,
        reward_cents: int,
    ) -> Referral | None:
        # Conditional on the status, as transition: one conversion qualifies it.
        row = self._tx.execute(
            update(referrals)
            .where(referrals.c.id == referral_id, referrals.c.status == AWAITING)
            .values(
                status=to.value,
                payable_at=referrals.c.created_at + hold // timedelta(microseconds=1),
                receipt=_receipt_json(receipt),
                reward_cents=reward_cents,
            )
            .returning(*referrals.c)
        ).first()
        return _referral(row) if row else None

    def for_referrer(
        self, referrer_id: str, after_ordinal: int | None, limit: int
    ) -> Sequence[Referral]:
        query = select(referrals).where(referrals.c.referrer_id == referrer_id)
        if after_ordinal is not None:
            query = query.where(referrals.c.ordinal > after_ordinal)
        query = query.order_by(referrals.c.ordinal).limit(limit)
        return [_referral(row) for row in self._tx.execute(query)]

    def search(
        self,
        status: ReferralStatus | None,
        referrer_id: str | None,
        after_id: str | None,
        limit: int,
    ) -> Sequence[Referral]:
        query = select(referrals)
        if status is not None:
            query = query.where(referrals.c.status == status.value)
        if referrer_id is not None:
            query = query.where(referrals.c.referrer_id == referrer_id)
        if after_id is not None:
            query = query.where(referrals.c.id > after_id)
        query = query.order_by(referrals.c.id).limit(limit)
        return [_referral(row) for row in self._tx.execute(query)]


class SqlRewards:
    def __init__(self, tx: Tx) -> None:
        self._tx = tx

    def add(self, reward: Reward) -> None:
        values = {
            "id": reward.id,
            "referral_id": reward.referral_id,
            "user_id": reward.user_id,
            "kind": reward.kind.value,
            "cents": reward.cents,
            "status": reward.status.value,
            "created_at": to_micros(reward.created_at),
            "payable_at": to_micros(reward.payable_at),
            "payout_period": reward.payout_period,
            "note": reward.note,
        }
        self._tx.insert(_INSERT_REWARD, values)

    def get(self, reward_id: str) -> Reward | None:
        row = self._tx.execute(select(rewards).where(rewards.c.id == reward_id)).first()
        return _reward(row) if row else None

    def for_referral(self, referral_id: str) -> Sequence[Reward]:
        query = select(rewards).where(rewards.c.referral_id == referral_id).order_by(rewards.c.id)
        return [_reward(row) for row in self._tx.execute(query)]

    def transition(
        self,
        reward_id: str,
        allowed: Collection[ReferralStatus],
        to: ReferralStatus,
        note: str | None,
    ) -> Reward | None:
        row = _transition(self._tx, rewards, reward_id, allowed, to, note)
        return _reward(row) if row else None


class SqlConversions:
    def __init__(self, tx: Tx) -> None:
        self._tx = tx

    def add(self, conversion: Conversion) -> None:
        values = {
            "external_id": conversion.external_id,
            "user_id": conversion.user_id,
            "event": conversion.event,
            "value_cents": conversion.value_cents,
            "created_at": to_micros(conversion.created_at),
            "referral_id": conversion.referral_id,
            "awaits_signup": conversion.awaits_signup,
        }
        _insert(self._tx, _INSERT_CONVERSION, values)

    def get(self, external_id: str) -> Conversion | None:
        row = self._tx.execute(
            select(conversions).where(conversions.c.external_id == external_id)
        ).first()
        return _conversion(row) if row else None

    def signup_slot(self, user_id: str) -> SignupSlot | None:
        row = self._tx.execute(_SIGNUP_SLOT, {"key": user_id}).first()
        return SignupSlot(row.user_id, row.external_id) if row else None

    def take_signup_slot(self, slot: SignupSlot) -> None:
        values = {"user_id": slot.user_id, "external_id": slot.external_id}
        _insert(self._tx, _INSERT_SIGNUP_SLOT, values)


class SqlApiKeys:
    def __init__(self, tx: Tx) -> None:
        self._tx = tx

    def add(self, key: ApiKey) -> None:
        values = {
            "id": key.id,
            "key_hash": key.key_hash,
            "role": key.role.value,
            "created_at": to_micros(key.created_at),
            "name": key.name,
            "expires_at": _micros_or_none(key.expires_at),
            "revoked_at": _micros_or_none(key.revoked_at),
            "last_used_at": _micros_or_none(key.last_used_at),
        }
        _insert(self._tx, insert(api_keys), values)

    def by_hash(self, key_hash: str) -> ApiKey | None:
        row = self._tx.execute(select(api_keys).where(api_keys.c.key_hash == key_hash)).first()
        return _api_key(row) if row else None

    def get(self, key_id: str) -> ApiKey | None:
        row = self._tx.execute(select(api_keys).where(api_keys.c.id == key_id)).first()
        return _api_key(row) if row else None

    def list(self) -> Sequence[ApiKey]:
        query = select(api_keys).order_by(api_keys.c.created_at, api_keys.c.id)
        return [_api_key(row) for row in self._tx.execute(query)]

    def revoke(self, key: ApiKey, at: datetime) -> None:
        self._update_one(key, {"revoked_at": to_micros(at)})

    def expire(self, key: ApiKey, at: datetime) -> None:
        read = api_keys.c.expires_at.is_not_distinct_from(_micros_or_none(key.expires_at))
        self._update_one(key, {"expires_at": to_micros(at)}, read)

    def _update_one(self, key: ApiKey, values: dict[str, Any], *conditions: Any) -> None:
        """Change an unrevoked key, or raise Conflict: one conditional statement, so a
        concurrent revocation either comes first (nothing changes) or waits for this."""
        changed = self._tx.execute(
            update(api_keys)
            .where(api_keys.c.id == key.id, api_keys.c.revoked_at.is_(None), *conditions)
            .values(**values)
        ).rowcount
        if changed != 1:
            raise Conflict(f"key {key.id} changed meanwhile")

    def touch(self, key_hash: str, at: datetime, stale_before: datetime) -> None:
        last = api_keys.c.last_used_at
        self._tx.execute(
            update(api_keys)
            .where(
                api_keys.c.key_hash == key_hash,
                or_(last.is_(None), last <= to_micros(stale_before)),
            )
            .values(last_used_at=to_micros(at))
        )

    def count(self) -> int:
        return int(self._tx.execute(select(func.count()).select_from(api_keys)).scalar_one())

    def first_created_at(self) -> datetime | None:
        first = self._tx.execute(select(func.min(api_keys.c.created_at))).scalar_one()
        return from_micros(first) if first is not None else None


class SqlSessions:
    def __init__(self, tx: Tx) -> None:
        self._tx = tx

    def add(self, session: DashboardSession) -> None:
        values = {
            "id": session.id,
            "key_id": session.key_id,
            "created_at": to_micros(session.created_at),
            "expires_at": to_micros(session.expires_at),
            "ended_at": _micros_or_none(session.ended_at),
        }
        _insert(self._tx, insert(sessions), values)

    def get(self, key_id: str, session_id: str) -> DashboardSession | None:
        row = self._tx.execute(
            select(sessions).where(sessions.c.id == session_id, sessions.c.key_id == key_id)
        ).first()
        if row is None:
            return None
        return DashboardSession(
            row.id,
            row.key_id,
            from_micros(row.created_at),
            from_micros(row.expires_at),
            _time_or_none(row.ended_at),
        )

    def end(self, session: DashboardSession, at: datetime) -> None:
        self._tx.execute(
            update(sessions)
            .where(sessions.c.id == session.id, sessions.c.ended_at.is_(None))
            .values(ended_at=to_micros(at))
        )


class SqlSecrets:
    def __init__(self, tx: Tx) -> None:
        self._tx = tx

    def get(self, name: str) -> str | None:
        query = select(service_secrets.c.value).where(service_secrets.c.name == name)
        value: str | None = self._tx.execute(query).scalar_one_or_none()
        return value

    def add(self, name: str, value: str, created_at: datetime) -> None:
        values = {"name": name, "value": value, "created_at": to_micros(created_at)}
        _insert(self._tx, insert(service_secrets), values)


# The advisory lock serializing completions on PostgreSQL (any constant, the same in
# every process; migrate.py's PG_MIGRATION_LOCK is another).
PG_CHAIN_LOCK = 7_210_115


class SqlPayouts:
    def __init__(self, tx: Tx) -> None:
        self._tx = tx

    def get(self, period: str) -> PayoutRun | None:
        row = self._tx.execute(select(payout_runs).where(payout_runs.c.period == period)).first()
        return _run(row) if row else None

    def list(self) -> Sequence[PayoutRun]:
        query = select(payout_runs).order_by(payout_runs.c.period.desc())
        return [_run(row) for row in self._tx.execute(query)]

    def last_completed(self) -> PayoutRun | None:
        query = (
            select(payout_runs)
            .where(payout_runs.c.status == RunStatus.COMPLETED.value)
            .order_by(payout_runs.c.completed_at.desc())
            .limit(1)
        )
        row = self._tx.execute(query).first()
        return _run(row) if row else None

    def completed_before(self, period: str) -> PayoutRun | None:
        query = (
            select(payout_runs)
            .where(
                payout_runs.c.period < period,
                payout_runs.c.status == RunStatus.COMPLETED.value,
            )
            .order_by(payout_runs.c.period.desc())
            .limit(1)
        )
        row = self._tx.execute(query).first()
        return _run(row) if row else None

    def claim(
        self, period: str, cutoff: datetime, owner: str, now: datetime, until: datetime
    ) -> bool:
        lease = {"lease_owner": owner, "lease_expires_at": to_micros(until)}
        taken = self._tx.execute(
            update(payout_runs)
            .where(
                payout_runs.c.period == period,
                payout_runs.c.status != RunStatus.COMPLETED.value,
                or_(
                    payout_runs.c.lease_expires_at.is_(None),
                    payout_runs.c.lease_expires_at < to_micros(now),
                    payout_runs.c.lease_owner == owner,
                ),
            )
            .values(status=RunStatus.RUNNING.value, error=None, **lease)
        )
        if taken.rowcount == 1:
            return True
        if self.get(period) is not None:
            return False
        values = {
            "period": period,
            "status": RunStatus.RUNNING.value,
            "cutoff": to_micros(cutoff),
            "started_at": to_micros(now),
            **lease,
        }
        try:
            _insert(self._tx, insert(payout_runs), values)
        except Conflict:
            return False  # another process created the run first: it holds the lease
        return True

    def renew(self, period: str, owner: str, until: datetime) -> bool:
        renewed = self._tx.execute(
            update(payout_runs)
            .where(
                payout_runs.c.period == period,
                payout_runs.c.lease_owner == owner,
                payout_runs.c.status == RunStatus.RUNNING.value,
            )
            .values(lease_expires_at=to_micros(until))
        )
        return renewed.rowcount == 1

    def assign_batch(
        self, period: str, cutoff: datetime, limit: int, after: str | None = None
    ) -> tuple[int, str | None]:
        # Two walks by id, one per table: the referrals' own rewards, then the other
        # entries. The cursor is the last referral id, or _ENTRIES and the last entry
        # id once the referrals are done; a batch that finds fewer than `limit`
        # referrals fills up with entries, so a short batch means both are done.
        moved = 0
        if after is None or not after.startswith(_ENTRIES):
            moved, after, more = self._walk(referrals, period, cutoff, limit, after)
            if more:
                return moved, after
            after = _ENTRIES
        entries, last, _ = self._walk(
            rewards, period, cutoff, limit - moved, after.removeprefix(_ENTRIES) or None
        )
        return moved + entries, _ENTRIES + (last or "")

    def _walk(
        self, table: Table, period: str, cutoff: datetime, limit: int, after: str | None
    ) -> tuple[int, str | None, bool]:
        """Move up to `limit` of `table`'s eligible rows after `after` by id to `period`.

        Returns how many moved, the id it stopped at, and whether rows may be left.
        """
        moved = 0
        while moved < limit:
            wanted = limit - moved
            eligible = [table.c.status == PENDING, table.c.payable_at < to_micros(cutoff)]
            if after is not None:
                # Start past the rewards earlier batches moved: on PostgreSQL their old
                # index entries stay until vacuum, and every batch stepped over all of
                # them (batches slowed from 1.3 s to 1.9 s over a run of 1M rewards).
                eligible.append(table.c.id > after)
            batch = (
                select(table.c.id).where(*eligible).order_by(table.c.id).limit(wanted).subquery()
            )
            found, upper = self._tx.execute(select(func.count(), func.max(batch.c.id))).one()
            if upper is None:
                return moved, after, False
            # The status condition is re-checked under the row lock (PostgreSQL), so a
            # reward another period's run took meanwhile is skipped, not stolen.
            moved += self._tx.execute(
                update(table)
                .where(*eligible, table.c.id <= upper)
                .values(status=PROCESSING, payout_period=period)
            ).rowcount
            after = upper
            if found < wanted:
                return moved, after, False
            # A full batch of which some left the pending state since it was read
            # (a review, on PostgreSQL): go on, a short batch would end the run's walk.
        return moved, after, True

    def release(self, period: str, minimum_cents: int) -> tuple[int, int]:
        assigned = [
            (referrals, referrals.c.referrer_id, referrals.c.reward_cents),
            (rewards, rewards.c.user_id, rewards.c.cents),
        ]
        per_table = [
            select(user.label("user_id"), func.sum(cents).label("cents"))
            .where(table.c.payout_period == period, table.c.status == PROCESSING)
            .group_by(user)
            for table, user, cents in assigned
        ]
        totals = union_all(*per_table).subquery("totals")
        total = func.sum(totals.c.cents)
        # Below the minimum, or negative whatever the minimum: a total of zero settles
        # (a clawback offset by new rewards), since paying nothing pays nobody twice.
        below = (
            select(totals.c.user_id, total)
            .group_by(totals.c.user_id)
            .having(total < payout_floor(minimum_cents))
        )
        # No try/finally: after a failure the unit of work rolls back, and the CREATE
        # with it (PostgreSQL's DDL is transactional; so is SQLite's, savepoints too).
        self._tx.execute(CreateTable(_released))
        self._tx.execute(insert(_released).from_select(["user_id", "cents"], below))
        for table, user, _ in assigned:
            self._tx.execute(
                update(table)
                .where(
                    table.c.payout_period == period,
                    table.c.status == PROCESSING,
                    user.in_(select(_released.c.user_id)),
                )
                .values(status=PENDING, payout_period=None)
            )
        users, cents = self._tx.execute(
            select(
                func.count(),
                func.coalesce(
                    func.sum(case((_released.c.cents > 0, _released.c.cents), else_=0)), 0
                ),
            )
        ).one()
        self._tx.execute(DropTable(_released))
        return int(users), int(cents)

    def lines(self, period: str) -> Iterator[PayoutLine]:
        return self._lines(referrals.c.payout_period == period, rewards.c.payout_period == period)

    def preview(self, period: str, cutoff: datetime) -> Iterator[PayoutLine]:
        def payable(table: Table) -> Any:
            return or_(
                and_(table.c.payout_period == period, table.c.status == PROCESSING),
                and_(table.c.status == PENDING, table.c.payable_at < to_micros(cutoff)),
            )

        return self._lines(payable(referrals), payable(rewards))

    def _lines(self, own: Any, other: Any) -> Iterator[PayoutLine]:
        """Two grouped queries in the same order, merged as they stream: the referrals'
        rewards per referrer (as before entries existed), the entries per user and kind."""
        own_query: Select[Any] = (
            select(
                referrals.c.referrer_id,
                literal(LineKind.REWARD.value),
                func.count(),
                func.sum(referrals.c.reward_cents),
            )
            .where(own)
            .group_by(referrals.c.referrer_id)
            .order_by(self._byte_order(referrals.c.referrer_id))
            .execution_options(yield_per=2000)
        )
        other_query: Select[Any] = (
            select(rewards.c.user_id, rewards.c.kind, func.count(), func.sum(rewards.c.cents))
            .where(other)
            .group_by(rewards.c.user_id, rewards.c.kind)
            .order_by(self._byte_order(rewards.c.user_id))
            .execution_options(yield_per=2000)
        )
        # Both are in byte order, which is Python's order of str (code points, as UTF-8).
        rows = heapq.merge(
            self._tx.execute(own_query), self._tx.execute(other_query), key=itemgetter(0)
        )
        for user, groups in groupby(rows, key=itemgetter(0)):
            count, cents = [0, 0], [0, 0]  # the reward line, the clawback line
            for _, kind, n, total in groups:
                line = int(kind == CLAWBACK)
                count[line] += int(n)
                cents[line] += int(total)
            if count[0]:
                yield PayoutLine(user, count[0], cents[0])
            if count[1]:
                yield PayoutLine(user, count[1], cents[1], LineKind.CLAWBACK)

    def _byte_order(self, column: Any) -> Any:
        """Report lines sort by bytes on every store; PostgreSQL would use its locale."""
        return column.collate("C") if self._tx.dialect.name == "postgresql" else column

    def complete(self, run: PayoutRun, owner: str) -> int:
        done = self._tx.execute(
            update(payout_runs)
            .where(
                payout_runs.c.period == run.period,
                payout_runs.c.lease_owner == owner,
                payout_runs.c.status == RunStatus.RUNNING.value,
            )
            .values(
                status=RunStatus.COMPLETED.value,
                referrer_count=run.referrer_count,
                referral_count=run.referral_count,
                total_cents=run.total_cents,
                clawback_cents=run.clawback_cents,
                carried_forward_cents=run.carried_forward_cents,
                report_key=run.report_key,
                report_sha256=run.report_sha256,
                previous_month_period=run.previous_month_period,
                previous_month_sha256=run.previous_month_sha256,
                previous_period=run.previous_period,
                previous_sha256=run.previous_sha256,
                completed_at=to_micros(run.completed_at) if run.completed_at else None,
                lease_owner=None,
                lease_expires_at=None,
                error=run.error,
            )
        )
        if done.rowcount != 1:
            return -1
        paid = 0
        for table in (referrals, rewards):
            paid += self._tx.execute(
                update(table)
                .where(table.c.payout_period == run.period, table.c.status == PROCESSING)
                .values(status=PAID)
            ).rowcount
        return paid

    def fail(self, period: str, owner: str, error: str) -> None:
        self._tx.execute(
            update(payout_runs)
            .where(payout_runs.c.period == period, payout_runs.c.lease_owner == owner)
            .values(
                status=RunStatus.FAILED.value, lease_owner=None, lease_expires_at=None, error=error
            )
        )

    def lock_chain(self) -> None:
        # SQLite: a writer holds the database's write lock (BEGIN IMMEDIATE) already.
        # PostgreSQL: a lock every completion takes, released when its transaction ends.
        # Under READ COMMITTED, the reads after it see the completion that held it.
        if self._tx.dialect.name == "postgresql":
            self._tx.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": PG_CHAIN_LOCK})

    def note_publication(self, period: str, problem: str | None) -> None:
        self._tx.execute(
            update(payout_runs)
            .where(
                payout_runs.c.period == period,
                payout_runs.c.status == RunStatus.COMPLETED.value,
            )
            .values(error=problem)
        )


class SqlOutbox:
    def __init__(self, tx: Tx) -> None:
        self._tx = tx

    def add(self, event: Event) -> None:
        values = {
            "id": event.id,
            "type": event.type,
            "payload": json.dumps(event.payload, sort_keys=True, separators=(",", ":")),
            "created_at": to_micros(event.created_at),
            "status": event.status.value,
            "attempts": event.attempts,
            "next_attempt_at": _micros_or_none(event.next_attempt_at),
            "last_error": event.last_error,
        }
        self._tx.insert(_INSERT_EVENT, values)

    def get(self, event_id: str) -> Event | None:
        row = self._tx.execute(select(outbox).where(outbox.c.id == event_id)).first()
        return _event(row) if row else None

    def claim_due(self, now: datetime, until: datetime, limit: int) -> Sequence[Event]:
        values = {"now": to_micros(now), "until": to_micros(until), "limit": limit}
        claimed = self._tx.rows(_CLAIM_DUE, values)
        return sorted((_event(row) for row in claimed), key=lambda e: e.id)

    def delivered(self, event_ids: Sequence[str]) -> None:
        statement = _DELIVERED[self._tx.dialect.name]
        self._tx.write(statement, {"ids": json.dumps(list(event_ids))})

    def attempt_failed(
        self, event_id: str, error: str, next_attempt_at: datetime, dead: bool
    ) -> None:
        status = EventStatus.DEAD if dead else EventStatus.PENDING
        self._tx.execute(
            update(outbox)
            .where(outbox.c.id == event_id)
            .values(
                status=status.value,
                attempts=outbox.c.attempts + 1,
                next_attempt_at=to_micros(next_attempt_at),
                last_error=error,
            )
        )

    def list(self, status: EventStatus | None, limit: int) -> Sequence[Event]:
        query = select(outbox).order_by(outbox.c.id.desc()).limit(limit)
        if status is not None:
            query = query.where(outbox.c.status == status.value)
        return [_event(row) for row in self._tx.execute(query)]

    def requeue(self, event_id: str, now: datetime) -> bool:
        requeued = self._tx.execute(
            update(outbox)
            .where(outbox.c.id == event_id, outbox.c.status == EventStatus.DEAD.value)
            .values(status=EventStatus.PENDING.value, attempts=0, next_attempt_at=to_micros(now))
        )
        return requeued.rowcount == 1

    def backlog(self) -> int:
        query = select(func.count()).where(outbox.c.status == EventStatus.PENDING.value)
        return int(self._tx.execute(query).scalar_one())

    def prune_delivered(self, before: datetime, limit: int) -> int:
        # A range of the primary key (ids sort by the time they were minted): the old
        # rows only, those kept (pending, dead) and those to delete, never every row.
        oldest = (
            select(outbox.c.id)
            .where(
                outbox.c.id < first_id_at(before),
                outbox.c.status == EventStatus.DELIVERED.value,
                outbox.c.created_at < to_micros(before),
            )
            .order_by(outbox.c.id)
            .limit(limit)
        )
        pruned = self._tx.execute(delete(outbox).where(outbox.c.id.in_(oldest)))
        return int(pruned.rowcount)

    def discard(self, event_id: str) -> bool:
        discarded = self._tx.execute(
            delete(outbox).where(outbox.c.id == event_id, outbox.c.status == EventStatus.DEAD.value)
        )
        return discarded.rowcount == 1


class SqlAudit:
    def __init__(self, tx: Tx) -> None:
        self._tx = tx

    def add(self, entry: AuditEntry) -> None:
        values = {
            "id": entry.id,
            "at": to_micros(entry.at),
            "actor": entry.actor,
            "action": entry.action,
            "target": entry.target,
            "reason": entry.reason,
        }
        _insert(self._tx, _INSERT_AUDIT, values)

    def list(self, before_id: str | None, limit: int) -> Sequence[AuditEntry]:
        query = select(audit_log).order_by(audit_log.c.id.desc()).limit(limit)
        if before_id is not None:
            query = query.where(audit_log.c.id < before_id)
        return [_audit(row) for row in self._tx.execute(query)]


class SqlUnitOfWork:
    referrers: SqlReferrers
    referrals: SqlReferrals
    api_keys: SqlApiKeys
    sessions: SqlSessions
    secrets: SqlSecrets
    payouts: SqlPayouts
    outbox: SqlOutbox
    audit: SqlAudit
    rewards: SqlRewards
    conversions: SqlConversions
    stats: SqlStats

    def __init__(
        self, engine: Engine, watch: StorageWatch, group: GroupCommit | None = None
    ) -> None:
        self._engine = engine
        self._watch = watch
        self._group = group
        self._open = False  # inside the group's transaction, not yet committed

    def __enter__(self) -> Self:
        try:
            conn = self._begin()
        except Exception as error:
            if failure := self._watch.translate(error):
                raise failure from error
            raise
        self._tx = tx = Tx(conn)
        self.referrers = SqlReferrers(tx)
        self.referrals = SqlReferrals(tx)
        self.api_keys = SqlApiKeys(tx)
        self.sessions = SqlSessions(tx)
        self.secrets = SqlSecrets(tx)
        self.payouts = SqlPayouts(tx)
        self.outbox = SqlOutbox(tx)
        self.audit = SqlAudit(tx)
        self.rewards = SqlRewards(tx)
        self.conversions = SqlConversions(tx)
        self.stats = SqlStats(tx)
        return self

    def _begin(self) -> Connection:
        if self._group is not None:
            conn = self._group.enter()
            self._open = True
            return conn
        conn = self._engine.connect()
        conn.begin()
        return conn

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            self._end()
        finally:
            if exc is not None and (failure := self._watch.translate(exc)):
                raise failure from exc

    def _end(self) -> None:
        if self._group is not None:
            if self._open:  # not committed
                self._open = False
                self._group.rollback()
            return
        conn = self._tx.conn
        try:
            if conn.in_transaction():
                conn.rollback()
        finally:
            self._tx.close()

    def commit(self) -> None:
        """Make the work durable; it ends the unit of work."""
        if self._group is not None and self._open:
            self._open = False
            self._group.commit()  # SQLite: no insert waits, Tx sends each at once
        else:
            self._tx.commit()


class SqlStore:
    def __init__(self, writer: Engine, reader: Engine) -> None:
        self.writer = writer
        self.reader = reader
        # SQLite has one writer at a time: this process's writers share its transactions.
        self._group = GroupCommit(writer) if writer.dialect.name == "sqlite" else None
        self._watch = StorageWatch()

    def unit_of_work(self) -> SqlUnitOfWork:
        return SqlUnitOfWork(self.writer, self._watch, self._group)

    def read(self) -> SqlUnitOfWork:
        return SqlUnitOfWork(self.reader, self._watch)

    def check(self) -> None:
        with self.reader.connect() as conn:
            conn.execute(_HEALTH_CHECK)

    def check_write(self) -> None:
        if self._group is not None:
            # SQLite: this process's write path itself. Entering takes the write lock
            # (BEGIN IMMEDIATE, or the open transaction that holds it); leaving without
            # a commit releases it. It writes nothing, so room is checked apart.
            database = self.writer.url.database
            if database and database != ":memory:":
                require_room(Path(database))
            with self.unit_of_work():
                return
        with self.writer.connect() as conn:
            # A row lock is a write (it marks the row): refused on a standby or in a
            # read-only session, and released by the rollback. The one row of
            # alembic_version exists in every migrated database.
            conn.execute(_WRITE_CHECK)
            conn.rollback()

    def count_failure(self, subject: str, now: datetime, window: timedelta) -> tuple[int, datetime]:
        with self.unit_of_work() as uow:
            counted = count_failure(uow._tx, subject, now, window)
            uow.commit()
        return counted

    def dispose(self) -> None:
        if self._group is not None:
            self._group.dispose()
        self.writer.dispose()
        self.reader.dispose()


def _insert(tx: Tx, statement: Any, values: dict[str, Any]) -> None:
    try:
        tx.execute(statement, values)
    except IntegrityError as error:
        # A unique key lost to a concurrent writer: the use case retries and reads the winner.
        raise Conflict(str(error.orig)) from error


def _transition(
    tx: Tx,
    table: Table,
    key: str,
    allowed: Collection[ReferralStatus],
    to: ReferralStatus,
    note: str | None,
) -> Row[Any] | None:
    """The row moved to `to` if it was in an `allowed` state, else None.

    One conditional statement: on PostgreSQL a concurrent transition waits for the
    row lock, re-checks the status and updates nothing; SQLite's writers are
    serialized, so the second one reads the first one's state.
    """
    return tx.execute(
        update(table)
        .where(table.c.id == key, table.c.status.in_([status.value for status in allowed]))
        .values(status=to.value, note=note)
        .returning(*table.c)
    ).first()


class _Prefixed:
    """One table's columns of a joined row, under their own names."""

    def __init__(self, row: Row[Any], prefix: str) -> None:
        self._row, self._prefix = row, prefix

    def __getattr__(self, name: str) -> Any:
        return getattr(self._row, self._prefix + name)


def _parties(row: Row[Any]) -> SignupParties:
    """The row of `_PARTIES` or `_PARTIES_COUNTED`."""
    referrer, earlier, referee = (_Prefixed(row, prefix) for prefix in ("r_", "p_", "e_"))
    return SignupParties(
        _referrer(referrer) if row.r_user_id is not None else None,
        _referral(earlier) if row.p_id is not None else None,
        _referrer(referee) if row.e_user_id is not None else None,
    )


def _referrer(row: Row[Any] | _Prefixed) -> Referrer:
    return Referrer(
        user_id=row.user_id,
        code=row.code,
        email=row.email,
        referral_count=row.referral_count,
        created_at=from_micros(row.created_at),
        ip_hash=row.ip_hash,
        device_hash=row.device_hash,
        cap_lifetime_cents=row.cap_lifetime_cents,
        cap_month=row.cap_month,
        cap_month_cents=row.cap_month_cents,
    )


def _conversion(row: Row[Any]) -> Conversion:
    return Conversion(
        external_id=row.external_id,
        user_id=row.user_id,
        event=row.event,
        value_cents=row.value_cents,
        created_at=from_micros(row.created_at),
        referral_id=row.referral_id,
        awaits_signup=bool(row.awaits_signup),
    )


def _referral(row: Row[Any] | _Prefixed) -> Referral:
    created_at = from_micros(row.created_at)
    return Referral(
        id=row.id,
        referee_id=row.referee_id,
        referrer_id=row.referrer_id,
        code=row.code,
        email=row.email,
        ordinal=row.ordinal,
        reward_cents=row.reward_cents,
        status=ReferralStatus(row.status),
        created_at=created_at,
        payout_period=row.payout_period,
        # Stored as the instant it is payable at, which is what a run filters on.
        hold=from_micros(row.payable_at) - created_at,
        receipt=Receipt.from_dict(json.loads(row.receipt)) if row.receipt else None,
        note=row.note,
    )


def _reward(row: Row[Any]) -> Reward:
    created_at = from_micros(row.created_at)
    return Reward(
        id=row.id,
        referral_id=row.referral_id,
        user_id=row.user_id,
        kind=RewardKind(row.kind),
        cents=row.cents,
        status=ReferralStatus(row.status),
        created_at=created_at,
        hold=from_micros(row.payable_at) - created_at,
        payout_period=row.payout_period,
        note=row.note,
    )


def _receipt_json(receipt: Receipt | None) -> str | None:
    if receipt is None:
        return None
    return json.dumps(receipt.to_dict(), separators=(",", ":"))


def _api_key(row: Row[Any]) -> ApiKey:
    return ApiKey(
        row.id,
        Role(row.role),
        row.key_hash,
        from_micros(row.created_at),
        name=row.name,
        expires_at=_time_or_none(row.expires_at),
        revoked_at=_time_or_none(row.revoked_at),
        last_used_at=_time_or_none(row.last_used_at),
    )


def _audit(row: Row[Any]) -> AuditEntry:
    return AuditEntry(
        id=row.id,
        at=from_micros(row.at),
        actor=row.actor,
        action=row.action,
        target=row.target,
        reason=row.reason,
    )


def _micros_or_none(moment: datetime | None) -> int | None:
    return to_micros(moment) if moment is not None else None


def _time_or_none(micros: int | None) -> datetime | None:
    return from_micros(micros) if micros is not None else None


def _run(row: Row[Any]) -> PayoutRun:
    return PayoutRun(
        period=row.period,
        status=RunStatus(row.status),
        cutoff=from_micros(row.cutoff),
        started_at=from_micros(row.started_at),
        lease_owner=row.lease_owner,
        lease_expires_at=_time_or_none(row.lease_expires_at),
        referrer_count=row.referrer_count,
        referral_count=row.referral_count,
        total_cents=row.total_cents,
        report_key=row.report_key,
        report_sha256=row.report_sha256,
        previous_month_period=row.previous_month_period,
        previous_month_sha256=row.previous_month_sha256,
        previous_period=row.previous_period,
        previous_sha256=row.previous_sha256,
        completed_at=_time_or_none(row.completed_at),
        error=row.error,
        clawback_cents=row.clawback_cents,
        carried_forward_cents=row.carried_forward_cents,
    )


def _event(row: Row[Any]) -> Event:
    return Event(
        id=row.id,
        type=row.type,
        payload=json.loads(row.payload),
        created_at=from_micros(row.created_at),
        status=EventStatus(row.status),
        attempts=row.attempts,
        next_attempt_at=_time_or_none(row.next_attempt_at),
        last_error=row.last_error,
    )
