import csv
import hashlib
import io
import json
from datetime import UTC, datetime

import pytest

from referrals.domain.model import (
    CurrencyTotal,
    LineKind,
    PayoutLine,
    PayoutRun,
    RunStatus,
)
from referrals.domain.reports import (
    HEADER,
    ProgramTotal,
    neutralise,
    render_csv,
    render_manifest,
)
from referrals.domain.run_totals import with_totals

NOV = datetime(2026, 11, 1, tzinfo=UTC)


def report(lines: list[PayoutLine]) -> bytes:
    return b"".join(render_csv("2026-10", lines))


@pytest.mark.parametrize(
    "cell", ["1e5", "1E5", "00123", "0.5", "12:30", "2026-11", "1234567890123456"]
)
def test_ids_a_spreadsheet_would_read_as_another_value_are_neutralised(cell: str) -> None:
    assert neutralise(cell) == "'" + cell


@pytest.mark.parametrize("cell", ["0", "42", "123456789012345", "u1e5", "alice.smith", "a:1"])
def test_ids_a_spreadsheet_keeps_as_they_are_stay(cell: str) -> None:
    assert neutralise(cell) == cell


@pytest.mark.parametrize("cell", ["=1+1", "+cmd", "-2", "@SUM(A1)", "\tx", "\rx"])
def test_formula_triggers_are_neutralised(cell: str) -> None:
    assert neutralise(cell) == "'" + cell


def test_plain_cells_are_left_alone() -> None:
    assert neutralise("alice") == "alice"
    assert neutralise("") == ""


def test_report_has_header_and_a_line_per_referrer() -> None:
    data = report([PayoutLine("alice", 2, 2000), PayoutLine("bob", 5, 5500)])
    rows = list(csv.reader(io.StringIO(data.decode())))
    assert tuple(rows[0]) == HEADER
    assert rows[1:] == [
        ["2026-10", "alice", "2", "2000", "20.00", "USD", "default"],
        ["2026-10", "bob", "5", "5500", "55.00", "USD", "default"],
    ]


def test_injection_in_a_referrer_id_is_inert_and_quoted_cells_round_trip() -> None:
    data = report([PayoutLine('-x,"y"', 1, 1000), PayoutLine("@evil", 1, 1000)])
    rows = list(csv.reader(io.StringIO(data.decode())))
    assert rows[1][1] == '\'-x,"y"' and rows[2][1] == "'@evil"
    assert len(rows[1]) == len(HEADER)


def test_totals_equal_the_sum_of_lines() -> None:
    lines = [PayoutLine(f"u{i:04d}", i % 7 + 1, (i % 7 + 1) * 1000) for i in range(2500)]
    rows = list(csv.DictReader(io.StringIO(report(lines).decode())))
    assert len(rows) == 2500
    assert sum(int(r["amount_cents"]) for r in rows) == sum(x.amount_cents for x in lines)


def test_report_bytes_are_deterministic_across_chunking() -> None:
    lines = [PayoutLine(f"u{i:05d}", 1, 1000) for i in range(3001)]
    assert report(lines) == report(list(lines))
    assert len(list(render_csv("2026-10", lines))) > 1  # streamed in chunks


def test_manifest_carries_the_sha_chain() -> None:
    data = report([PayoutLine("alice", 1, 1000)])
    run = PayoutRun(
        "2026-10",
        RunStatus.COMPLETED,
        datetime(2026, 11, 1, tzinfo=UTC),
        started_at=datetime(2026, 11, 1, tzinfo=UTC),
        referrer_count=1,
        referral_count=1,
        total_cents=1000,
        report_key="payouts/2026-10/report.csv",
        report_sha256=hashlib.sha256(data).hexdigest(),
        previous_month_period="2026-08",
        previous_month_sha256="ab" * 32,
        previous_period="2026-11",
        previous_sha256="cd" * 32,
    )
    manifest = json.loads(render_manifest(run))
    assert manifest["sha256"] == hashlib.sha256(data).hexdigest()
    # Both links, each naming its period: by month, and by completion.
    assert (manifest["previous_month_period"], manifest["previous_month_sha256"]) == (
        "2026-08",
        "ab" * 32,
    )
    assert manifest["previous_period"] == "2026-11"
    assert manifest["previous_sha256"] == "cd" * 32
    assert manifest["total_cents"] == 1000 and manifest["referrer_count"] == 1
    assert render_manifest(run) == render_manifest(run)


def test_each_line_is_in_its_programs_currency_with_its_decimals() -> None:
    lines = [
        PayoutLine("alice", 2, 2500, program_id="default"),
        PayoutLine("alice", 1, 1500, program_id="japan"),
        PayoutLine("bob", 1, -1250, LineKind.CLAWBACK, "kuwait"),
    ]
    data = b"".join(render_csv("2026-10", lines, {"japan": "JPY", "kuwait": "KWD"}))
    rows = list(csv.DictReader(io.StringIO(data.decode())))
    assert [(r["amount_cents"], r["amount"], r["currency"]) for r in rows] == [
        ("2500", "25.00", "USD"),  # a program not named pays in USD
        ("1500", "1500", "JPY"),
        ("-1250", "-1.250", "KWD"),
    ]


def test_a_manifest_of_several_currencies_sums_none_of_them_together() -> None:
    run = with_totals(
        PayoutRun("2026-10", RunStatus.COMPLETED, NOV, started_at=NOV, referrer_count=1),
        (CurrencyTotal("USD", 1, 2, 2500), CurrencyTotal("JPY", 1, 1, 1500, 0, 300)),
    )
    japan = ProgramTotal("japan", "JPY", 1, 1500)
    manifest = json.loads(render_manifest(run, [japan]))
    assert (manifest["total_cents"], manifest["clawback_cents"], manifest["currency"]) == (
        None,
        None,
        None,
    )
    assert manifest["carried_forward_cents"] is None
    assert [(t["currency"], t["exponent"], t["total"]) for t in manifest["totals"]] == [
        ("JPY", 0, "1500"),
        ("USD", 2, "25.00"),
    ]
    assert manifest["totals"][0]["carried_forward"] == "300"
    assert manifest["programs"] == [
        {"program": "japan", "currency": "JPY", "lines": 1, "total_cents": 1500, "total": "1500"}
    ]


def test_a_manifest_of_one_currency_names_it_with_its_figures() -> None:
    run = with_totals(
        PayoutRun("2026-10", RunStatus.COMPLETED, NOV, started_at=NOV),
        (CurrencyTotal("KWD", 1, 1, 1234, 100),),
    )
    manifest = json.loads(render_manifest(run))
    assert (manifest["total_cents"], manifest["clawback_cents"], manifest["currency"]) == (
        1234,
        100,
        "KWD",
    )
    assert manifest["totals"][0]["total"] == "1.234"
