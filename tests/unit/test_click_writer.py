"""The click writer on a SQLite file: clicks buffered by the redirect are written in
batches, on the interval, as soon as a batch is full, and at the stop; a full buffer
drops a click instead of waiting, and a batch the store refuses costs its clicks,
never the writer. A batch fits DynamoDB's transaction too (on moto)."""

import logging
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from referrals.bootstrap import build_store
from referrals.click_writer import ClickWriter
from referrals.domain.clicks import Click, new_click_id
from referrals.metrics import Metrics
from referrals.ports import Store
from tests.contract.conftest import dynamodb_store

AT = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)
LONG = 60.0  # an interval no test waits for: what is written came by another trigger


@pytest.fixture
def url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path}/clicks.db"


@pytest.fixture
def store(url: str) -> Iterator[Store]:
    built = build_store(url, migrate=True)
    yield built
    built.dispose()


@pytest.fixture
def dynamodb(monkeypatch: pytest.MonkeyPatch) -> Iterator[Store]:
    yield from dynamodb_store(monkeypatch)


def a_click() -> Click:
    return Click(new_click_id(), "default", "ALICE", "alice", AT, utm_source="newsletter")


def stored(store: Store, clicks: list[Click]) -> int:
    with store.read() as uow:
        return sum(1 for click in clicks if uow.clicks.get(click.id) == click)


def wait_for(condition: Callable[[], bool], seconds: float = 5.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.01)
    return condition()


def dropped(metrics: Metrics, reason: str) -> float | None:
    return metrics.registry.get_sample_value("referrals_clicks_dropped_total", {"reason": reason})


def test_clicks_are_written_on_the_interval_not_by_record(store: Store) -> None:
    writer = ClickWriter(store, every=0.2, batch=1000)
    writer.start()
    try:
        clicks = [a_click() for _ in range(3)]
        assert all(writer.record(click) for click in clicks)
        assert stored(store, clicks) == 0  # handed over, not written by the redirect
        assert wait_for(lambda: stored(store, clicks) == 3)
    finally:
        writer.stop()
    assert writer.written == 3 and writer.dropped == 0


def test_a_full_batch_is_written_at_once(store: Store) -> None:
    writer = ClickWriter(store, every=LONG, batch=5)
    writer.start()
    try:
        clicks = [a_click() for _ in range(5)]
        for click in clicks:
            writer.record(click)
        assert wait_for(lambda: stored(store, clicks) == 5, seconds=10)
    finally:
        writer.stop()


def test_the_stop_writes_what_is_buffered(store: Store) -> None:
    writer = ClickWriter(store, every=LONG, batch=1000)
    writer.start()
    clicks = [a_click() for _ in range(1200)]  # more than a batch: two transactions
    for click in clicks:
        writer.record(click)
    assert stored(store, clicks) == 0
    writer.stop()
    assert stored(store, clicks) == 1200 and writer.written == 1200


def test_a_full_buffer_drops_the_click_counts_and_logs_it(
    store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    metrics = Metrics(store)
    writer = ClickWriter(store, metrics, every=LONG, batch=1000, capacity=3)
    writer.start()
    clicks = [a_click() for _ in range(5)]
    with caplog.at_level(logging.WARNING, logger="referrals.clicks"):
        taken = [writer.record(click) for click in clicks]
        writer.stop()
    assert taken == [True, True, True, False, False]  # never waits for room
    assert stored(store, clicks[:3]) == 3 and stored(store, clicks[3:]) == 0
    assert writer.dropped == 2 and dropped(metrics, "full") == 2
    assert metrics.registry.get_sample_value("referrals_clicks_written_total") == 3
    assert "2 clicks dropped: the click buffer was full" in caplog.text


def test_a_stopped_writer_takes_no_click(store: Store) -> None:
    metrics = Metrics(store)
    writer = ClickWriter(store, metrics)
    writer.start()
    writer.stop()
    assert writer.record(a_click()) is False
    assert dropped(metrics, "stopped") == 1


def test_a_batch_the_store_refuses_is_dropped_and_the_writer_goes_on(
    store: Store, url: str, caplog: pytest.LogCaptureFixture
) -> None:
    metrics = Metrics(store)
    writer = ClickWriter(store, metrics, every=LONG, batch=1000)
    engine = create_engine(url)
    with engine.begin() as conn:  # a real refusal: the INSERT fails in SQLite
        conn.execute(text("ALTER TABLE clicks RENAME TO clicks_away"))
    lost = [a_click() for _ in range(2)]
    writer.start()
    try:
        for click in lost:
            writer.record(click)
        with caplog.at_level(logging.WARNING, logger="referrals.clicks"):
            assert writer.flush() == 0
        assert dropped(metrics, "store") == 2 and "2 clicks not recorded" in caplog.text
        with engine.begin() as conn:
            conn.execute(text("ALTER TABLE clicks_away RENAME TO clicks"))
        kept = a_click()
        writer.record(kept)
    finally:
        writer.stop()
        engine.dispose()
    assert stored(store, [kept]) == 1 and stored(store, lost) == 0


def test_on_dynamodb_no_transaction_holds_more_than_its_limit(dynamodb: Store) -> None:
    writer = ClickWriter(dynamodb, every=LONG)  # batches of BATCH: at most 100 items
    writer.start()
    clicks = [a_click() for _ in range(250)]
    for click in clicks:
        writer.record(click)
    writer.stop()
    assert writer.dropped == 0 and stored(dynamodb, clicks) == 250
