"""Sales and refunds on DynamoDB: Query and GetItem only, races settled by conditions.

Items of the main table:

| item | pk | sk | in `by_id` as `kind` / `id` |
|---|---|---|---|
| sale (once per id) | `SALE#<external_id>` | `SALE` | `SALES#<program>` / `<µs>#<ext_id>` |
| refund of a sale | `SALE#<sale external_id>` | `REFUND#<id>` | `REFUNDS#<program>` / `<µs>#<id>` |
| refund id claim (a copy of the refund) | `REFUNDID#<external_id>` | `REFUNDID` | |

(`<µs>`: when it occurred, microseconds since the epoch in 20 digits.)

- A sale is created by a Put conditioned on its absence: a second sale under one
  external id makes the commit a Conflict. Its refunds are its item collection, so
  `refunds` is one strongly consistent Query.
- A refund updates its sale's `refunded_minor` conditioned on the total read, puts the
  refund and, with an external id, its claim (conditioned on absence): three writes,
  plus the share entry's update (or a clawback's two puts) and the referrer's counters
  by the use case, at most 7 items in the transaction. Nothing is added to a signup.
- The funnel's tally reads the `by_id` index, whose partition key `kind` is
  `REFERRAL` for referrals: sales and refunds of a program are partitions of their
  own there (`SALES#<program>`, `REFUNDS#<program>`), sorted by the time they
  occurred, so a window is one key range, with no index of their own to provision.
"""

from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime

from boto3.dynamodb.conditions import Attr, Key

from referrals.adapters.dynamodb import items
from referrals.adapters.dynamodb.access import Tables
from referrals.adapters.dynamodb.expressions import Values, update
from referrals.adapters.dynamodb.run_states import stored_as
from referrals.adapters.dynamodb.transaction import Transaction
from referrals.adapters.receipts import parse_receipt
from referrals.adapters.times import from_micros, to_micros
from referrals.domain.model import ReferralStatus, Reward
from referrals.domain.sales import Refund, Sale, SaleKind, SaleTally, tally


def sale_key(external_id: str) -> Values:
    return {"pk": f"SALE#{external_id}", "sk": "SALE"}


def refund_key(sale_external_id: str, refund_id: str) -> Values:
    return {"pk": f"SALE#{sale_external_id}", "sk": f"REFUND#{refund_id}"}


def refund_claim_key(external_id: str) -> Values:
    return {"pk": f"REFUNDID#{external_id}", "sk": "REFUNDID"}


def _when(moment: datetime, name: str) -> str:
    # Zero-padded so that string order is time order: a window is a key range.
    return f"{to_micros(moment):020d}#{name}"


class DynamoSales:
    def __init__(self, tables: Tables, tx: Transaction) -> None:
        self._tables = tables
        self._tx = tx

    def add(self, sale: Sale) -> None:
        self._tx.create(self._tables.main, _sale_item(sale))  # recorded: Conflict on commit

    def get(self, external_id: str) -> Sale | None:
        item = self._tables.get(self._tables.main, sale_key(external_id))
        return _sale(item) if item else None

    def add_refund(self, refund: Refund, sale: Sale) -> None:
        total = sale.refunded_minor + refund.amount_minor
        self._tx.write(
            update(
                self._tables.main,
                sale_key(sale.external_id),
                set={"refunded_minor": total},
                condition=Attr("refunded_minor").eq(sale.refunded_minor),
            )
        )
        item = _refund_item(refund)
        self._tx.create(self._tables.main, item)
        if refund.external_id is not None:
            claim = {**item, **refund_claim_key(refund.external_id)}
            del claim["kind"], claim["id"]  # not a second copy in the tally's index
            self._tx.create(self._tables.main, claim)

    def refund(self, external_id: str) -> Refund | None:
        item = self._tables.get(self._tables.main, refund_claim_key(external_id))
        return _refund(item) if item else None

    def refunds(self, sale_external_id: str) -> Sequence[Refund]:
        found = self._tables.query(
            self._tables.main,
            Key("pk").eq(f"SALE#{sale_external_id}") & Key("sk").begins_with("REFUND#"),
            consistent=True,
        )
        return [_refund(item) for item in found]  # sk order: by id

    def reprice_share(
        self, reward: Reward, cents: int, to: ReferralStatus, note: str | None
    ) -> Reward | None:
        key = items.entry_key(reward.referral_id, reward.id)
        if self._tx.touches(self._tables.main, key):
            raise ValueError(f"entry {reward.id} is already written in this unit of work")
        moved = replace(reward, cents=cents, status=to, note=note)
        # As `status_update` moves an entry, and conditioned on the amount read too.
        self._tx.write(
            update(
                self._tables.main,
                key,
                set={"status_pk": to.value, "reward_cents": cents, "note": note},
                condition=stored_as(reward.status) & Attr("reward_cents").eq(reward.cents),
            )
        )
        return moved

    def tally(self, program: str, since: datetime, until: datetime) -> Sequence[SaleTally]:
        def window(kind: str) -> list[Values]:
            return list(
                self._tables.query(
                    self._tables.main,
                    Key("kind").eq(f"{kind}#{program}")
                    & Key("id").between(f"{to_micros(since):020d}", f"{to_micros(until):020d}"),
                    index="by_id",
                )
            )

        # `between` is inclusive, and `<until µs>` sorts before `<until µs>#...`: the
        # upper bound takes nothing that occurred at `until` itself.
        sold = [_sale(item) for item in window("SALES")]
        return tally(sold, [_refund(item) for item in window("REFUNDS")])


def _sale_item(s: Sale) -> Values:
    return {
        **sale_key(s.external_id),
        "kind": f"SALES#{s.program_id}",
        "id": _when(s.occurred_at, s.external_id),
        "external_id": s.external_id,
        "program_id": s.program_id,
        "user_id": s.user_id,
        "amount_minor": s.amount_minor,
        "currency": s.currency,
        "occurred_at": to_micros(s.occurred_at),
        "sale_kind": s.kind.value,
        "created_at": to_micros(s.created_at),
        "referral_id": s.referral_id,
        "referrer_id": s.referrer_id,
        "refunded_minor": s.refunded_minor,
        "reward_id": s.reward_id,
        "share_bps": s.share_bps,
        "share_ceiling_minor": s.share_ceiling_minor,
        "awarded_minor": s.awarded_minor,
        "receipt": items.receipt_json(s.receipt) if s.receipt else None,
    }


def _sale(item: Values) -> Sale:
    return Sale(
        external_id=item["external_id"],
        user_id=item["user_id"],
        amount_minor=int(item["amount_minor"]),
        currency=item["currency"],
        occurred_at=from_micros(int(item["occurred_at"])),
        kind=SaleKind(item["sale_kind"]),
        created_at=from_micros(int(item["created_at"])),
        program_id=item["program_id"],
        referral_id=item.get("referral_id"),
        referrer_id=item.get("referrer_id"),
        refunded_minor=int(item["refunded_minor"]),
        reward_id=item.get("reward_id"),
        share_bps=int(item["share_bps"]),
        share_ceiling_minor=int(item["share_ceiling_minor"]),
        awarded_minor=int(item["awarded_minor"]),
        receipt=parse_receipt(item["receipt"]) if "receipt" in item else None,
    )


def _refund_item(r: Refund) -> Values:
    return {
        **refund_key(r.sale_external_id, r.id),
        "kind": f"REFUNDS#{r.program_id}",
        "id": _when(r.occurred_at, r.id),
        "refund_id": r.id,
        "sale_external_id": r.sale_external_id,
        "external_id": r.external_id,
        "program_id": r.program_id,
        "referrer_id": r.referrer_id,
        "amount_minor": r.amount_minor,
        "reversed_minor": r.reversed_minor,
        "occurred_at": to_micros(r.occurred_at),
        "created_at": to_micros(r.created_at),
    }


def _refund(item: Values) -> Refund:
    return Refund(
        id=item["refund_id"],
        sale_external_id=item["sale_external_id"],
        amount_minor=int(item["amount_minor"]),
        occurred_at=from_micros(int(item["occurred_at"])),
        created_at=from_micros(int(item["created_at"])),
        program_id=item["program_id"],
        referrer_id=item.get("referrer_id"),
        external_id=item.get("external_id"),
        reversed_minor=int(item["reversed_minor"]),
    )
