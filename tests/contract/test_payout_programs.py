"""A payout run across programs, on every store: one run per period pays every program,
a line per user and program (sorted by user, then program), each program's minimum
payout applied to the user's total in it, and the report naming each line's program.
Programs in different currencies: the run keeps one total per currency, stored and read
back on every store, and never sums them."""

import json
from datetime import UTC, datetime, timedelta

from referrals.domain import events
from referrals.domain.model import (
    CurrencyTotal,
    LineKind,
    Minimums,
    PayoutLine,
    ReferralStatus,
    Referrer,
)
from referrals.domain.periods import Period
from referrals.domain.program import Program, RuleVersion
from referrals.ports import Store
from referrals.services.payouts import preview_payout, run_payout
from referrals.services.programs import create_program
from tests.clocks import FixedClock
from tests.contract.test_store import referral
from tests.fakes import MemoryReports

OCTOBER = Period.parse("2026-10")
EARNED = datetime(2026, 10, 10, tzinfo=UTC)
NOW = datetime(2026, 11, 2, tzinfo=UTC)
PARTNERS = "partners"


Row = tuple[str, str, str, int, int]  # referrer, program, referee, ordinal, cents


def seed(store: Store) -> None:
    """Alice refers in both programs: $10 + $15 in default, $20 in partners; Bob $20 in
    partners only."""
    add_referrals(
        store,
        [("alice", "default", "A1"), ("alice", PARTNERS, "A2"), ("bob", PARTNERS, "B2")],
        [
            ("alice", "default", "u1", 1, 1000),
            ("alice", "default", "u2", 2, 1500),
            ("alice", PARTNERS, "u1", 1, 2000),
            ("bob", PARTNERS, "u3", 1, 2000),
        ],
    )


def add_referrals(store: Store, referrers: list[tuple[str, str, str]], rows: list[Row]) -> None:
    """The referrers (user, program, code), then their referrals a minute apart."""
    with store.unit_of_work() as uow:
        for user, program, code in referrers:
            uow.referrers.add(Referrer(user, code, None, 0, EARNED, program_id=program))
        uow.commit()
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
        {
            "program": "default",
            "currency": "USD",
            "lines": 1,
            "total_cents": 2500,
            "total": "25.00",
        },
        {"program": PARTNERS, "currency": "USD", "lines": 2, "total_cents": 4000, "total": "40.00"},
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


JAPAN = "japan"


TWO_CURRENCIES = [
    ("alice", "default", "u1", 1, 1000),
    ("alice", "default", "u2", 2, 1500),
    ("alice", JAPAN, "u1", 1, 500),
    ("bob", JAPAN, "u3", 1, 700),
]


def seed_two_currencies(store: Store, rows: list[Row] = TWO_CURRENCIES) -> None:
    """Alice: $10 + $15 in default (USD) and 500 yen in japan (JPY); Bob 700 yen in japan."""
    create_program(store, FixedClock(EARNED), "test", Program(JAPAN, "Japan", "JPY"), RuleVersion())
    referrers = [("alice", "default", "A1"), ("alice", JAPAN, "A3"), ("bob", JAPAN, "B3")]
    add_referrals(store, referrers, rows)


def test_a_run_keeps_one_total_per_currency_and_reads_it_back(store: Store) -> None:
    """Japan pays from 600 yen: Alice's 500 yen waits, Bob's 700 is paid; Alice's $25 is
    paid. The run's single figures are null: USD and JPY are never summed."""
    seed_two_currencies(store)
    minimums = Minimums({JAPAN: 600})
    reports = MemoryReports()
    run = run_payout(store, reports, FixedClock(NOW), OCTOBER, minimum_cents=minimums)
    expected = (
        CurrencyTotal("JPY", 1, 1, 700, 0, 500),
        CurrencyTotal("USD", 1, 2, 2500, 0, 0),
    )
    assert run.totals == expected
    assert (run.referrer_count, run.referral_count) == (2, 3)
    assert (run.total_cents, run.clawback_cents, run.carried_forward_cents) == (None, None, None)
    with store.read() as uow:
        stored = uow.payouts.get("2026-10")
        listed = list(uow.payouts.list())
        last = uow.payouts.last_completed()
        before = uow.payouts.completed_before("2026-11")
    assert stored == run and listed == [run] and last == run and before == run

    report = reports.get("payouts/2026-10/report.csv")
    assert report is not None
    assert report.decode().splitlines()[1:] == [
        "2026-10,alice,2,2500,25.00,USD,default",
        "2026-10,bob,1,700,700,JPY,japan",
    ]
    manifest = json.loads(reports.get("payouts/2026-10/manifest.json") or b"")
    assert (manifest["total_cents"], manifest["currency"]) == (None, None)
    assert [(t["currency"], t["total_cents"], t["total"]) for t in manifest["totals"]] == [
        ("JPY", 700, "700"),
        ("USD", 2500, "25.00"),
    ]
    with store.read() as uow:
        sent = [e for e in uow.outbox.list(None, 10) if e.type == events.PAYOUT_COMPLETED]
    assert sent[0].payload["total_cents"] is None
    assert [(t["currency"], t["total_cents"]) for t in sent[0].payload["totals"]] == [  # type: ignore[attr-defined]
        ("JPY", 700),
        ("USD", 2500),
    ]


def test_a_preview_sums_per_currency(store: Store) -> None:
    seed_two_currencies(store)
    preview = preview_payout(store, FixedClock(NOW), OCTOBER, Minimums({JAPAN: 600}))
    assert preview.totals == (
        CurrencyTotal("JPY", 1, 1, 700, 0, 500),
        CurrencyTotal("USD", 1, 2, 2500, 0, 0),
    )
    assert preview.total_cents is None
    assert preview.currencies[JAPAN] == "JPY"


def test_a_run_in_one_other_currency_keeps_its_single_figures(store: Store) -> None:
    """Only yen is due: the run is in one currency, and its figures are that currency's."""
    seed_two_currencies(store, [row for row in TWO_CURRENCIES if row[1] == JAPAN])
    run = run_payout(store, MemoryReports(), FixedClock(NOW), OCTOBER)
    assert run.totals == (CurrencyTotal("JPY", 2, 2, 1200, 0, 0),)
    assert (run.total_cents, run.clawback_cents, run.carried_forward_cents) == (1200, 0, 0)
    with store.read() as uow:
        assert uow.payouts.get("2026-10") == run
