"""Sales and refunds: what the billing system reports, and the tally the funnel reads."""

from collections.abc import Sequence
from datetime import datetime
from typing import Protocol

from referrals.domain.model import ReferralStatus, Reward
from referrals.domain.sales import Refund, Sale, SaleTally


class SaleRepository(Protocol):
    def add(self, sale: Sale) -> None:
        """Insert; raises Conflict (at the latest on commit) if the external id was
        recorded before."""
        ...

    def get(self, external_id: str) -> Sale | None: ...

    def add_refund(self, refund: Refund, sale: Sale) -> None:
        """Insert `refund` and add its amount to the refunded total of `sale` (as read),
        conditional on that total being unchanged since: two refunds of one sale at
        once cannot both pass the check that they stay within the sale; the loser
        raises Conflict (at the latest on commit) and its retry reads the new total.
        Raises Conflict too if the refund's external id was recorded before."""
        ...

    def refund(self, external_id: str) -> Refund | None:
        """The refund recorded under the billing system's refund id, if any."""
        ...

    def refunds(self, sale_external_id: str) -> Sequence[Refund]:
        """A sale's refunds, by id (the order they were recorded in)."""
        ...

    def reprice_share(
        self, reward: Reward, cents: int, to: ReferralStatus, note: str | None
    ) -> Reward | None:
        """Set the amount of a sale's share entry not paid yet (a refund lowers it) and
        move it to `to`, conditional on its state and amount being those of `reward`
        (as read). None if either changed meanwhile (a run assigned it); a store may
        raise Conflict instead, at the latest on commit."""
        ...

    def tally(self, program: str, since: datetime, until: datetime) -> Sequence[SaleTally]:
        """The program's sales that occurred in [since, until) and its refunds that did,
        summed per UTC day and referrer (domain.sales.tally's order), read through an
        index range on the time they occurred, never every sale."""
        ...
