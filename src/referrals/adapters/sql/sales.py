"""Sales and refunds on SQL (SQLite, PostgreSQL).

A sale's refunded total moves by one conditional UPDATE (on the total read): of two
refunds of one sale at once, the second updates no row (or, on PostgreSQL, waits for
the first's row lock and then finds the total changed) and raises Conflict, so its
retry reads the new total. A share entry is lowered the same way, conditional on its
state and amount, so a run that assigned it meanwhile wins and the refund claws back.
"""

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select, update

from referrals.adapters.receipts import parse_receipt
from referrals.adapters.sql import rows
from referrals.adapters.sql.repository import Repository
from referrals.adapters.sql.schema import refunds, rewards, sales
from referrals.domain.model import ReferralStatus, Reward
from referrals.domain.sales import Refund, Sale, SaleKind, SaleTally, tally

_INSERT_SALE, _INSERT_REFUND = insert(sales), insert(refunds)


class SqlSales(Repository):
    def add(self, sale: Sale) -> None:
        values = {
            "external_id": sale.external_id,
            "program_id": sale.program_id,
            "user_id": sale.user_id,
            "amount_minor": sale.amount_minor,
            "currency": sale.currency,
            "occurred_at": sale.occurred_at,
            "kind": sale.kind.value,
            "created_at": sale.created_at,
            "referral_id": sale.referral_id,
            "referrer_id": sale.referrer_id,
            "refunded_minor": sale.refunded_minor,
            "reward_id": sale.reward_id,
            "share_bps": sale.share_bps,
            "share_ceiling_minor": sale.share_ceiling_minor,
            "awarded_minor": sale.awarded_minor,
            "receipt": rows.receipt_json(sale.receipt),
        }
        self._execute(_INSERT_SALE, values)  # a recorded id breaks the key: Conflict

    def get(self, external_id: str) -> Sale | None:
        row = self._execute(select(sales).where(sales.c.external_id == external_id)).first()
        return _sale(row) if row else None

    def add_refund(self, refund: Refund, sale: Sale) -> None:
        self._change_one(
            update(sales)
            .where(
                sales.c.external_id == sale.external_id,
                sales.c.refunded_minor == sale.refunded_minor,
            )
            .values(refunded_minor=sales.c.refunded_minor + refund.amount_minor),
            {},
            f"sale {sale.external_id} was refunded meanwhile",
        )
        values = {
            "id": refund.id,
            "sale_external_id": refund.sale_external_id,
            "external_id": refund.external_id,
            "program_id": refund.program_id,
            "referrer_id": refund.referrer_id,
            "amount_minor": refund.amount_minor,
            "reversed_minor": refund.reversed_minor,
            "occurred_at": refund.occurred_at,
            "created_at": refund.created_at,
        }
        self._execute(_INSERT_REFUND, values)  # a recorded external id: Conflict

    def refund(self, external_id: str) -> Refund | None:
        row = self._execute(select(refunds).where(refunds.c.external_id == external_id)).first()
        return _refund(row) if row else None

    def refunds(self, sale_external_id: str) -> Sequence[Refund]:
        query = (
            select(refunds)
            .where(refunds.c.sale_external_id == sale_external_id)
            .order_by(refunds.c.id)
        )
        return [_refund(row) for row in self._execute(query)]

    def reprice_share(
        self, reward: Reward, cents: int, to: ReferralStatus, note: str | None
    ) -> Reward | None:
        row = self._execute(
            update(rewards)
            .where(
                rewards.c.id == reward.id,
                rewards.c.status == reward.status.value,
                rewards.c.cents == reward.cents,
            )
            .values(cents=cents, status=to.value, note=note)
            .returning(*rewards.c)
        ).first()
        return rows.reward(row) if row else None

    def tally(self, program: str, since: datetime, until: datetime) -> Sequence[SaleTally]:
        # Both reads are ranges of the (program_id, occurred_at) indexes; the rows of a
        # window are summed here, as `domain.sales.tally` sums them for every store.
        found = self._execute(
            select(sales).where(
                sales.c.program_id == program,
                sales.c.occurred_at >= since,
                sales.c.occurred_at < until,
            )
        )
        sold = [_sale(row) for row in found]
        found = self._execute(
            select(refunds).where(
                refunds.c.program_id == program,
                refunds.c.occurred_at >= since,
                refunds.c.occurred_at < until,
            )
        )
        return tally(sold, [_refund(row) for row in found])


def _sale(row: Any) -> Sale:
    return Sale(
        external_id=row.external_id,
        user_id=row.user_id,
        amount_minor=row.amount_minor,
        currency=row.currency,
        occurred_at=row.occurred_at,
        kind=SaleKind(row.kind),
        created_at=row.created_at,
        program_id=row.program_id,
        referral_id=row.referral_id,
        referrer_id=row.referrer_id,
        refunded_minor=row.refunded_minor,
        reward_id=row.reward_id,
        share_bps=row.share_bps,
        share_ceiling_minor=row.share_ceiling_minor,
        awarded_minor=row.awarded_minor,
        receipt=parse_receipt(row.receipt) if row.receipt else None,
    )


def _refund(row: Any) -> Refund:
    return Refund(
        id=row.id,
        sale_external_id=row.sale_external_id,
        amount_minor=row.amount_minor,
        occurred_at=row.occurred_at,
        created_at=row.created_at,
        program_id=row.program_id,
        referrer_id=row.referrer_id,
        external_id=row.external_id,
        reversed_minor=row.reversed_minor,
    )
