"""Other ids a sale is known by (ports.aliases), on every store: written once, read back
consistently, a taken alias a Conflict, and nothing kept of a unit of work not committed."""

import pytest

from referrals.domain.errors import Conflict
from referrals.ports import Store


def link(store: Store, alias: str, sale: str) -> None:
    with store.unit_of_work() as uow:
        uow.sale_aliases.add(alias, sale)
        uow.commit()


def test_an_alias_names_its_sale(store: Store) -> None:
    link(store, "pi_1", "in_1")  # the sale need not be recorded yet
    with store.read() as uow:
        assert uow.sale_aliases.get("pi_1") == "in_1"
        assert uow.sale_aliases.get("pi_2") is None
        assert uow.sale_aliases.get("in_1") is None


def test_an_alias_is_taken_once(store: Store) -> None:
    link(store, "pi_1", "in_1")
    with pytest.raises(Conflict):
        link(store, "pi_1", "in_2")
    with store.read() as uow:
        assert uow.sale_aliases.get("pi_1") == "in_1"


def test_an_alias_not_committed_is_not_kept(store: Store) -> None:
    with store.unit_of_work() as uow:
        uow.sale_aliases.add("pi_1", "in_1")
    with store.read() as uow:
        assert uow.sale_aliases.get("pi_1") is None
