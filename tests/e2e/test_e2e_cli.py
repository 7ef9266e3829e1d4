"""The `referrals` CLI as an operator runs it: a subprocess on a SQLite file."""

import json
import re
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

pytestmark = pytest.mark.e2e


def table_value(output: str, label: str) -> str:
    """The value cell of a two-column Rich table row, whatever box characters it drew."""
    for line in output.splitlines():
        cells = [cell.strip() for cell in re.split(r"[│|┃]", line) if cell.strip()]
        if len(cells) == 2 and cells[0] == label:
            return cells[1]
    raise AssertionError(f"no row {label!r} in:\n{output}")


def test_db_upgrade_creates_the_schema(cli: Any, database: Path) -> None:
    done = cli("db", "upgrade")
    assert done.returncode == 0, done.output
    with sqlite3.connect(database) as conn:
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
    assert {"referrers", "referrals", "api_keys", "alembic_version"} <= tables


def test_ingest_key_from_cli_may_enroll_but_not_read_referrers(
    cli: Any, server: Any, admin: Any
) -> None:
    # The key is made while the server runs: keys are looked up per request, not cached.
    done = cli("keys", "create", "--role", "ingest")
    assert done.returncode == 0, done.output
    key = done.stdout.strip().splitlines()[-1]
    assert key.startswith("rk_"), done.output
    ingest = server.client(key)

    enrolled = ingest.post("/v1/referrers", json={"user_id": "dana"})
    assert enrolled.status_code == 201, enrolled.text
    denied = ingest.get("/v1/referrers/dana")
    assert denied.status_code == 403, denied.text
    assert denied.json()["code"] == "forbidden"
    # The same read with an admin key works, so the 403 is about the role alone.
    assert admin.get("/v1/referrers/dana").status_code == 200


def test_enroll_signup_with_other_case_code_then_show(cli: Any) -> None:
    enrolled = cli("referrers", "enroll", "alice", "--code", "ALICE-1")
    assert enrolled.returncode == 0, enrolled.output
    assert "ALICE-1" in enrolled.stdout

    # Codes match case-insensitively: a user typing it in lower case is still referred.
    signed = cli("signup", "bob", "alice-1")
    assert signed.returncode == 0, signed.output
    assert "referral #1" in signed.stdout and "$10.00" in signed.stdout, signed.output

    shown = cli("referrers", "show", "alice")
    assert shown.returncode == 0, shown.output
    assert table_value(shown.stdout, "referrals") == "1"
    assert table_value(shown.stdout, "earned") == "$10.00"
    assert table_value(shown.stdout, "payable") == "$10.00"  # no hold: payable at once
    assert table_value(shown.stdout, "pending (hold)") == "$0.00"


def test_demo_crosses_every_tier(cli: Any) -> None:
    done = cli("demo")
    assert done.returncode == 0, done.output
    for reward in ("$10.00", "$15.00", "$20.00", "$25.00"):
        assert reward in done.stdout, f"{reward} missing from:\n{done.output}"


def test_signup_with_unknown_code_fails_with_code_not_found(cli: Any) -> None:
    done = cli("signup", "carol", "NOPE1")
    assert done.returncode != 0, done.output
    assert "code_not_found" in done.output


def test_serve_logs_json_lines_with_the_request_id_and_no_email_or_key(
    server: Any, admin: Any
) -> None:
    missing = admin.get("/v1/referrers/bob@example.com", headers={"X-Request-ID": "e2e-404"})
    assert missing.status_code == 404, missing.text
    assert missing.headers["X-Request-ID"] == "e2e-404"
    scraped = admin.get("/metrics")
    assert scraped.status_code == 200, scraped.text
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(scraped.text)
        for s in family.samples
    }
    labels = (("method", "GET"), ("route", "/v1/referrers/{user_id}"), ("status", "404"))
    assert samples[("referrals_http_requests_total", labels)] == 1

    deadline = time.monotonic() + 5
    while "e2e-404" not in server.stderr_path.read_text() and time.monotonic() < deadline:
        time.sleep(0.05)
    logged = server.stderr_path.read_text()
    entries = [json.loads(line) for line in logged.splitlines()]  # every line is JSON
    (access,) = [e for e in entries if e["request_id"] == "e2e-404"]
    assert access["logger"] == "uvicorn.access"
    assert "/v1/referrers/[email]" in access["message"]
    assert "bob@example.com" not in logged and "bob%40example.com" not in logged
    assert server.printed_key not in logged
