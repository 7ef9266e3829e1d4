"""The replay's read on SQL holds one connection and one transaction while it is read,
and gives both back when it ends, read to the end or closed early."""

from pathlib import Path

from referrals.adapters.sql.store import SqlStore
from referrals.bootstrap import build_store
from referrals.domain.model import ReferralStatus
from tests.contract.test_store import add_referrer, referral, referrer

LAST_ID = "7" + "Z" * 25


def test_a_replay_read_closed_early_gives_its_connection_back(tmp_path: Path) -> None:
    store = build_store(f"sqlite:///{tmp_path}/replay.db", migrate=True)
    assert isinstance(store, SqlStore)
    add_referrer(store, referrer("alice", "A1"))
    with store.unit_of_work() as uow:
        for n in range(5):
            uow.referrals.add(referral("alice", f"u{n}", n + 1, status=ReferralStatus.PAID))
        uow.commit()
    pool = store.reader.pool
    parts = store.replay.rows("default", LAST_ID, 2)
    assert len(next(parts)) == 2
    assert pool.checkedout() == 1
    parts.close()
    assert pool.checkedout() == 0
    assert sum(len(part) for part in store.replay.rows("default", LAST_ID, 2)) == 5
    assert pool.checkedout() == 0
    store.dispose()
