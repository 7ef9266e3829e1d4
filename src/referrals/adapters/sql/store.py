"""The store ports on SQLAlchemy Core; rows are mapped to domain values explicitly."""

from collections.abc import Sequence
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, Self

from sqlalchemy import Connection, Engine, Row, func, insert, select, text, update
from sqlalchemy.exc import IntegrityError

from referrals.adapters.sql.schema import api_keys, referrals, referrers
from referrals.domain.codes import normalize_code
from referrals.domain.errors import Conflict
from referrals.domain.model import (
    ApiKey,
    Earnings,
    Referral,
    ReferralStatus,
    Referrer,
    Role,
)


def to_micros(moment: datetime) -> int:
    delta = moment.astimezone(UTC) - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def from_micros(micros: int) -> datetime:
    seconds, micro = divmod(micros, 1_000_000)
    return datetime.fromtimestamp(seconds, UTC).replace(microsecond=micro)


class SqlReferrers:
    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def get(self, user_id: str) -> Referrer | None:
        row = self._conn.execute(select(referrers).where(referrers.c.user_id == user_id)).first()
        return _referrer(row) if row else None

    def by_code(self, code: str) -> Referrer | None:
        query = select(referrers).where(referrers.c.code_key == normalize_code(code))
        row = self._conn.execute(query).first()
        return _referrer(row) if row else None

    def add(self, referrer: Referrer) -> None:
        values = {
            "user_id": referrer.user_id,
            "code": referrer.code,
            "code_key": normalize_code(referrer.code),
            "email": referrer.email,
            "referral_count": referrer.referral_count,
            "created_at": to_micros(referrer.created_at),
        }
        _insert(self._conn, insert(referrers).values(values))

    def increment_referral_count(self, user_id: str) -> int:
        # One statement: the row lock (PostgreSQL) or the write lock (SQLite) makes
        # the read of the old count and the write of the new one indivisible.
        statement = (
            update(referrers)
            .where(referrers.c.user_id == user_id)
            .values(referral_count=referrers.c.referral_count + 1)
            .returning(referrers.c.referral_count)
        )
        return int(self._conn.execute(statement).scalar_one())

    def earnings(self, user_id: str) -> Earnings:
        query = (
            select(referrals.c.status, func.coalesce(func.sum(referrals.c.reward_cents), 0))
            .where(referrals.c.referrer_id == user_id)
            .group_by(referrals.c.status)
        )
        by_status = {status: int(total) for status, total in self._conn.execute(query)}
        paid = by_status.pop(ReferralStatus.PAID.value, 0)
        return Earnings(pending_cents=sum(by_status.values()), paid_cents=paid)


class SqlReferrals:
    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def get(self, referral_id: str) -> Referral | None:
        row = self._conn.execute(select(referrals).where(referrals.c.id == referral_id)).first()
        return _referral(row) if row else None

    def by_referee(self, referee_id: str) -> Referral | None:
        query = select(referrals).where(referrals.c.referee_id == referee_id)
        row = self._conn.execute(query).first()
        return _referral(row) if row else None

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
        }
        _insert(self._conn, insert(referrals).values(values))

    def for_referrer(
        self, referrer_id: str, after_ordinal: int | None, limit: int
    ) -> Sequence[Referral]:
        query = select(referrals).where(referrals.c.referrer_id == referrer_id)
        if after_ordinal is not None:
            query = query.where(referrals.c.ordinal > after_ordinal)
        query = query.order_by(referrals.c.ordinal).limit(limit)
        return [_referral(row) for row in self._conn.execute(query)]

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
        return [_referral(row) for row in self._conn.execute(query)]


class SqlApiKeys:
    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def add(self, key: ApiKey) -> None:
        values = {
            "id": key.id,
            "key_hash": key.key_hash,
            "role": key.role.value,
            "created_at": to_micros(key.created_at),
        }
        _insert(self._conn, insert(api_keys).values(values))

    def by_hash(self, key_hash: str) -> ApiKey | None:
        row = self._conn.execute(select(api_keys).where(api_keys.c.key_hash == key_hash)).first()
        if row is None:
            return None
        return ApiKey(row.id, Role(row.role), row.key_hash, from_micros(row.created_at))

    def count(self) -> int:
        return int(self._conn.execute(select(func.count()).select_from(api_keys)).scalar_one())


class SqlUnitOfWork:
    referrers: SqlReferrers
    referrals: SqlReferrals
    api_keys: SqlApiKeys

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def __enter__(self) -> Self:
        self._conn = self._engine.connect()
        self._conn.begin()
        self.referrers = SqlReferrers(self._conn)
        self.referrals = SqlReferrals(self._conn)
        self.api_keys = SqlApiKeys(self._conn)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            if self._conn.in_transaction():
                self._conn.rollback()
        finally:
            self._conn.close()

    def commit(self) -> None:
        self._conn.commit()


class SqlStore:
    def __init__(self, writer: Engine, reader: Engine) -> None:
        self.writer = writer
        self.reader = reader

    def unit_of_work(self) -> SqlUnitOfWork:
        return SqlUnitOfWork(self.writer)

    def read(self) -> SqlUnitOfWork:
        return SqlUnitOfWork(self.reader)

    def check(self) -> None:
        with self.reader.connect() as conn:
            conn.execute(text("SELECT 1"))

    def dispose(self) -> None:
        self.writer.dispose()
        self.reader.dispose()


def _insert(conn: Connection, statement: Any) -> None:
    try:
        conn.execute(statement)
    except IntegrityError as error:
        # A unique key lost to a concurrent writer: the use case retries and reads the winner.
        raise Conflict(str(error.orig)) from error


def _referrer(row: Row[Any]) -> Referrer:
    return Referrer(
        user_id=row.user_id,
        code=row.code,
        email=row.email,
        referral_count=row.referral_count,
        created_at=from_micros(row.created_at),
    )


def _referral(row: Row[Any]) -> Referral:
    return Referral(
        id=row.id,
        referee_id=row.referee_id,
        referrer_id=row.referrer_id,
        code=row.code,
        email=row.email,
        ordinal=row.ordinal,
        reward_cents=row.reward_cents,
        status=ReferralStatus(row.status),
        created_at=from_micros(row.created_at),
        payout_period=row.payout_period,
    )
