"""Sales and refunds in memory, held to the contract suite like every store."""

from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime

from referrals.adapters.memory.state import State
from referrals.domain.errors import Conflict
from referrals.domain.model import ReferralStatus, Reward
from referrals.domain.sales import Refund, Sale, SaleTally, tally


class MemorySales:
    def __init__(self, state: State) -> None:
        self._state = state

    def add(self, sale: Sale) -> None:
        if sale.external_id in self._state.sales:
            raise Conflict(f"sale {sale.external_id} exists")
        self._state.sales[sale.external_id] = sale

    def get(self, external_id: str) -> Sale | None:
        return self._state.sales.get(external_id)

    def add_refund(self, refund: Refund, sale: Sale) -> None:
        current = self._state.sales.get(sale.external_id)
        if current is None or current.refunded_minor != sale.refunded_minor:
            raise Conflict(f"sale {sale.external_id} was refunded meanwhile")
        if refund.id in self._state.refunds:
            raise Conflict(f"refund {refund.id} exists")
        if refund.external_id is not None:
            if refund.external_id in self._state.refund_ids:
                raise Conflict(f"refund {refund.external_id} exists")
            self._state.refund_ids[refund.external_id] = refund.id
        self._state.refunds[refund.id] = refund
        refunded = current.refunded_minor + refund.amount_minor
        self._state.sales[sale.external_id] = replace(current, refunded_minor=refunded)

    def refund(self, external_id: str) -> Refund | None:
        refund_id = self._state.refund_ids.get(external_id)
        return self._state.refunds[refund_id] if refund_id else None

    def refunds(self, sale_external_id: str) -> Sequence[Refund]:
        found = self._state.refunds.values()
        return sorted((r for r in found if r.sale_external_id == sale_external_id), key=_id)

    def reprice_share(
        self, reward: Reward, cents: int, to: ReferralStatus, note: str | None
    ) -> Reward | None:
        current = self._state.rewards.get(reward.id)
        if current is None or (current.status, current.cents) != (reward.status, reward.cents):
            return None
        changed = replace(current, cents=cents, status=to, note=note)
        self._state.rewards[reward.id] = changed
        return changed

    def tally(self, program: str, since: datetime, until: datetime) -> Sequence[SaleTally]:
        def within(s: Sale | Refund) -> bool:
            return s.program_id == program and since <= s.occurred_at < until

        sales = [s for s in self._state.sales.values() if within(s)]
        return tally(sales, [r for r in self._state.refunds.values() if within(r)])


def _id(refund: Refund) -> str:
    return refund.id
