"""The settings a CLI test runs with: only a SQLite file and a reports folder of its own."""

import os
from pathlib import Path
from types import ModuleType

import pytest
from rich.console import Console
from typer.testing import CliRunner


def cli_home(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    *printing: ModuleType,
    upgrade: bool = False,
) -> Path:
    """`tmp_path` as the CLI's home: no REFERRALS_ setting but its database and reports,
    200 columns (each module in `printing` gets a console of that width: a module's
    console reads the width once, when made), migrated first with `upgrade`."""
    for name in [n for n in os.environ if n.startswith("REFERRALS_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("REFERRALS_DATABASE_URL", f"sqlite:///{tmp_path}/cli.db")
    monkeypatch.setenv("REFERRALS_REPORTS_URL", str(tmp_path / "reports"))
    monkeypatch.setenv("COLUMNS", "200")
    for module in printing:
        monkeypatch.setattr(module, "console", Console())
    if upgrade:
        from referrals import cli

        assert CliRunner().invoke(cli.app, ["db", "upgrade"]).exit_code == 0
    return tmp_path
