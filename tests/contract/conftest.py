"""Every store adapter runs the same contract suite; add an adapter to `STORES` to include it."""

from collections.abc import Iterator
from pathlib import Path

import pytest

from referrals.adapters.memory import MemoryStore
from referrals.adapters.sql.store import SqlStore
from referrals.bootstrap import build_store
from referrals.ports import Store

STORES = ["memory", "sqlite"]


@pytest.fixture(params=STORES)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    if request.param == "memory":
        yield MemoryStore()
        return
    sql = build_store(f"sqlite:///{tmp_path}/contract.db", migrate=True)
    assert isinstance(sql, SqlStore)
    yield sql
    sql.dispose()
