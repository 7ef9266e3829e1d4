import csv
import hashlib
import io
import json
from datetime import UTC, datetime

import pytest

from referrals.domain.model import PayoutLine, PayoutRun, RunStatus
from referrals.domain.reports import HEADER, neutralise, render_csv, render_manifest


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
