"""`referrals programs create/links`: a program's landing URL and attribution settings
from the command line, on a SQLite file; a bad value is refused naming its field."""

from pathlib import Path

import pytest
from typer.testing import CliRunner

from referrals import cli
from referrals.bootstrap import build
from referrals.config import Settings
from referrals.domain.program import Attribution, Program
from referrals.services.programs import get_program
from tests.cli_home import cli_home


@pytest.fixture
def home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    return cli_home(monkeypatch, tmp_path, upgrade=True)


def program(home: Path, program_id: str) -> Program:
    svc = build(Settings(database_url=f"sqlite:///{home}/cli.db", reports_url=str(home)))
    try:
        return get_program(svc.store, program_id).program
    finally:
        svc.store.dispose()  # type: ignore[attr-defined]


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli.app, ["programs", *args])
    return result.exit_code, result.output


def test_a_program_is_created_with_its_links_settings(home: Path) -> None:
    code, _ = run(
        "create",
        "partners",
        "--name",
        "Partners",
        "--landing-url",
        "https://partners.example/",
        "--window-days",
        "14",
        "--attribution",
        "last",
    )
    assert code == 0
    found = program(home, "partners")
    assert (found.landing_url, found.attribution_window_days, found.attribution) == (
        "https://partners.example/",
        14,
        Attribution.LAST,
    )


def test_links_changes_them_and_can_turn_the_links_off(home: Path) -> None:
    code, output = run(
        "links", "default", "--landing-url", "https://example.com/", "--window-days", "7"
    )
    assert code == 0 and "https://example.com/" in output
    assert program(home, "default").attribution_window_days == 7
    code, _ = run("links", "default", "--no-landing-url")
    assert code == 0
    found = program(home, "default")
    assert (found.landing_url, found.attribution_window_days) == (None, 7)


@pytest.mark.parametrize(
    ("args", "field"),
    [
        (["--landing-url", "ftp://example.com/"], "landing_url"),
        (["--window-days", "0"], "attribution_window_days"),
        (["--window-days", "366"], "attribution_window_days"),
    ],
)
def test_a_bad_value_is_refused_naming_it_and_changes_nothing(
    home: Path, args: list[str], field: str
) -> None:
    code, output = run("links", "default", *args)
    assert code == 1 and field in output
    found = program(home, "default")
    assert (found.landing_url, found.attribution_window_days) == (None, 30)
