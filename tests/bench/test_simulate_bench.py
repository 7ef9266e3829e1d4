"""A small run of bench.simulate on both databases, so it never rots. Figures are
printed, never asserted; what is asserted is that every measurement read every row
(and the backtest reproduced what was earned: the bench checks that itself)."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]


@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
def test_the_simulation_benchmark_reports_each_measurement_against_the_scan(database: str) -> None:
    args = ["--sizes", "3000", "--per-referrer", "5", "--database", database]
    out = subprocess.run(
        [sys.executable, "-m", "bench.simulate", *args],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    row = json.loads(out.splitlines()[0])
    assert (row["signups"], row["referrers"]) == (3000, 600)
    for kind in ("store_read", "backtest", "proposal", "checks_report"):
        assert row[f"{kind}_s"] > 0 and row[f"{kind}_ratio"] > 0
        assert row[f"{kind}_rss_mb"] > 0
    assert out.splitlines()[-4] == f"{database}:"
    assert "| 3,000 | 600 |" in out
