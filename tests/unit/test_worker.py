import logging
import time
from datetime import UTC, datetime

import pytest

from referrals.adapters.memory import MemoryStore
from referrals.bootstrap import Services
from referrals.config import Settings
from referrals.domain.checks import Fingerprints
from referrals.domain.model import Event, EventStatus, RunStatus, new_id
from referrals.domain.program import BEGINNING, Program, RuleVersion
from referrals.domain.tiers import TierSchedule
from referrals.metrics import Metrics
from referrals.services.keys import create_first_admin_key
from referrals.services.outbox import RetryPolicy
from referrals.services.programs import RulesBook
from referrals.services.referrers import enroll
from referrals.services.signups import sign_up
from referrals.worker import BackgroundWorker
from tests.clocks import FixedClock
from tests.fakes import MemoryReports, RecordingNotifier


def services(store: MemoryStore, scheduler: bool) -> Services:
    clock = FixedClock(datetime(2026, 11, 1, 0, 0, 30, tzinfo=UTC))
    return Services(
        settings=Settings(scheduler=scheduler, database_url="memory://"),
        store=store,
        clock=clock,
        rules=RulesBook(store, clock, RuleVersion()),
        reports=MemoryReports(),
        notifier=RecordingNotifier(),
        retry_policy=RetryPolicy(),
        fingerprints=Fingerprints(b"unit-test-fingerprint-key-0123456789"),
    )


def wait_for(condition, seconds: float = 5.0) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return False


def test_worker_runs_the_schedule_and_delivers_events(store: MemoryStore) -> None:
    svc = services(store, scheduler=True)
    code = enroll(store, svc.clock, "alice").referrer.code
    sign_up(
        store,
        svc.clock,
        svc.rules.current(svc.clock),
        "bob",
        code,
        signed_up_at=datetime(2026, 10, 3, tzinfo=UTC),
    )
    worker = BackgroundWorker(svc, dispatch_every=0.01)
    worker.start()
    try:
        assert wait_for(
            lambda: (
                "2026-10" in store.state.runs
                and store.state.runs["2026-10"].status is RunStatus.COMPLETED
            )
        )
        assert wait_for(
            lambda: all(e.status is EventStatus.DELIVERED for e in store.state.outbox.values())
        )
    finally:
        worker.stop()
    delivered = [e.type for e in svc.notifier.delivered]  # type: ignore[attr-defined]
    assert sorted(delivered) == ["payout.completed", "referral.created"]


def test_scheduler_off_runs_no_payout_but_still_delivers(store: MemoryStore) -> None:
    svc = services(store, scheduler=False)
    code = enroll(store, svc.clock, "alice").referrer.code
    sign_up(
        store,
        svc.clock,
        svc.rules.current(svc.clock),
        "bob",
        code,
        signed_up_at=datetime(2026, 10, 3, tzinfo=UTC),
    )
    worker = BackgroundWorker(svc, dispatch_every=0.01)
    worker.start()
    try:
        assert wait_for(lambda: len(svc.notifier.delivered) == 1)  # type: ignore[attr-defined]
        time.sleep(0.1)
    finally:
        worker.stop()
    assert store.state.runs == {}


def test_a_server_started_after_a_month_ended_completes_no_run_for_it(
    store: MemoryStore,
) -> None:
    svc = services(store, scheduler=True)
    svc.clock.moment = datetime(2026, 12, 6, 9, tzinfo=UTC)  # type: ignore[attr-defined]
    create_first_admin_key(store, svc.clock)  # as `serve` does before the worker starts
    metrics = Metrics(store)
    worker = BackgroundWorker(svc, dispatch_every=0.01, schedule_every=0.01, metrics=metrics)
    worker.start()
    try:
        time.sleep(0.2)  # many schedule checks
    finally:
        worker.stop()
    assert store.state.runs == {}  # November is left open for an import and a run
    assert (
        metrics.registry.get_sample_value("referrals_payout_runs_total", {"status": "completed"})
        is None
    )


def test_scheduler_setting_reads_on_and_off() -> None:
    assert Settings(scheduler="off").scheduler is False  # type: ignore[arg-type]
    assert Settings(scheduler="on").scheduler is True  # type: ignore[arg-type]


def test_a_scheduled_payout_run_is_counted_and_timed(store: MemoryStore) -> None:
    svc = services(store, scheduler=True)
    metrics = Metrics(store)
    worker = BackgroundWorker(svc, dispatch_every=0.01, schedule_every=0.01, metrics=metrics)
    completed = {"status": "completed"}
    worker.start()
    try:
        assert wait_for(
            lambda: metrics.registry.get_sample_value("referrals_payout_runs_total", completed)
        )
        time.sleep(0.1)  # later checks find the month paid: no more runs are counted
    finally:
        worker.stop()
    assert metrics.registry.get_sample_value("referrals_payout_runs_total", completed) == 1
    timed = "referrals_payout_run_duration_seconds_count"
    assert metrics.registry.get_sample_value(timed, completed) == 1


def test_while_events_keep_coming_they_are_delivered_at_the_busy_pace(store: MemoryStore) -> None:
    svc = services(store, scheduler=False)
    code = enroll(store, svc.clock, "alice").referrer.code
    sign_up(store, svc.clock, svc.rules.current(svc.clock), "bob", code)
    worker = BackgroundWorker(svc, dispatch_every=60, busy_dispatch_every=0.02)
    worker.start()
    try:
        assert wait_for(lambda: len(svc.notifier.delivered) == 1)  # type: ignore[attr-defined]
        sign_up(store, svc.clock, svc.rules.current(svc.clock), "carol", code)
        # The last round delivered something: the next comes soon, not in a minute.
        assert wait_for(lambda: len(svc.notifier.delivered) == 2)  # type: ignore[attr-defined]
    finally:
        worker.stop()


def test_an_idle_worker_waits_the_idle_interval(store: MemoryStore) -> None:
    svc = services(store, scheduler=False)
    code = enroll(store, svc.clock, "alice").referrer.code
    worker = BackgroundWorker(svc, dispatch_every=60, busy_dispatch_every=0.02)
    worker.start()
    try:
        time.sleep(0.2)  # its first round found nothing to deliver
        sign_up(store, svc.clock, svc.rules.current(svc.clock), "bob", code)
        time.sleep(0.5)  # many busy intervals, far less than the idle one
        assert svc.notifier.delivered == []  # type: ignore[attr-defined]
    finally:
        worker.stop()


def test_the_worker_prunes_delivered_events_past_their_retention(store: MemoryStore) -> None:
    svc = services(store, scheduler=False)
    # Event ids are minted by the wall clock: the test clock starts there.
    svc.clock.moment = datetime.now(UTC)  # type: ignore[attr-defined]
    old = [
        Event(new_id(datetime.now(UTC)), "referral.created", {}, svc.clock.now(), status=status)
        for status in (EventStatus.DELIVERED, EventStatus.DEAD)
    ]
    with store.unit_of_work() as uow:
        for event in old:
            uow.outbox.add(event)
        uow.commit()
    svc.clock.advance(days=svc.settings.outbox_retention_days + 1)  # type: ignore[attr-defined]
    worker = BackgroundWorker(svc, dispatch_every=0.01, prune_every=60)
    worker.start()
    try:
        assert wait_for(lambda: old[0].id not in store.state.outbox)  # pruned at start
    finally:
        worker.stop()
    assert list(store.state.outbox) == [old[1].id]  # a dead letter stays


def test_a_scheduled_run_logs_what_it_paid_in_each_currency(
    store: MemoryStore, caplog: pytest.LogCaptureFixture
) -> None:
    """Alice earned $10.00 in the default program and 500 yen in a JPY one: the line
    names both amounts, never one sum of cents and yen."""
    svc = services(store, scheduler=True)
    yen = RuleVersion(
        tiers=TierSchedule.parse("1:500"), program_id="japan", effective_from=BEGINNING
    )
    with store.unit_of_work() as uow:
        uow.programs.add(Program("japan", "Japan", "JPY", created_at=BEGINNING), yen)
        uow.commit()
    october = datetime(2026, 10, 3, tzinfo=UTC)
    for rules, program in ((svc.rules.current(svc.clock), "default"), (yen, "japan")):
        code = enroll(store, svc.clock, "alice", program=program).referrer.code
        sign_up(store, svc.clock, rules, f"bob-{program}", code, signed_up_at=october)
    caplog.set_level(logging.INFO, logger="referrals.worker")
    worker = BackgroundWorker(svc, dispatch_every=0.01)
    worker.start()
    try:
        assert wait_for(lambda: "completed" in caplog.text)
    finally:
        worker.stop()
    assert "scheduled payout 2026-10 completed: 500 JPY, $10.00" in caplog.text
