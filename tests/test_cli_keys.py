"""The CLI's keys commands through typer's runner on a SQLite file: create with a name and
an expiry, list, revoke, rotate; what they print, write, and leave in the audit log."""

import os
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from rich.console import Console
from typer.testing import CliRunner

from referrals import cli
from referrals.bootstrap import Services, build
from referrals.config import Settings
from referrals.domain.model import KeyState, Role
from referrals.services.audit import audit_log
from referrals.services.keys import authenticate, create_first_admin_key, list_keys


@pytest.fixture
def services(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Services]:
    for name in [n for n in os.environ if n.startswith("REFERRALS_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("REFERRALS_DATABASE_URL", f"sqlite:///{tmp_path}/cli.db")
    monkeypatch.setenv("REFERRALS_REPORTS_URL", str(tmp_path / "reports"))
    monkeypatch.setenv("COLUMNS", "200")
    monkeypatch.setattr(cli, "console", Console())  # one for this test's width
    svc = build(Settings(), migrate=True)
    yield svc
    svc.store.dispose()


def invoke(*args: str, code: int = 0) -> str:
    result = CliRunner().invoke(cli.app, list(args))
    assert result.exit_code == code, result.output
    return result.output


def audited(svc: Services) -> list[tuple[str, str, str]]:
    return [(e.actor, e.action, e.target) for e in audit_log(svc.store, 100, None).items]


def test_create_names_a_key_with_an_expiry_and_prints_it_last(services: Services) -> None:
    output = invoke("keys", "create", "--role", "admin", "--name", "ops", "--expires-in", "90d")
    secret = output.splitlines()[-1]
    key = authenticate(services.store, secret, services.clock.now())
    assert key is not None and (key.role, key.name) == (Role.ADMIN, "ops")
    assert key.expires_at is not None
    assert key.expires_at - key.created_at == timedelta(days=90)
    assert f"created admin key {key.id}" in output


@pytest.mark.parametrize("bad", ["soon", "-5", "1w", "٣d"])
def test_a_bad_duration_is_refused(services: Services, bad: str) -> None:
    output = invoke("keys", "create", "--expires-in", bad, code=2)
    assert "is not a duration" in output
    assert list_keys(services.store) == []


def test_a_bad_name_is_refused_in_one_line(services: Services) -> None:
    output = invoke("keys", "create", "--name", "x" * 65, code=1)
    assert "validation_error" in output and list_keys(services.store) == []


def test_list_shows_every_key_with_its_state_and_no_secret(services: Services) -> None:
    first = create_first_admin_key(services.store, services.clock) or ""
    secret = invoke("keys", "create", "--name", "checkout").splitlines()[-1]
    (_, ingest) = list_keys(services.store)
    invoke("keys", "revoke", ingest.id)
    output = invoke("keys", "list")
    lines = output.splitlines()
    (admin_line,) = [line for line in lines if "first-admin" in line]
    (ingest_line,) = [line for line in lines if ingest.id in line]
    assert "first admin" in admin_line and "active" in admin_line
    assert "checkout" in ingest_line and "revoked" in ingest_line and "ingest" in ingest_line
    assert first not in output and secret not in output and ingest.key_hash not in output


def test_revoke_is_audited_as_the_cli_and_takes_effect(services: Services) -> None:
    secret = invoke("keys", "create").splitlines()[-1]
    (key,) = list_keys(services.store)
    output = invoke("keys", "revoke", key.id, "--reason", "left the company")
    assert f"revoked key {key.id}" in output
    assert authenticate(services.store, secret, services.clock.now()) is None
    entries = audit_log(services.store, 100, None).items
    assert (entries[0].actor, entries[0].action, entries[0].reason) == (
        "cli",
        "key.revoke",
        "left the company",
    )


def test_revoking_an_unknown_key_fails_in_one_line(services: Services) -> None:
    output = invoke("keys", "revoke", "01NOSUCHKEY000000000000000", code=1)
    assert "not_found" in output


def test_rotate_prints_the_new_key_last_and_keeps_the_old_one_for_the_grace(
    services: Services,
) -> None:
    old_secret = create_first_admin_key(services.store, services.clock) or ""
    output = invoke("keys", "rotate", "first-admin", "--grace", "3600")
    new_secret = output.splitlines()[-1]
    now = services.clock.now()
    new = authenticate(services.store, new_secret, now)
    old = authenticate(services.store, old_secret, now)
    assert new is not None and old is not None and new.role is Role.ADMIN
    assert old.expires_at is not None and now < old.expires_at <= now + timedelta(hours=1)
    assert old.state(now + timedelta(hours=1)) is KeyState.EXPIRED
    assert "in place of first-admin" in output
    assert ("cli", "key.rotate", "key:first-admin") in audited(services)
    assert ("cli", "key.create", f"key:{new.id}") in audited(services)


def test_rotating_a_revoked_key_fails_in_one_line(services: Services) -> None:
    invoke("keys", "create")
    (key,) = list_keys(services.store)
    invoke("keys", "revoke", key.id)
    output = invoke("keys", "rotate", key.id, code=1)
    assert "key_not_active" in output and len(list_keys(services.store)) == 1
