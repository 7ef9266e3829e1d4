"""Sale aliases (ports.aliases) on DynamoDB: one item per alias in the main table,
`ALIAS#<alias>` / `ALIAS` with `sale_external_id`, written once by a Put conditioned on
its absence (2 WCU in the transaction), read by a consistent GetItem; in no index."""

from referrals.adapters.dynamodb.access import Tables
from referrals.adapters.dynamodb.expressions import Values
from referrals.adapters.dynamodb.transaction import Transaction


def alias_key(alias: str) -> Values:
    return {"pk": f"ALIAS#{alias}", "sk": "ALIAS"}


class DynamoSaleAliases:
    def __init__(self, tables: Tables, tx: Transaction) -> None:
        self._tables = tables
        self._tx = tx

    def add(self, alias: str, sale_external_id: str) -> None:
        self._tx.create(
            self._tables.main, {**alias_key(alias), "sale_external_id": sale_external_id}
        )

    def get(self, alias: str) -> str | None:
        item = self._tables.get(self._tables.main, alias_key(alias))
        return str(item["sale_external_id"]) if item else None
