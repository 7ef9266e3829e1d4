"""MicrosTime: statements take and rows give `datetime`s, the columns hold integer
microseconds since the epoch (UTC), as every migration and existing database has them."""

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import Column, Integer, MetaData, Table, create_engine, insert, select, text

from referrals.adapters.sql.store import SqlStore
from referrals.adapters.sql.types import MicrosTime
from referrals.bootstrap import build_store
from referrals.domain.model import Referrer

_metadata = MetaData()
_times = Table(
    "times", _metadata, Column("id", Integer, primary_key=True), Column("at", MicrosTime)
)
_engine = create_engine("sqlite://")
_metadata.create_all(_engine)


@given(st.datetimes(timezones=st.just(UTC)))
def test_a_time_survives_a_column_to_the_microsecond(moment: datetime) -> None:
    with _engine.begin() as conn:
        conn.execute(_times.delete())
        conn.execute(insert(_times), {"id": 1, "at": moment})
        assert conn.execute(select(_times.c.at)).scalar_one() == moment


def test_a_missing_time_is_null() -> None:
    with _engine.begin() as conn:
        conn.execute(_times.delete())
        conn.execute(insert(_times), {"id": 1, "at": None})
        assert conn.execute(text("SELECT at FROM times")).scalar_one() is None
        assert conn.execute(select(_times.c.at)).scalar_one() is None


def test_a_time_compares_as_its_instant_and_adds_microseconds() -> None:
    paris = datetime(2026, 7, 1, 2, 0, tzinfo=timezone(timedelta(hours=2)))
    with _engine.begin() as conn:
        conn.execute(_times.delete())
        conn.execute(insert(_times), {"id": 1, "at": datetime(2026, 7, 1, tzinfo=UTC)})
        assert conn.execute(select(_times.c.id).where(_times.c.at == paris)).scalar() == 1
        later = select(_times.c.at + 1_000_000)  # an integer: arithmetic on the micros
        assert conn.execute(later).scalar_one() == 1_782_864_000_000_000 + 1_000_000


def test_the_store_writes_integer_microseconds(tmp_path: Path) -> None:
    store = build_store(f"sqlite:///{tmp_path}/times.db", migrate=True)
    assert isinstance(store, SqlStore)
    try:
        at = datetime(2025, 12, 5, 6, 10, 0, 123_456, tzinfo=UTC)
        with store.unit_of_work() as uow:
            uow.referrers.add(Referrer("alice", "ALICE1", None, referral_count=0, created_at=at))
            uow.commit()
        with store.reader.connect() as conn:
            stored = conn.execute(text("SELECT created_at FROM referrers")).scalar_one()
        assert stored == 1_764_915_000_123_456
    finally:
        store.dispose()
