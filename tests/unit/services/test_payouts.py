import csv
import hashlib
import io
import json
from datetime import UTC, datetime

import pytest

from referrals.adapters.memory import MemoryStore
from referrals.domain.errors import InvalidInput, PayoutFailed, PayoutInProgress
from referrals.domain.model import ReferralStatus, RunStatus
from referrals.domain.periods import Period
from referrals.domain.program import RuleVersion
from referrals.services import payout_reports, payouts, reviews
from referrals.services.referrers import enroll
from referrals.services.signups import sign_up
from tests.clocks import FixedClock
from tests.fakes import MemoryReports

OCT = Period(2026, 10)
NOW = datetime(2026, 11, 25, 12, tzinfo=UTC)


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(NOW)


@pytest.fixture
def reports() -> MemoryReports:
    return MemoryReports()


def seed(store: MemoryStore, clock: FixedClock, referrer: str, moments: list[datetime]) -> None:
    code = enroll(store, clock, referrer).referrer.code
    for n, moment in enumerate(moments):
        sign_up(store, clock, RuleVersion(), f"{referrer}-ref-{n}", code, signed_up_at=moment)


def statuses(store: MemoryStore) -> dict[str, tuple[ReferralStatus, str | None]]:
    return {r.referee_id: (r.status, r.payout_period) for r in store.state.referrals.values()}


def test_run_pays_rewards_before_the_cutoff_only(
    store: MemoryStore, clock: FixedClock, reports: MemoryReports
) -> None:
    seed(store, clock, "alice", [datetime(2026, 10, 31, 23, 59, 59, 999_000, tzinfo=UTC)] * 5)
    seed(store, clock, "bob", [datetime(2026, 11, 1, tzinfo=UTC)])
    run = payouts.run_payout(store, reports, clock, OCT)
    assert run.status is RunStatus.COMPLETED
    assert (run.referrer_count, run.referral_count, run.total_cents) == (1, 5, 4 * 1000 + 1500)
    state = statuses(store)
    assert all(state[f"alice-ref-{n}"] == (ReferralStatus.PAID, "2026-10") for n in range(5))
    assert state["bob-ref-0"] == (ReferralStatus.PENDING, None)


def test_report_and_manifest_match_the_run(
    store: MemoryStore, clock: FixedClock, reports: MemoryReports
) -> None:
    seed(store, clock, "bob", [datetime(2026, 10, 2, tzinfo=UTC)] * 2)
    seed(store, clock, "alice", [datetime(2026, 10, 3, tzinfo=UTC)])
    run = payouts.run_payout(store, reports, clock, OCT)
    data = reports.objects["payouts/2026-10/report.csv"]
    rows = list(csv.DictReader(io.StringIO(data.decode())))
    assert [r["referrer_id"] for r in rows] == ["alice", "bob"]
    assert sum(int(r["amount_cents"]) for r in rows) == run.total_cents == 3000
    manifest = json.loads(reports.objects["payouts/2026-10/manifest.json"])
    assert manifest["sha256"] == hashlib.sha256(data).hexdigest() == run.report_sha256
    assert payout_reports.get_report(store, reports, OCT) == data


def test_older_unpaid_rewards_are_included(
    store: MemoryStore, clock: FixedClock, reports: MemoryReports
) -> None:
    seed(
        store, clock, "alice", [datetime(2026, 3, 5, tzinfo=UTC), datetime(2026, 10, 5, tzinfo=UTC)]
    )
    assert payouts.run_payout(store, reports, clock, OCT).referral_count == 2


def test_a_completed_period_is_a_no_op(
    store: MemoryStore, clock: FixedClock, reports: MemoryReports
) -> None:
    seed(store, clock, "alice", [datetime(2026, 10, 5, tzinfo=UTC)])
    first = payouts.run_payout(store, reports, clock, OCT)
    seed(store, clock, "late", [datetime(2026, 10, 6, tzinfo=UTC)])  # imported after the run
    again = payouts.run_payout(store, reports, clock, OCT)
    assert again == first
    assert statuses(store)["late-ref-0"] == (ReferralStatus.PENDING, None)


def test_a_later_period_pays_what_an_earlier_run_missed(
    store: MemoryStore, clock: FixedClock, reports: MemoryReports
) -> None:
    payouts.run_payout(store, reports, clock, Period(2026, 9))
    seed(store, clock, "late", [datetime(2026, 9, 20, tzinfo=UTC)])
    assert payouts.run_payout(store, reports, clock, OCT).referral_count == 1


def test_a_period_that_has_not_ended_is_refused(
    store: MemoryStore, clock: FixedClock, reports: MemoryReports
) -> None:
    with pytest.raises(InvalidInput):
        payouts.run_payout(store, reports, clock, Period(2026, 11))
    assert store.state.runs == {}


def test_a_live_run_elsewhere_is_in_progress(
    store: MemoryStore, clock: FixedClock, reports: MemoryReports
) -> None:
    with store.unit_of_work() as uow:
        assert uow.payouts.claim("2026-10", OCT.cutoff, "other", NOW, NOW + payouts.LEASE)
        uow.commit()
    with pytest.raises(PayoutInProgress):
        payouts.run_payout(store, reports, clock, OCT)


def test_an_expired_lease_is_taken_over_and_the_run_resumed(
    store: MemoryStore, clock: FixedClock, reports: MemoryReports
) -> None:
    seed(store, clock, "alice", [datetime(2026, 10, 5, tzinfo=UTC)] * 4)

    def crash(step: str) -> None:
        if step == "assign_batch":
            raise KeyboardInterrupt  # a crash is not a failure the run can record

    with pytest.raises(KeyboardInterrupt):
        payouts.run_payout(store, reports, clock, OCT, batch_size=2, checkpoint=crash)
    assert sum(s == ReferralStatus.PROCESSING for s, _ in statuses(store).values()) == 2
    with pytest.raises(PayoutInProgress):
        payouts.run_payout(store, reports, clock, OCT)
    clock.advance(seconds=payouts.LEASE.total_seconds() + 1)
    run = payouts.run_payout(store, reports, clock, OCT)
    assert run.referral_count == 4
    assert all(s == (ReferralStatus.PAID, "2026-10") for s in statuses(store).values())


def test_a_run_failing_again_the_same_way_sends_no_second_notice(
    store: MemoryStore, clock: FixedClock, reports: MemoryReports
) -> None:
    """The schedule retries a failing month every minute: one payout.failed per
    failure, not per retry; a different failure is news again."""
    seed(store, clock, "alice", [datetime(2026, 10, 5, tzinfo=UTC)])

    def failures() -> int:
        return [e.type for e in store.state.outbox.values()].count("payout.failed")

    reports.failing = True
    for _ in range(3):
        with pytest.raises(PayoutFailed):
            payouts.run_payout(store, reports, clock, OCT)
    assert failures() == 1
    reports.failing = False

    def other_failure(step: str) -> None:
        if step == "assigned":
            raise RuntimeError("the database went away")

    with pytest.raises(PayoutFailed):
        payouts.run_payout(store, reports, clock, OCT, checkpoint=other_failure)
    assert failures() == 2
    assert payouts.run_payout(store, reports, clock, OCT).status is RunStatus.COMPLETED


def test_report_store_failure_fails_the_run_and_a_rerun_completes(
    store: MemoryStore, clock: FixedClock, reports: MemoryReports
) -> None:
    seed(store, clock, "alice", [datetime(2026, 10, 5, tzinfo=UTC)] * 3)
    reports.failing = True
    with pytest.raises(PayoutFailed):
        payouts.run_payout(store, reports, clock, OCT)
    failed = payouts.get_run(store, OCT)
    assert failed.status is RunStatus.FAILED and "unavailable" in (failed.error or "")
    assert not any(s == ReferralStatus.PAID for s, _ in statuses(store).values())
    assert [e.type for e in store.state.outbox.values()].count("payout.failed") == 1
    reports.failing = False
    run = payouts.run_payout(store, reports, clock, OCT)
    assert run.status is RunStatus.COMPLETED and run.referral_count == 3
    assert run.error is None


def test_losing_the_lease_stops_the_assignment(
    store: MemoryStore, clock: FixedClock, reports: MemoryReports
) -> None:
    seed(store, clock, "alice", [datetime(2026, 10, 5, tzinfo=UTC)] * 4)

    def steal(step: str) -> None:
        # Another process saw the lease expire (this one stalled) and took the run over.
        if step == "assign_batch":
            later = NOW + payouts.LEASE * 2
            with store.unit_of_work() as uow:
                assert uow.payouts.claim("2026-10", OCT.cutoff, "thief", later, later)
                uow.commit()

    with pytest.raises(PayoutInProgress):
        payouts.run_payout(store, reports, clock, OCT, batch_size=2, checkpoint=steal)
    assert sum(s == ReferralStatus.PROCESSING for s, _ in statuses(store).values()) == 2


def test_dry_run_writes_nothing_and_matches_the_run(
    store: MemoryStore, clock: FixedClock, reports: MemoryReports
) -> None:
    seed(store, clock, "alice", [datetime(2026, 10, 5, tzinfo=UTC)] * 6)
    seed(store, clock, "bob", [datetime(2026, 10, 7, tzinfo=UTC)])
    before = repr(store.state)
    preview = payouts.preview_payout(store, clock, OCT)
    assert repr(store.state) == before and reports.objects == {}
    run = payouts.run_payout(store, reports, clock, OCT)
    assert (preview.referrer_count, preview.referral_count, preview.total_cents) == (
        run.referrer_count,
        run.referral_count,
        run.total_cents,
    )
    assert [line.referrer_id for line in preview.lines] == ["alice", "bob"]


def test_reports_form_a_hash_chain(
    store: MemoryStore, clock: FixedClock, reports: MemoryReports
) -> None:
    seed(
        store, clock, "alice", [datetime(2026, 9, 5, tzinfo=UTC), datetime(2026, 10, 5, tzinfo=UTC)]
    )
    september = payouts.run_payout(store, reports, clock, Period(2026, 9))
    clock.advance(seconds=1)
    october = payouts.run_payout(store, reports, clock, OCT)
    assert september.previous_month_sha256 is None
    assert october.previous_month_sha256 == september.report_sha256
    assert (october.previous_month_period, october.previous_period) == ("2026-09", "2026-09")


def test_a_dry_run_of_a_completed_month_says_so_and_shows_what_it_paid(
    store: MemoryStore, clock: FixedClock, reports: MemoryReports
) -> None:
    seed(store, clock, "alice", [datetime(2026, 10, 5, tzinfo=UTC)] * 2)
    before = payouts.preview_payout(store, clock, OCT)
    assert before.status is None and before.completed_at is None
    run = payouts.run_payout(store, reports, clock, OCT)
    # A reward imported since is not the completed month's: the next run pays it.
    seed(store, clock, "bob", [datetime(2026, 10, 9, tzinfo=UTC)])
    clock.advance(hours=1)
    after = payouts.preview_payout(store, clock, OCT)
    assert after.status is RunStatus.COMPLETED and after.completed_at == run.completed_at
    assert (after.referrer_count, after.referral_count, after.total_cents) == (1, 2, 2000)
    assert [(line.referrer_id, line.amount_cents) for line in after.lines] == [("alice", 2000)]
    assert after.held == [] and after.carried_forward == []


def test_the_manifest_of_a_completed_month_is_served_and_published_again_if_lost(
    store: MemoryStore, clock: FixedClock, reports: MemoryReports
) -> None:
    seed(store, clock, "alice", [datetime(2026, 10, 5, tzinfo=UTC)])
    run = payouts.run_payout(store, reports, clock, OCT)
    del reports.objects["payouts/2026-10/manifest.json"]
    manifest = json.loads(payout_reports.get_manifest(store, reports, OCT))
    assert manifest["sha256"] == run.report_sha256 and manifest["total_cents"] == 1000
    assert "payouts/2026-10/manifest.json" in reports.objects


def test_a_published_manifest_is_never_rewritten_even_in_an_older_shape(
    store: MemoryStore, clock: FixedClock, reports: MemoryReports
) -> None:
    seed(store, clock, "alice", [datetime(2026, 10, 5, tzinfo=UTC)])
    run = payouts.run_payout(store, reports, clock, OCT)
    # As an earlier release wrote it: the same report, fewer fields.
    older = json.dumps({"period": "2026-10", "sha256": run.report_sha256}).encode()
    reports.objects["payouts/2026-10/manifest.json"] = older
    payouts.run_payout(store, reports, clock, OCT)  # a completed month: a no-op
    assert reports.objects["payouts/2026-10/manifest.json"] == older
    assert payout_reports.get_manifest(store, reports, OCT) == older


def test_progress_is_reported_per_batch(
    store: MemoryStore, clock: FixedClock, reports: MemoryReports
) -> None:
    seed(store, clock, "alice", [datetime(2026, 10, 5, tzinfo=UTC)] * 7)
    seen: list[int] = []
    payouts.run_payout(store, reports, clock, OCT, batch_size=3, on_progress=seen.append)
    assert seen == [3, 6, 7]


def test_completion_announces_one_event(
    store: MemoryStore, clock: FixedClock, reports: MemoryReports
) -> None:
    seed(store, clock, "alice", [datetime(2026, 10, 5, tzinfo=UTC)])
    payouts.run_payout(store, reports, clock, OCT)
    payouts.run_payout(store, reports, clock, OCT)
    completed = [e for e in store.state.outbox.values() if e.type == "payout.completed"]
    assert len(completed) == 1 and completed[0].payload["total_cents"] == 1000


def test_a_publication_failure_after_completion_is_not_a_failed_run(
    store: MemoryStore, clock: FixedClock, reports: MemoryReports
) -> None:
    seed(store, clock, "alice", [datetime(2026, 10, 5, tzinfo=UTC)] * 2)
    reports.refused.add("payouts/2026-10/report.csv")
    run = payouts.run_payout(store, reports, clock, OCT)
    assert run.status is RunStatus.COMPLETED and run.referral_count == 2
    assert [e.type for e in store.state.outbox.values()].count("payout.failed") == 0
    assert "payouts/2026-10/report.csv" not in reports.objects
    reports.refused.clear()
    assert (
        payout_reports.get_report(store, reports, OCT)
        == reports.objects["payouts/2026-10/report.csv"]
    )
    assert hashlib.sha256(reports.objects["payouts/2026-10/report.csv"]).hexdigest() == (
        run.report_sha256
    )


def test_a_total_below_the_minimum_is_carried_to_a_later_run(
    store: MemoryStore, clock: FixedClock, reports: MemoryReports
) -> None:
    seed(store, clock, "alice", [datetime(2026, 9, 9, tzinfo=UTC)])  # $10
    seed(store, clock, "bob", [datetime(2026, 9, 9, tzinfo=UTC)] * 2)  # $20
    september = payouts.run_payout(store, reports, clock, Period(2026, 9), minimum_cents=1500)
    assert (september.referrer_count, september.total_cents) == (1, 2000)
    assert september.carried_forward_cents == 1000
    assert statuses(store)["alice-ref-0"] == (ReferralStatus.PENDING, None)
    # Alice earns again in October: with September's $10 she reaches the minimum.
    sign_up(
        store,
        clock,
        RuleVersion(),
        "alice-ref-1",
        store.state.referrers["default", "alice"].code,
        signed_up_at=datetime(2026, 10, 3, tzinfo=UTC),
    )
    october = payouts.run_payout(store, reports, clock, OCT, minimum_cents=1500)
    assert (october.referrer_count, october.referral_count, october.total_cents) == (1, 2, 2000)
    assert october.carried_forward_cents == 0
    assert statuses(store)["alice-ref-0"] == (ReferralStatus.PAID, "2026-10")


def test_a_dry_run_shows_what_it_would_carry_and_what_is_held(
    store: MemoryStore, clock: FixedClock
) -> None:
    seed(store, clock, "alice", [datetime(2026, 10, 9, tzinfo=UTC)])
    seed(store, clock, "bob", [datetime(2026, 10, 9, tzinfo=UTC)] * 2)
    code = store.state.referrers["default", "bob"].code
    held = sign_up(store, clock, RuleVersion(), "carol", code, "carol@yopmail.com").referral
    preview = payouts.preview_payout(store, clock, OCT, minimum_cents=1500)
    assert [(line.referrer_id, line.amount_cents) for line in preview.lines] == [("bob", 2000)]
    assert [(line.referrer_id, line.amount_cents) for line in preview.carried_forward] == [
        ("alice", 1000)
    ]
    assert preview.carried_forward_cents == 1000 and preview.total_cents == 2000
    assert [r.id for r in preview.held] == [held.id] and preview.held_count == 1
    assert store.state.runs == {}


def test_a_dry_run_counts_deferred_money_as_the_run_does_debts_aside(
    store: MemoryStore, clock: FixedClock, reports: MemoryReports
) -> None:
    seed(store, clock, "alice", [datetime(2026, 9, 9, tzinfo=UTC)])  # $10, paid in September
    payouts.run_payout(store, reports, clock, Period(2026, 9))
    [paid] = store.state.referrals.values()
    reviews.reverse(store, clock, "admin", paid.id, "chargeback")  # Alice owes $10
    seed(store, clock, "bob", [datetime(2026, 10, 9, tzinfo=UTC)])  # $10, below $15
    dec = Period(2026, 12)
    clock.advance(days=40)
    preview = payouts.preview_payout(store, clock, dec, minimum_cents=1500)
    assert sorted(line.referrer_id for line in preview.carried_forward) == ["alice", "bob"]
    assert preview.carried_forward_cents == 1000  # Bob's $10; Alice's debt is not money due
    run = payouts.run_payout(store, reports, clock, dec, minimum_cents=1500)
    assert run.carried_forward_cents == preview.carried_forward_cents
