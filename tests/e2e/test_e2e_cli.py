"""The `referrals` CLI as an operator runs it: a subprocess on a SQLite file."""

import re
import sqlite3
from pathlib import Path
from typing import Any

import pytest

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
    assert table_value(shown.stdout, "pending") == "$10.00"


def test_demo_crosses_every_tier(cli: Any) -> None:
    done = cli("demo")
    assert done.returncode == 0, done.output
    for reward in ("$10.00", "$15.00", "$20.00", "$25.00"):
        assert reward in done.stdout, f"{reward} missing from:\n{done.output}"


def test_signup_with_unknown_code_fails_with_code_not_found(cli: Any) -> None:
    done = cli("signup", "carol", "NOPE1")
    assert done.returncode != 0, done.output
    assert "code_not_found" in done.output
