"""`referrals referrers enroll/show` on a SQLite file: a referrer's earnings in a program
are shown in that program's currency (yen without decimals, never "$")."""

import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from referrals import cli, cli_referrers
from tests.cli_home import cli_home


@pytest.fixture
def home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    return cli_home(monkeypatch, tmp_path, cli_referrers, upgrade=True)


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli.app, list(args))
    return result.exit_code, result.output


def enroll(program: str) -> str:
    code, output = run("referrers", "enroll", "alice", "--program", program)
    assert code == 0, output
    found = re.search(r"with code (\S+)", output)
    assert found is not None, output
    return found.group(1)


@pytest.mark.usefixtures("home")
def test_a_referrers_earnings_are_shown_in_the_programs_currency() -> None:
    assert run("programs", "create", "japan", "--name", "Japan", "--currency", "JPY")[0] == 0
    code = enroll("japan")
    for user in ("bob", "carol"):
        assert run("signup", user, code)[0] == 0  # the default tiers: 1000 a referral

    status, output = run("referrers", "show", "alice", "--program", "japan")
    assert status == 0, output
    rows = dict(re.findall(r"│\s*([a-z ()]+?)\s*│\s*(.+?)\s*│", output))
    assert rows["referrals"] == "2" and rows["earned"] == "2000 JPY"
    assert rows["pending (hold)"] == "0 JPY" and rows["payable"] == "2000 JPY"
    assert rows["next tier"] == "1500 JPY from referral 5"
    assert "$" not in output and "20.00" not in output


@pytest.mark.usefixtures("home")
def test_a_referrer_of_the_default_program_is_shown_in_dollars() -> None:
    code = enroll("default")
    assert run("signup", "bob", code)[0] == 0
    status, output = run("referrers", "show", "alice")
    assert status == 0, output
    assert re.search(r"earned\s*│\s*\$10\.00", output)


@pytest.mark.usefixtures("home")
def test_an_unknown_program_is_refused() -> None:
    status, output = run("referrers", "show", "alice", "--program", "nope")
    assert status == 1 and "program_not_found" in output
