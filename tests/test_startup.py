"""An operator who gets a setting or a place wrong is told so in one line, not a traceback."""

import logging
import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from referrals.cli import app
from referrals.startup import port_in_use
from tests.postgresql import locale_database


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in list(os.environ):
        if name.startswith("REFERRALS_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("REFERRALS_SCHEDULER", "off")
    # The Lambda handlers' logger (aws/observability.py) puts a handler on the package
    # logger, bound to the stdout of the test that imported it; here stderr must hold
    # only what the command says.
    monkeypatch.setattr(logging.getLogger("referrals"), "handlers", [])


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args))
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, result.stderr


def one_line(stderr: str) -> str:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert "Traceback" not in stderr
    return lines[0]


def test_a_bad_setting_is_named_by_its_environment_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("REFERRALS_HOLD_DAYS", "soon")
    code, stderr = run("db", "upgrade")
    assert code == 1
    line = one_line(stderr)
    assert line.startswith("error: REFERRALS_HOLD_DAYS:")
    assert "soon" not in line  # values are not echoed: some settings are secrets


def test_two_bad_settings_get_a_line_each(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REFERRALS_TIERS", "ten")
    monkeypatch.setenv("REFERRALS_SECRET_KEY", "short")
    code, stderr = run("serve")
    assert code == 1
    assert sorted(line.split(":")[1].strip() for line in stderr.strip().splitlines()) == [
        "REFERRALS_SECRET_KEY",
        "REFERRALS_TIERS",
    ]


def test_a_missing_database_folder_is_named(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("REFERRALS_DATABASE_URL", f"sqlite:///{tmp_path}/no/such/folder/r.db")
    code, stderr = run("keys", "create")
    assert code == 1
    assert f"{tmp_path}/no/such/folder" in one_line(stderr)


def test_a_postgres_scheme_says_postgresql(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REFERRALS_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/test")
    code, stderr = run("db", "upgrade")
    assert code == 1
    assert "write postgresql://" in one_line(stderr)


def test_a_plain_postgresql_url_uses_the_shipped_driver(monkeypatch: pytest.MonkeyPatch) -> None:
    """SQLAlchemy's default PostgreSQL driver (psycopg2) is not installed; psycopg 3 is."""
    with locale_database("startup") as url:
        plain = url.replace("postgresql+psycopg://", "postgresql://")
        monkeypatch.setenv("REFERRALS_DATABASE_URL", plain)
        code, stderr = run("db", "upgrade")
    assert (code, stderr) == (0, "")


def test_a_database_that_does_not_exist_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(
        "REFERRALS_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/no_such_db_here"
    )
    code, stderr = run("db", "upgrade")
    assert code == 1
    line = one_line(stderr)
    assert '"no_such_db_here" does not exist' in line and "createdb" in line


def test_a_database_server_that_is_down_is_said_so(monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    monkeypatch.setenv("REFERRALS_DATABASE_URL", f"postgresql://postgres@127.0.0.1:{port}/x")
    code, stderr = run("db", "upgrade")
    assert code == 1
    assert "is the database server running?" in one_line(stderr)


@pytest.fixture
def taken_port() -> Iterator[int]:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        yield listener.getsockname()[1]


def test_a_taken_port_is_named_with_the_option_to_choose_another(taken_port: int) -> None:
    code, stderr = run("serve", "--port", str(taken_port))
    assert code == 1
    line = one_line(stderr)
    assert f"port {taken_port}" in line and "--port" in line


def test_port_in_use_tells_a_free_port_from_a_taken_one(taken_port: int) -> None:
    assert port_in_use("127.0.0.1", taken_port)
    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
    assert not port_in_use("127.0.0.1", port)


# --- webhooks are signed or not sent ------------------------------------------------------

WHSEC = "whsec_" + "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVphYmNkZWY="  # 32 bytes


@pytest.mark.parametrize("command", [("serve",), ("db", "upgrade"), ("keys", "create")])
def test_a_webhook_without_a_secret_is_refused_by_every_command(
    monkeypatch: pytest.MonkeyPatch, command: tuple[str, ...]
) -> None:
    monkeypatch.setenv("REFERRALS_NOTIFY_URL", "https://hooks.example.com/referrals")
    code, stderr = run(*command)
    assert code == 1
    line = one_line(stderr)
    assert line.startswith("error: REFERRALS_WEBHOOK_SECRET: ")
    assert "REFERRALS_WEBHOOK_UNSIGNED=true" in line


def test_an_unsigned_webhook_starts_when_the_setting_says_so(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("REFERRALS_NOTIFY_URL", "https://hooks.example.com/referrals")
    monkeypatch.setenv("REFERRALS_WEBHOOK_UNSIGNED", "true")
    assert run("db", "upgrade") == (0, "")


def test_a_secret_and_unsigned_together_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REFERRALS_NOTIFY_URL", "https://hooks.example.com/referrals")
    monkeypatch.setenv("REFERRALS_WEBHOOK_SECRET", WHSEC)
    monkeypatch.setenv("REFERRALS_WEBHOOK_UNSIGNED", "true")
    code, stderr = run("db", "upgrade")
    assert code == 1
    assert one_line(stderr).startswith("error: REFERRALS_WEBHOOK_UNSIGNED: ")


@pytest.mark.parametrize(
    "secret",
    ["too-short-a-secret", "whsec_c2hvcnQ=", "whsec_not base64!"],
    ids=["short text", "short whsec", "not base64"],
)
def test_a_weak_or_malformed_secret_is_refused_without_echoing_it(
    monkeypatch: pytest.MonkeyPatch, secret: str
) -> None:
    monkeypatch.setenv("REFERRALS_NOTIFY_URL", "https://hooks.example.com/referrals")
    monkeypatch.setenv("REFERRALS_WEBHOOK_SECRET", secret)
    code, stderr = run("db", "upgrade")
    assert code == 1
    line = one_line(stderr)
    assert line.startswith("error: REFERRALS_WEBHOOK_SECRET: ")
    assert secret not in line


def test_plain_http_to_another_host_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REFERRALS_NOTIFY_URL", "http://hooks.example.com/referrals")
    monkeypatch.setenv("REFERRALS_WEBHOOK_SECRET", WHSEC)
    code, stderr = run("serve")
    assert code == 1
    line = one_line(stderr)
    assert line.startswith("error: REFERRALS_NOTIFY_URL: ")
    assert "REFERRALS_WEBHOOK_ALLOW_HTTP=true" in line


def test_plain_http_without_a_secret_gets_a_line_for_each(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("REFERRALS_NOTIFY_URL", "http://10.0.0.7/referrals")
    code, stderr = run("db", "upgrade")
    assert code == 1
    assert sorted(line.split(":")[1].strip() for line in stderr.strip().splitlines()) == [
        "REFERRALS_NOTIFY_URL",
        "REFERRALS_WEBHOOK_SECRET",
    ]


@pytest.mark.parametrize(
    ("url", "allow"),
    [
        ("http://hooks.example.com/referrals", "true"),  # allowed explicitly
        ("http://127.0.0.1:8080/referrals", "false"),  # loopback: this machine
        ("http://localhost:8080/referrals", "false"),
        ("http://[::1]:8080/referrals", "false"),
    ],
)
def test_plain_http_starts_to_this_machine_or_when_allowed(
    monkeypatch: pytest.MonkeyPatch, url: str, allow: str
) -> None:
    monkeypatch.setenv("REFERRALS_NOTIFY_URL", url)
    monkeypatch.setenv("REFERRALS_WEBHOOK_SECRET", WHSEC)
    monkeypatch.setenv("REFERRALS_WEBHOOK_ALLOW_HTTP", allow)
    assert run("db", "upgrade") == (0, "")
