"""A small run of bench.clicks on both databases, so it never rots. Figures are printed,
never asserted; what is asserted is that both routes were measured and that every
click the load was answered is a row (the bench checks it too, and exits if not)."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]


@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
def test_the_click_benchmark_measures_the_redirect_against_healthz(database: str) -> None:
    args = ["--duration", "1", "--warmup", "1", "--connections", "4", "--database", database]
    out = subprocess.run(
        [sys.executable, "-m", "bench.clicks", *args],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    result = json.loads(out)
    assert result["database"] == database and result["target_vs_healthz"] == 0.8
    assert result["healthz_rps"] > 0 and result["clicks_rps"] > 0
    assert result["healthz_cpu_us"] > 0 and result["clicks_cpu_us"] > 0
    assert result["vs_healthz"] > 0 and result["clicks_half_p99_ms"] > 0
    assert result["failed"] == 0
    # Recorded clicks, not the rate-limited path: each answered click is a row (at most
    # one more per connection, for requests cut off at the end of each of 3 runs).
    answered, recorded = result["clicks_answered"], result["clicks_recorded"]
    assert result["warmup_clicks"] > 0
    assert 0 < answered <= recorded <= answered + 3 * 4
