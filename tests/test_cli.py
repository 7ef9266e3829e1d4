"""`referrals serve` without starting a server: what its worker processes share."""

import logging.config
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from typer.testing import CliRunner

from referrals.bootstrap import build, build_store
from referrals.cli import app
from referrals.config import Settings
from referrals.services.kept_secret import SECRET_KEY


@pytest.fixture
def served(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> list[dict[str, Any]]:
    """`serve`'s calls of uvicorn.run, made to return at once; settings on a temp database."""
    monkeypatch.setenv("REFERRALS_DATABASE_URL", f"sqlite:///{tmp_path}/cli.db")
    monkeypatch.setenv("REFERRALS_REPORTS_URL", str(tmp_path / "reports"))
    monkeypatch.setenv("REFERRALS_SCHEDULER", "off")
    # No secret configured, whatever this environment has.
    monkeypatch.setenv("REFERRALS_SECRET_KEY", "")
    calls: list[dict[str, Any]] = []
    monkeypatch.setattr(uvicorn, "run", lambda *args, **kwargs: calls.append(kwargs))
    # serve's logging config would give the whole process, pytest included, a handler
    # bound to the runner's stderr, closed after the test (test_logs checks the config).
    monkeypatch.setattr(logging.config, "dictConfig", lambda config: None)
    return calls


def kept(tmp_path: Path) -> str | None:
    store = build_store(f"sqlite:///{tmp_path}/cli.db")
    try:
        with store.read() as uow:
            return uow.secrets.get(SECRET_KEY)
    finally:
        store.dispose()


def test_serve_keeps_a_secret_its_workers_share(
    served: list[dict[str, Any]], tmp_path: Path
) -> None:
    result = CliRunner().invoke(app, ["serve", "--workers", "2"])
    assert result.exit_code == 0, result.output
    assert served and served[0]["workers"] == 2
    # Nothing handed through the environment: each worker reads the kept one.
    assert Settings().secret_key == ""
    secret = kept(tmp_path)
    assert secret is not None and len(secret) >= 43
    workers = [build(Settings()) for _ in range(2)]
    assert {worker.settings.secret_key for worker in workers} == {secret}
    for worker in workers:
        worker.store.dispose()
    assert "No REFERRALS_SECRET_KEY set" in result.output
    assert "kept in the database" in result.output


def test_serve_keeps_the_same_secret_across_starts(
    served: list[dict[str, Any]], tmp_path: Path
) -> None:
    CliRunner().invoke(app, ["serve"])
    first = kept(tmp_path)
    CliRunner().invoke(app, ["serve"])
    assert first is not None and kept(tmp_path) == first


def test_serve_keeps_a_configured_secret(
    served: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("REFERRALS_SECRET_KEY", "configured-secret-0123456789abcdef0123")
    result = CliRunner().invoke(app, ["serve"])
    assert result.exit_code == 0, result.output
    assert Settings().secret_key == "configured-secret-0123456789abcdef0123"
    assert "No REFERRALS_SECRET_KEY set" not in result.output
    assert kept(tmp_path) is None  # a configured secret wins: none is kept
