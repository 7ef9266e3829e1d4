"""The CLI's payout, demo, events and keys commands, through typer's runner on a SQLite file:
what they print, what they write, and what they leave in the audit log."""

import hashlib
import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from rich.console import Console
from typer.testing import CliRunner

from referrals import cli
from referrals.bootstrap import Services, build, build_store
from referrals.config import Settings
from referrals.domain.model import DEFAULT_PROGRAM, AuditEntry, EventStatus, ReferralStatus
from referrals.domain.periods import last_ended_period
from referrals.domain.program import BEGINNING, Program, RuleVersion
from referrals.domain.tiers import TierSchedule
from referrals.services.audit import audit_log
from referrals.services.referrers import enroll
from referrals.services.signups import sign_up
from tests.api.test_payout_currencies import japan_since_the_beginning
from tests.cli_home import cli_home

ULID = re.compile(r"\b[0-9A-HJKMNP-TV-Z]{26}\b")


@pytest.fixture
def home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """The CLI's settings: a SQLite file and a reports folder under `tmp_path`."""
    return cli_home(monkeypatch, tmp_path, cli)


@pytest.fixture
def services(home: Path) -> Iterator[Services]:
    """The same database, opened by the test to look at what the commands did."""
    svc = build(Settings(), migrate=True)
    yield svc
    svc.store.dispose()


def invoke(*args: str) -> str:
    result = CliRunner().invoke(cli.app, list(args))
    assert result.exit_code == 0, result.output
    return result.output


def audited(svc: Services) -> list[AuditEntry]:
    return list(audit_log(svc.store, 100, None).items)


def test_demo_backdate_pays_the_month_just_ended_and_shows_its_report_and_manifest(
    home: Path, services: Services
) -> None:
    period = str(last_ended_period(datetime.now(UTC)))

    output = invoke("demo", "--backdate")

    report_path = home / "reports" / "payouts" / period / "report.csv"
    manifest_path = home / "reports" / "payouts" / period / "manifest.json"
    assert f"report: {report_path}" in output and f"manifest: {manifest_path}" in output
    report, manifest = report_path.read_bytes(), json.loads(manifest_path.read_bytes())
    assert report.decode() in output  # the CSV as stored, byte for byte
    assert manifest_path.read_text() in output
    assert manifest["sha256"] == hashlib.sha256(report).hexdigest()
    # Two referrers cross every tier: 25 and 26 referrals, $440 and $465.
    assert (manifest["period"], manifest["referral_count"]) == (period, 51)
    assert manifest["total_cents"] == 44_000 + 46_500
    lines = report.decode().splitlines()
    assert lines[0] == "period,referrer_id,referral_count,amount_cents,amount,currency,program"
    assert [line.split(",")[3] for line in lines[1:]] == ["44000", "46500"]
    with services.store.read() as uow:
        referrals = list(uow.referrals.search(None, None, None, 100))
    assert {(r.status, r.payout_period) for r in referrals} == {(ReferralStatus.PAID, period)}
    entry = next(e for e in audited(services) if e.action == "payout.run")
    assert (entry.actor, entry.target) == ("cli", f"payout:{period}")


def test_demo_backdate_refuses_a_month_already_paid_before_writing_anything(
    home: Path, services: Services
) -> None:
    invoke("demo", "--backdate")
    with services.store.read() as uow:
        before = len(uow.referrals.search(None, None, None, 500))

    result = CliRunner().invoke(cli.app, ["demo", "--backdate"])

    assert result.exit_code == 1
    assert "already paid" in result.output and "without --backdate" in result.output
    with services.store.read() as uow:
        assert len(uow.referrals.search(None, None, None, 500)) == before


def test_demo_backdate_refuses_a_month_that_holds_rewards_of_real_users(
    home: Path, services: Services
) -> None:
    """Paying the month pays every unpaid reward in it: the demo pays only its own."""
    period = last_ended_period(datetime.now(UTC))
    code = enroll(services.store, services.clock, "carol").referrer.code
    sign_up(
        services.store,
        services.clock,
        services.rules.current(services.clock),
        "dan",
        code,
        signed_up_at=period.start,
    )

    result = CliRunner().invoke(cli.app, ["demo", "--backdate"])

    assert result.exit_code == 1
    assert "besides the demo's (carol)" in result.output and "pay them too" in result.output
    with services.store.read() as uow:
        assert [r.referee_id for r in uow.referrals.search(None, None, None, 500)] == ["dan"]
        assert uow.payouts.get(str(period)) is None


def test_a_dry_run_of_a_completed_month_says_it_is_completed(
    home: Path, services: Services
) -> None:
    invoke("demo", "--backdate")
    period = str(last_ended_period(datetime.now(UTC)))

    output = invoke("payout", "run", "--period", period, "--dry-run")

    assert f"dry run: {period} is completed at " in output
    assert "it paid 51 rewards to 2 referrers, $905.00" in output
    assert "running it again changes nothing" in output and "nothing was written" not in output


def test_a_dry_run_of_a_month_not_run_says_what_it_would_pay(
    home: Path, services: Services
) -> None:
    output = invoke("payout", "run", "--period", "2026-01", "--dry-run")
    assert "dry run: 0 rewards to 0 referrers, $0.00; nothing was written" in output
    assert "completed" not in output


def test_payout_run_events_retry_and_key_creation_are_audited_as_the_cli(
    home: Path, services: Services
) -> None:
    invoke("referrers", "enroll", "alice", "--code", "ALICE")
    invoke("signup", "bob", "ALICE")
    with services.store.unit_of_work() as uow:
        (event,) = uow.outbox.list(None, 10)
        uow.outbox.attempt_failed(event.id, "HTTP 503", services.clock.now(), dead=True)
        uow.commit()

    key_line = invoke("keys", "create", "--role", "ingest").splitlines()[0]
    invoke("payout", "run", "--period", "2026-01")
    invoke("events", "retry", event.id)

    key_id = key_line.split()[-1]
    entries = {(e.action, e.target): e.actor for e in audited(services)}
    assert entries == {
        ("key.create", f"key:{key_id}"): "cli",
        ("payout.run", "payout:2026-01"): "cli",
        ("event.retry", f"event:{event.id}"): "cli",
    }


def test_events_list_prints_whole_ids_that_paste_back_on_a_narrow_terminal(
    home: Path, services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    invoke("referrers", "enroll", "alice", "--code", "ALICE")
    for user in ("bob", "carol"):
        invoke("signup", user, "ALICE")
    with services.store.unit_of_work() as uow:
        events = uow.outbox.list(None, 10)
        error = "ConnectError: https://hooks.example.com/referrals/a-long-webhook-path refused"
        uow.outbox.attempt_failed(events[0].id, error, services.clock.now(), dead=True)
        uow.commit()
    monkeypatch.setenv("COLUMNS", "60")
    monkeypatch.setattr(cli, "console", Console())

    output = invoke("events", "list")

    assert max(len(line) for line in output.splitlines()) <= 60
    assert "…" not in output  # nothing ellipsised
    assert sorted(ULID.findall(output)) == sorted(e.id for e in events)
    (dead,) = ULID.findall(invoke("events", "list", "--status", "dead"))
    assert "requeued" in invoke("events", "retry", dead)  # pasted back as printed
    with services.store.read() as uow:
        requeued = uow.outbox.get(dead)
    assert requeued is not None and requeued.status is not EventStatus.DEAD


def test_events_discard_drops_a_dead_letter_audited_and_refuses_a_live_event(
    home: Path, services: Services
) -> None:
    invoke("referrers", "enroll", "alice", "--code", "ALICE")
    for user in ("bob", "carol"):
        invoke("signup", user, "ALICE")
    with services.store.unit_of_work() as uow:
        dead, live = uow.outbox.list(None, 10)
        uow.outbox.attempt_failed(dead.id, "HTTP 503", services.clock.now(), dead=True)
        uow.commit()

    assert f"discarded {dead.id}" in invoke("events", "discard", dead.id)
    refused = CliRunner().invoke(cli.app, ["events", "discard", live.id])

    assert refused.exit_code == 1 and "not_found" in refused.output
    with services.store.read() as uow:
        assert [e.id for e in uow.outbox.list(None, 10)] == [live.id]
    entries = [(e.actor, e.action, e.target) for e in audited(services)]
    assert entries == [("cli", "event.discard", f"event:{dead.id}")]


def test_a_run_over_two_currencies_prints_each_currencys_total(
    home: Path, services: Services
) -> None:
    """Alice earns $10 in the default program and 500 yen in a JPY one, in October 2026:
    the dry run, the run and the list show both amounts, never their sum."""
    yen = japan_since_the_beginning(services)
    october = datetime(2026, 10, 10, tzinfo=UTC)
    dollars = enroll(services.store, services.clock, "alice").referrer.code
    sign_up(services.store, services.clock, RuleVersion(), "bob", dollars, signed_up_at=october)
    japan = enroll(services.store, services.clock, "alice", program="japan").referrer.code
    sign_up(services.store, services.clock, yen, "bob", japan, signed_up_at=october)

    dry = invoke("payout", "run", "--period", "2026-10", "--dry-run")
    assert "dry run: 2 rewards to 1 referrers, 500 JPY, $10.00; nothing was written" in dry
    assert "500 JPY" in dry and "$10.00" in dry

    paid = invoke("payout", "run", "--period", "2026-10")
    assert re.search(r"total\s+│?\s*500 JPY, \$10\.00", paid), paid
    listed = invoke("payout", "list")
    assert "500 JPY, $10.00" in listed
    assert "1500" not in paid + listed and "15.00" not in paid + listed  # no sum


def test_demo_prints_the_rewards_in_the_default_programs_currency(home: Path) -> None:
    # A database whose default program pays in yen (made so before anything built it).
    store = build_store(Settings().database_url, migrate=True)
    rules = RuleVersion(
        tiers=TierSchedule.parse("1:500"), effective_from=BEGINNING, created_at=BEGINNING
    )
    with store.unit_of_work() as uow:
        uow.programs.add(Program(DEFAULT_PROGRAM, "Default", "JPY", created_at=BEGINNING), rules)
        uow.commit()
    store.dispose()

    output = invoke("demo", "--referrers", "1")

    assert "1 x 500 JPY" in output and "$" not in output
