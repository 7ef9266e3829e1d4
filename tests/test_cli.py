"""`referrals serve` without starting a server: what it hands its worker processes."""

import logging.config
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from typer.testing import CliRunner

from referrals.cli import app
from referrals.config import Settings


@pytest.fixture
def served(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> list[dict[str, Any]]:
    """`serve`'s calls of uvicorn.run, made to return at once; settings on a temp database."""
    monkeypatch.setenv("REFERRALS_DATABASE_URL", f"sqlite:///{tmp_path}/cli.db")
    monkeypatch.setenv("REFERRALS_REPORTS_URL", str(tmp_path / "reports"))
    monkeypatch.setenv("REFERRALS_SCHEDULER", "off")
    # Recorded by monkeypatch, so whatever `serve` sets is undone after the test.
    monkeypatch.setenv("REFERRALS_SECRET_KEY", "")
    calls: list[dict[str, Any]] = []
    monkeypatch.setattr(uvicorn, "run", lambda *args, **kwargs: calls.append(kwargs))
    # serve's logging config would give the whole process, pytest included, a handler
    # bound to the runner's stderr, closed after the test (test_logs checks the config).
    monkeypatch.setattr(logging.config, "dictConfig", lambda config: None)
    return calls


def test_serve_draws_a_secret_its_workers_share(served: list[dict[str, Any]]) -> None:
    result = CliRunner().invoke(app, ["serve", "--workers", "2"])
    assert result.exit_code == 0, result.output
    assert served and served[0]["workers"] == 2
    # Workers build their settings from the environment they inherit: each reads this.
    drawn = Settings().secret_key
    assert len(drawn) >= 43
    assert "No REFERRALS_SECRET_KEY set" in result.output


def test_serve_draws_a_new_secret_each_start(
    served: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    CliRunner().invoke(app, ["serve"])
    first = Settings().secret_key
    monkeypatch.setenv("REFERRALS_SECRET_KEY", "")  # a fresh start, with no secret again
    CliRunner().invoke(app, ["serve"])
    assert first and Settings().secret_key not in ("", first)


def test_serve_keeps_a_configured_secret(
    served: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REFERRALS_SECRET_KEY", "configured-secret-0123456789abcdef0123")
    result = CliRunner().invoke(app, ["serve"])
    assert result.exit_code == 0, result.output
    assert Settings().secret_key == "configured-secret-0123456789abcdef0123"
    assert "No REFERRALS_SECRET_KEY set" not in result.output
