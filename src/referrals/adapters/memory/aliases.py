"""Sale aliases (ports.aliases), in memory."""

from referrals.adapters.memory.state import State
from referrals.domain.errors import Conflict


class MemorySaleAliases:
    def __init__(self, state: State) -> None:
        self._s = state

    def add(self, alias: str, sale_external_id: str) -> None:
        if alias in self._s.sale_aliases:
            raise Conflict("alias taken")
        self._s.sale_aliases[alias] = sale_external_id

    def get(self, alias: str) -> str | None:
        return self._s.sale_aliases.get(alias)
