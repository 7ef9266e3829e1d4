"""The replay's read on SQL (ports.replay): one query, streamed, in one read transaction.

Only the columns the replay reads, with the times as the integers they are stored as
(no `datetime` per row), and the receipt parsed once per distinct text
(adapters.receipts). SQLAlchemy's `yield_per` streams the rows: a server-side cursor
on PostgreSQL, SQLite's own cursor stepping through the table; a part of rows is in
memory at a time. One transaction gives the whole read one snapshot, held for the
few seconds a million rows take (docs/decisions/replay-read.md).
"""

from sqlalchemy import BigInteger, Engine, bindparam, select, type_coerce

from referrals.adapters.receipts import parse_receipt
from referrals.adapters.sql.failures import StorageWatch
from referrals.adapters.sql.schema import referrals
from referrals.ports.replay import ReplayParts

_ROWS = (
    select(
        referrals.c.id,
        referrals.c.referrer_id,
        referrals.c.ordinal,
        referrals.c.reward_cents,
        referrals.c.status,
        type_coerce(referrals.c.created_at, BigInteger),
        type_coerce(referrals.c.payable_at, BigInteger),
        referrals.c.receipt,
    )
    .where(referrals.c.program_id == bindparam("program"), referrals.c.id < bindparam("before"))
    .order_by(referrals.c.id)
)


class SqlReplay:
    def __init__(self, engine: Engine, watch: StorageWatch) -> None:
        self._engine = engine  # the store's reader
        self._watch = watch

    def rows(self, program: str, before: str, part: int) -> ReplayParts:
        try:
            yield from self._rows(program, before, part)
        except Exception as error:
            if failure := self._watch.translate(error):
                raise failure from error
            raise

    def _rows(self, program: str, before: str, part: int) -> ReplayParts:
        query = _ROWS.execution_options(yield_per=part)
        with self._engine.connect() as conn, conn.begin():
            found = conn.execute(query, {"program": program, "before": before})
            for rows in found.partitions():
                yield [
                    (
                        rid,
                        referrer,
                        ordinal,
                        cents,
                        status,
                        created,
                        payable,
                        parse_receipt(receipt) if receipt else None,
                    )
                    for rid, referrer, ordinal, cents, status, created, payable, receipt in rows
                ]
