"""Other ids a sale is known by in the billing system.

Stripe names a subscription invoice's payment (its PaymentIntent) apart from the
invoice since API version 2025-03-31.basil: the invoice's event names no payment, and
a refund or a dispute names only the payment. `invoice_payment.paid` links the two,
and the link is kept here, so a refund finds the invoice's sale.
"""

from typing import Protocol


class SaleAliasRepository(Protocol):
    def add(self, alias: str, sale_external_id: str) -> None:
        """Record that the sale `sale_external_id` is also known as `alias` (it may not
        be recorded yet: the billing system's events come in any order). Raises
        Conflict, at the latest on commit, if the alias is taken."""
        ...

    def get(self, alias: str) -> str | None:
        """The external id of the sale known as `alias`, read consistently; None if
        no sale is."""
        ...
