"""A payout run across programs, on every store: one run per period pays every program,
a line per user and program (sorted by user, then program), each program's minimum
payout applied to the user's total in it, and the report naming each line's program."""

import json
from datetime import UTC, datetime, timedelta

from referrals.domain.model import LineKind, Minimums, PayoutLine, ReferralStatus, Referrer
from referrals.domain.periods import Period
from referrals.ports import Store
from referrals.services.payouts import preview_payout, run_payout
from tests.clocks import FixedClock
from tests.contract.test_store import referral
from tests.fakes import MemoryReports

OCTOBER = Period.parse("2026-10")
EARNED = datetime(2026, 10, 10, tzinfo=UTC)
NOW = datetime(2026, 11, 2, tzinfo=UTC)
PARTNERS = "partners"


def seed(store: Store) -> None:
    """Alice refers in both programs: $10 + $15 in default, $20 in partners; Bob $20 in
    partners only."""
    with store.unit_of_work() as uow:
        for user, program, code in (
            ("alice", "default", "A1"),
            ("alice", PARTNERS, "A2"),
            ("bob", PARTNERS, "B2"),
        ):
            uow.referrers.add(Referrer(user, code, None, 0, EARNED, program_id=program))
        uow.commit()
    rows = [
        ("alice", "default", "u1", 1, 1000),
        ("alice", "default", "u2", 2, 1500),
        ("alice", PARTNERS, "u1", 1, 2000),
        ("bob", PARTNERS, "u3", 1, 2000),
    ]
    with store.unit_of_work() as uow:
        for n, (who, program, referee, ordinal, cents) in enumerate(rows):
            uow.referrals.add(
                referral(
                    who,
                    referee,
                    ordinal,
                    reward_cents=cents,
                    created_at=EARNED + timedelta(minutes=n),
                    program_id=program,
                )
            )
        uow.commit()


def test_a_run_pays_a_line_per_user_and_program(store: Store) -> None:
    seed(store)
    reports = MemoryReports()
    run = run_payout(store, reports, FixedClock(NOW), OCTOBER)
    assert (run.referrer_count, run.referral_count, run.total_cents) == (2, 4, 6500)
    with store.read() as uow:
        assert list(uow.payouts.lines("2026-10")) == [
            PayoutLine("alice", 2, 2500, LineKind.REWARD, "default"),
            PayoutLine("alice", 1, 2000, LineKind.REWARD, PARTNERS),
            PayoutLine("bob", 1, 2000, LineKind.REWARD, PARTNERS),
        ]
    report = reports.get("payouts/2026-10/report.csv")
    assert report is not None
    assert report.decode().splitlines() == [
        "period,referrer_id,referral_count,amount_cents,amount,currency,program",
        "2026-10,alice,2,2500,25.00,USD,default",
        "2026-10,alice,1,2000,20.00,USD,partners",
        "2026-10,bob,1,2000,20.00,USD,partners",
    ]


def test_the_manifest_sums_each_programs_lines_in_its_currency(store: Store) -> None:
    seed(store)
    reports = MemoryReports()
    run_payout(store, reports, FixedClock(NOW), OCTOBER)
    manifest = reports.get("payouts/2026-10/manifest.json")
    assert manifest is not None
    assert json.loads(manifest)["programs"] == [
        {"program": "default", "currency": "USD", "lines": 1, "total_cents": 2500},
        {"program": PARTNERS, "currency": "USD", "lines": 2, "total_cents": 4000},
    ]


def test_each_programs_minimum_applies_to_the_users_total_in_it(store: Store) -> None:
    """Partners pays from $30: Alice's and Bob's $20 there wait for a later run, while
    Alice's $25 in default (no minimum) is paid."""
    seed(store)
    minimums = Minimums({"default": 0, PARTNERS: 3000})
    preview = preview_payout(store, FixedClock(NOW), OCTOBER, minimums)
    assert [(x.referrer_id, x.program_id) for x in preview.lines] == [("alice", "default")]
    assert [(x.referrer_id, x.program_id) for x in preview.carried_forward] == [
        ("alice", PARTNERS),
        ("bob", PARTNERS),
    ]
    assert preview.carried_forward_cents == 4000

    run = run_payout(store, MemoryReports(), FixedClock(NOW), OCTOBER, minimum_cents=minimums)
    assert (run.total_cents, run.carried_forward_cents) == (2500, 4000)
    with store.read() as uow:
        partners = uow.referrals.search(None, None, None, 10, program=PARTNERS)
        default = uow.referrals.search(None, None, None, 10, program="default")
    assert {(r.status, r.payout_period) for r in partners} == {(ReferralStatus.PENDING, None)}
    assert {(r.status, r.payout_period) for r in default} == {(ReferralStatus.PAID, "2026-10")}
