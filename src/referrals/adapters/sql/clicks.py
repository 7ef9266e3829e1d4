"""Clicks on tracked links on SQL.

A referrer's count (the portal's) is a range of the `(program_id, referrer_id, at)`
index. The funnel's tally is one statement over the `(program_id, at)` index range of the
window, grouped by UTC day and referrer in the database: times are microseconds
since the epoch, so a day is `at // 86_400_000_000` on SQLite and PostgreSQL alike
(integer division of integers on both).
"""

from collections.abc import Sequence
from datetime import date, datetime, timedelta

from sqlalchemy import BigInteger, func, insert, select, type_coerce

from referrals.adapters.sql.repository import Repository
from referrals.adapters.sql.schema import clicks
from referrals.domain.clicks import Click, ClickCount

DAY_MICROS = 86_400_000_000
EPOCH = date(1970, 1, 1)
_INSERT = insert(clicks)


class SqlClicks(Repository):
    def add(self, click: Click) -> None:
        values = {
            "id": click.id,
            "program_id": click.program_id,
            "code": click.code,
            "referrer_id": click.referrer_id,
            "at": click.at,
            "ip_hash": click.ip_hash,
            "ua_hash": click.ua_hash,
            "referring_site": click.referring_site,
            "utm_source": click.utm_source,
            "utm_medium": click.utm_medium,
            "utm_campaign": click.utm_campaign,
            "utm_term": click.utm_term,
            "utm_content": click.utm_content,
        }
        self._execute(_INSERT, values)

    def get(self, click_id: str) -> Click | None:
        row = self._execute(select(clicks).where(clicks.c.id == click_id)).first()
        if row is None:
            return None
        return Click(
            id=row.id,
            program_id=row.program_id,
            code=row.code,
            referrer_id=row.referrer_id,
            at=row.at,
            ip_hash=row.ip_hash,
            ua_hash=row.ua_hash,
            referring_site=row.referring_site,
            utm_source=row.utm_source,
            utm_medium=row.utm_medium,
            utm_campaign=row.utm_campaign,
            utm_term=row.utm_term,
            utm_content=row.utm_content,
        )

    def count(self, program_id: str, referrer_id: str, since: datetime, until: datetime) -> int:
        query = select(func.count()).where(
            clicks.c.program_id == program_id,
            clicks.c.referrer_id == referrer_id,
            clicks.c.at >= since,
            clicks.c.at < until,
        )
        return int(self._execute(query).scalar_one())

    def tally(self, program_id: str, since: datetime, until: datetime) -> Sequence[ClickCount]:
        day = (type_coerce(clicks.c.at, BigInteger) // DAY_MICROS).label("day")
        query = (
            select(day, clicks.c.referrer_id, func.count().label("clicks"))
            .where(clicks.c.program_id == program_id, clicks.c.at >= since, clicks.c.at < until)
            .group_by(day, clicks.c.referrer_id)
            .order_by(day, self._byte_order(clicks.c.referrer_id))
        )
        return [
            ClickCount(EPOCH + timedelta(days=int(row.day)), row.referrer_id, int(row.clicks))
            for row in self._execute(query)
        ]
