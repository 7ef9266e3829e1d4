"""Sale aliases (ports.aliases) on SQL: one row per alias, its primary key."""

from sqlalchemy import bindparam, insert, select

from referrals.adapters.sql.repository import Repository
from referrals.adapters.sql.schema import sale_aliases

_INSERT = insert(sale_aliases)
_GET = select(sale_aliases.c.sale_external_id).where(sale_aliases.c.alias == bindparam("alias"))


class SqlSaleAliases(Repository):
    def add(self, alias: str, sale_external_id: str) -> None:
        self._execute(_INSERT, {"alias": alias, "sale_external_id": sale_external_id})

    def get(self, alias: str) -> str | None:
        found: str | None = self._execute(_GET, {"alias": alias}).scalar()
        return found
