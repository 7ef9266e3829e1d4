"""A small run of each benchmark, so they never rot. Figures are printed, never asserted."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]


def run(*args: str) -> str:
    out = subprocess.run(
        [sys.executable, "-m", *args], cwd=ROOT, check=True, capture_output=True, text=True
    )
    return out.stdout


def test_payout_benchmark_runs_and_reports_a_ratio() -> None:
    out = run("bench.payout", "--sizes", "2000", "--per-referrer", "5")
    row = json.loads(out.splitlines()[0])
    assert row["rewards"] == 2000 and row["referrers"] == 400
    assert row["floor_s"] > 0 and row["payout_s"] > 0 and row["ratio"] > 0
    assert row["payout_rss_mb"] > 0
    assert "| 2,000 | 400 |" in out


def test_dynamodb_capacity_benchmark_prices_signups_and_payouts() -> None:
    out = json.loads(run("bench.dynamodb_capacity", "--signups", "20", "--referrers", "4"))
    assert out["per_signup"]["wcu"] > 0 and out["per_signup"]["rcu"] > 0
    assert out["per_signup"]["requests"]["transact_write_items"] == 1.0
    assert out["per_paid_reward"]["wcu"] > 0


def test_cold_start_benchmark_measures_each_function_against_the_interpreter() -> None:
    out = json.loads(run("bench.cold_start", "--runs", "1"))
    assert out["python"].startswith("3.12.")  # Lambda's, from the asset's own folder
    assert 0 < out["asset_mb"] <= 30
    assert out["interpreter_start_s"] > 0 and out["moto_call_ms"] > 0
    # The outside references answered too, and each function is measured against one.
    assert set(out["references"]) == {"boto3_call", "fastapi_app"}
    assert all(r["first_response_s"] > 0 for r in out["references"].values())
    assert out["api"]["fresh"]["vs_fastapi_app"] > 0
    assert out["notify"]["fresh"]["vs_boto3_call"] > 0
    for function in ("api", "payout", "payout_month", "notify"):
        fresh, restored = out[function]["fresh"], out[function]["restored"]
        # Each sample answered its event (the bench checks), then was timed.
        assert 0 < fresh["import_s"] < fresh["first_response_s"]
        assert fresh["cpu_s"] > 0 and fresh["vs_interpreter"] > 0
        assert restored["first_response_s"] > 0 and restored["cpu_s"] > 0


def test_payout_benchmark_runs_on_postgresql() -> None:
    out = run("bench.payout", "--sizes", "2000", "--per-referrer", "5", "--database", "postgresql")
    row = json.loads(out.splitlines()[0])
    assert row["rewards"] == 2000 and row["floor_s"] > 0 and row["payout_s"] > 0
    assert out.splitlines()[-4] == "postgresql:"


@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
def test_signup_http_benchmark_measures_both_scenarios_against_healthz(database: str) -> None:
    args = ["--duration", "1", "--connections", "4", "--database", database]
    out = json.loads(run("bench.signup_http", *args))
    assert out["database"] == database
    assert out["healthz_rps"] > 0 and out["healthz_half_p99_ms"] > 0
    assert out["healthz_cpu_us"] > 0  # the server's own CPU time was found and read
    for scenario in ("hot_referrer", "spread_10000"):
        assert out[scenario]["peak_rps"] > 0 and out[scenario]["half_rps"] > 0
        assert out[scenario]["peak_cpu_us"] > 0
        assert out[scenario]["failed"] == 0  # every signup of the load was accepted
    if database == "postgresql":  # this machine's server may run without autovacuum
        assert out["autovacuum"] in ("on", "off: ANALYZE after each run")


@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
def test_dashboard_benchmark_times_the_overview_against_healthz(database: str) -> None:
    sizes = ["--referrals", "3000", "--referrers", "100", "--repeat", "1"]
    out = run("bench.dashboard", *sizes, "--database", database)
    row = json.loads(out.splitlines()[0])
    # A year of 3,000: about 30 days' worth in the window, the current month unpaid.
    assert 200 <= row["window_signups"] <= 300 and row["unsettled_entries"] > 0
    assert row["floor_healthz_s"] > 0 and row["data_s"] > 0 and row["page_s"] > 0
    assert row["page_ratio"] > 0 and row["full_scan_ratio"] > 0
    assert "| `GET /dashboard`, computed |" in out


@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
def test_outbox_benchmark_delivers_every_event_against_the_driver(database: str) -> None:
    out = run("bench.outbox", "--events", "60", "--per-round", "7,50", "--database", database)
    rows = [json.loads(line) for line in out.splitlines()]
    assert [row["per_round"] for row in rows] == [7, 50]
    for row in rows:  # each side delivered all 60 (the bench checks), then timed
        assert row["floor_cpu_us"] > 0 and row["dispatch_cpu_us"] > 0 and row["ratio"] > 0


@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
def test_peer_benchmark_puts_ours_beside_pinax_and_starlette_in_one_run(database: str) -> None:
    # Needs .venv-peer (`make peer`, a prerequisite of `make test`).
    args = ["--duration", "1", "--rounds", "1", "--warmup", "0", "--connections", "4"]
    out = run("bench.signup_peers", *args, "--scenarios", "spread", "--database", database)
    result = json.loads(out.splitlines()[0])
    assert result["database"] == database and result["targets"]["signup_vs_pinax"] == 3.0
    assert result["sqlite_commit_ms"]["median"] > 0  # the disk's durable commit, for context
    summary = result["summary"]
    assert summary["pinax"]["spread"]["rps"] > 0 and summary["starlette"]["healthz"]["rps"] > 0
    (ours,) = (v for k, v in summary.items() if k not in ("pinax", "starlette", "load_1m"))
    assert ours["spread"]["vs_pinax"] > 0 and ours["spread"]["cpu_vs_pinax"] > 0
    assert ours["healthz_vs_starlette"]["median"] > 0
    assert ours["spread"]["half_p99_ms_worst"] > 0
    assert all(run["failed"] == 0 for run in result["runs"])  # pinax's signups too
    if database == "postgresql":  # pg_stat_database.sessions read around each of our runs
        assert len(ours["new_sessions"]["spread"]) == 1
        before, after = ours["sessions_before_after"]
        assert 0 < before <= after  # the server's pool had connected before the first run
    assert "| pinax-referrals (gunicorn, 1 sync worker) |" in out


def test_gil_profile_groups_samples_by_the_innermost_frames_package(tmp_path: Path) -> None:
    from bench.gil_profile import buckets

    raw = tmp_path / "raw.txt"
    loop = "run (uvicorn/main.py:1);solve_dependencies (fastapi/dependencies/utils.py:2)"
    use_case = "sign_up (referrals/services/signups.py:3);execute (sqlalchemy/engine/base.py:4)"
    raw.write_text(f"{loop};{use_case} 3\n{loop} 1\n")
    samples, profile = buckets(raw)
    assert samples == 4
    assert profile["self_pct"] == {"SQLAlchemy": 75.0, "FastAPI": 25.0}
    assert profile["through_pct"]["the use case (referrals/services)"] == 75.0
    assert profile["through_pct"]["FastAPI's dependency solving"] == 100.0


def test_signup_budget_measures_each_layer_beside_its_floor() -> None:
    out = run("bench.signup_budget", "--rounds", "1", "--requests", "5")
    rows = dict(
        (
            line.split(" | ")[0].strip("| "),
            float(line.rsplit(" | ", 1)[1].strip(" |").replace(",", "")),
        )
        for line in out.splitlines()
        if line.startswith("| ") and not line.startswith("| what")
    )
    # Every layer and its floor was measured (the signups really answered 201: the
    # benchmark asserts it), and the whole signup costs more than its use case alone.
    assert rows["Starlette, async route"] > 0 and rows["INSERT, sqlite3 module"] > 0
    assert rows["ours, POST /v1/signups (SQLite)"] > rows["ours, sign_up() alone (SQLite)"]
    assert "our web layer on a signup" in out
