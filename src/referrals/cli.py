"""The `referrals` command line."""

import logging.config
import secrets
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime, timedelta
from typing import Annotated

import typer
from rich.table import Column, Table

from referrals import logs
from referrals.adapters.host import attempt_owner
from referrals.bootstrap import Services, build
from referrals.cli_common import console, program_money
from referrals.cli_common import refused as _fail
from referrals.cli_common import services as _services
from referrals.cli_programs import programs_app
from referrals.cli_referrers import referrers_app
from referrals.config import Settings
from referrals.domain.errors import DomainError
from referrals.domain.model import (
    DEFAULT_PROGRAM,
    CurrencyTotal,
    EventStatus,
    PayoutLine,
    PayoutRun,
    ReferralStatus,
    Role,
    RunStatus,
)
from referrals.domain.money import (
    DEFAULT_CURRENCY,
    format_amounts,
    format_money,
)
from referrals.domain.periods import Period, last_ended_period
from referrals.domain.reports import manifest_key, report_key
from referrals.services import audit, keys, outbox, payout_reports, payouts, queries
from referrals.services.keys import CLI_ACTOR, create_first_admin_key, create_key
from referrals.services.referrers import enroll
from referrals.services.signups import sign_up
from referrals.startup import fail, operator_errors, port_in_use

app = typer.Typer(
    help="Referral codes, tiered rewards and exactly-once payouts.", no_args_is_help=True
)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
keys_app = typer.Typer(help="API keys.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(keys_app, name="keys")
app.add_typer(referrers_app, name="referrers")
payout_app = typer.Typer(help="Monthly payouts.", no_args_is_help=True)
events_app = typer.Typer(help="Notification events (the outbox).", no_args_is_help=True)
app.add_typer(payout_app, name="payout")
app.add_typer(events_app, name="events")
app.add_typer(programs_app, name="programs")


@app.command()
def serve(
    host: str = "127.0.0.1",
    port: int = 8000,
    workers: Annotated[int, typer.Option(min=1, help="Worker processes.")] = 1,
    access_log: Annotated[bool, typer.Option(help="Log a line per request.")] = True,
    timeout_keep_alive: Annotated[
        int, typer.Option(min=1, help="Seconds an idle connection stays open.")
    ] = 75,
) -> None:
    """Migrate the database if needed and serve the HTTP API."""
    import uvicorn

    with operator_errors():
        settings = Settings()
        if port_in_use(host, port):
            fail(f"port {port} on {host} is taken: stop its process, or choose another with --port")
        log_config = logs.config(settings.log_format)
        # Applied here for the migration's lines; uvicorn applies it again in each worker.
        logging.config.dictConfig(log_config)
        svc = build(settings, migrate=True)
        try:
            key = create_first_admin_key(svc.store, svc.clock)
        finally:
            # The server builds its own store: this one must hold no connection (nor
            # SQLite's write lock) when it starts.
            svc.store.dispose()
    if key is not None:
        console.print(
            "Created the first admin key (id first-admin). It is shown once; keep it safe:"
        )
        print(key, flush=True)
    if not settings.secret_key:
        # build() created it (once) or read it: every worker reads the same one.
        console.print(
            "No REFERRALS_SECRET_KEY set: links, sessions and fingerprints are keyed by a "
            "secret kept in the database, readable by whoever reads it; set one in production."
        )
    shown = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host  # a wildcard, not an address
    base = f"http://{f'[{shown}]' if ':' in shown else shown}:{port}"
    console.print(f"API docs:  {base}/docs")
    console.print(f"Dashboard: {base}/dashboard (sign in with an admin key)")
    uvicorn.run(
        "referrals.api.app:serve_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_config=log_config,
        log_level="info",
        access_log=access_log,
        # Longer than load balancers keep idle connections (60 s on AWS ALB), so the
        # server never closes one just as the balancer sends on it (a 502).
        timeout_keep_alive=timeout_keep_alive,
    )


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Migrate the database to the latest schema (on DynamoDB: create missing tables)."""
    _services(create_tables=True)
    console.print("database is up to date")


_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def _duration(text: str) -> timedelta:
    """`3600`, `90s`, `30m`, `12h` or `90d`."""
    number, unit = (text[:-1], text[-1]) if text[-1:] in _UNITS else (text, "s")
    if not (number.isascii() and number.isdigit()):
        raise typer.BadParameter(f"{text!r} is not a duration: write 3600, 90s, 30m, 12h or 90d")
    return timedelta(seconds=int(number) * _UNITS[unit])


ExpiresIn = Annotated[
    str | None, typer.Option(help="Stop working after this long: 3600 (seconds), 12h, 90d.")
]


@keys_app.command("create")
def keys_create(
    role: Annotated[Role, typer.Option(help="admin or ingest")] = Role.INGEST,
    name: Annotated[str | None, typer.Option(help="What the key is for.")] = None,
    expires_in: ExpiresIn = None,
) -> None:
    """Create an API key; it is printed once, as the last line."""
    lifetime = _duration(expires_in) if expires_in is not None else None
    svc = _services()
    try:
        plaintext, key = create_key(svc.store, svc.clock, role, name=name, expires_in=lifetime)
    except DomainError as error:
        raise _fail(error) from None
    console.print(f"created {key.role} key {key.id}")
    print(plaintext, flush=True)


@keys_app.command("list")
def keys_list() -> None:
    """Every key, oldest first, revoked and expired ones too (never a secret)."""
    svc = _services()
    now = svc.clock.now()

    def at(moment: datetime | None) -> str:
        return moment.isoformat(timespec="minutes") if moment is not None else ""

    table = Table(
        _id_column("id"), _text_column("name"), "role", "state", "created", "last used", "expires"
    )
    for key in keys.list_keys(svc.store):
        expires = at(key.revoked_at or key.expires_at)
        table.add_row(
            key.id,
            key.name or "",
            key.role,
            key.state(now),
            at(key.created_at),
            at(key.last_used_at),
            f"revoked {expires}" if key.revoked_at else expires,
        )
    console.print(table)


@keys_app.command("revoke")
def keys_revoke(
    key_id: str, reason: Annotated[str | None, typer.Option(help="For the audit log.")] = None
) -> None:
    """Revoke a key at once and for good; its dashboard sessions end with it."""
    svc = _services()
    try:
        key = keys.revoke_key(svc.store, svc.clock, key_id, CLI_ACTOR, reason)
    except DomainError as error:
        raise _fail(error) from None
    console.print(f"revoked key {key.id}: every server refuses it within a second")


@keys_app.command("rotate")
def keys_rotate(
    key_id: str,
    grace: Annotated[
        str, typer.Option(help="How long the old key keeps working: 3600 (seconds), 30m, 1d; 0.")
    ] = "1h",
    expires_in: ExpiresIn = None,
) -> None:
    """A new key in place of KEY_ID (the same role and name), printed once as the last
    line; the old key keeps working for the grace period."""
    grace_period = _duration(grace)
    lifetime = _duration(expires_in) if expires_in is not None else None
    svc = _services()
    try:
        plaintext, new, old = keys.rotate_key(
            svc.store, svc.clock, key_id, grace_period, CLI_ACTOR, expires_in=lifetime
        )
    except DomainError as error:
        raise _fail(error) from None
    until = old.expires_at.isoformat(timespec="seconds") if old.expires_at else ""
    console.print(f"created {new.role} key {new.id} in place of {old.id}; it works until {until}")
    print(plaintext, flush=True)


@app.command()
def signup(user_id: str, referral_code: str, email: str | None = None) -> None:
    """Record that USER_ID signed up with REFERRAL_CODE."""
    svc = _services()
    try:
        svc.rules.ensure_default()  # before the signup's unit of work reads its program
        result = sign_up(svc.store, svc.clock, svc.rules.for_signup, user_id, referral_code, email)
    except DomainError as error:
        raise _fail(error) from None
    r = result.referral
    replay = " (replay of a recorded signup)" if result.replayed else ""
    console.print(
        f"{user_id} referred by {r.referrer_id}: referral #{r.ordinal}, "
        f"reward {program_money(svc, r.program_id, r.reward_cents)}{replay}; "
        f"their code: {result.referee_code}"
    )


@app.command("referrals")
def referrals_list(
    referrer: str | None = None, status: ReferralStatus | None = None, limit: int = 50
) -> None:
    """List referrals, oldest first."""
    svc = _services()
    try:
        page = queries.search_referrals(svc.store, limit, None, status, referrer)
    except DomainError as error:
        raise _fail(error) from None
    table = Table(
        _id_column("id"),
        _text_column("referrer"),
        _text_column("referee"),
        "#",
        "reward",
        "status",
        "created",
    )
    for r in page.items:
        table.add_row(
            r.id,
            r.referrer_id,
            r.referee_id,
            str(r.ordinal),
            program_money(svc, r.program_id, r.reward_cents),
            r.status,
            r.created_at.isoformat(timespec="seconds"),
        )
    console.print(table)


@app.command()
def demo(
    referrers: Annotated[int, typer.Option(min=1, help="How many referrers to enroll.")] = 2,
    backdate: Annotated[
        bool,
        typer.Option(
            "--backdate",
            help="Import the signups into the month just ended, pay that month, "
            "and print its CSV report and manifest.",
        ),
    ] = False,
) -> None:
    """Enroll referrers and sign up enough users to cross every tier.

    With --backdate the signups are imported as made in the month just ended (as an
    admin's `signed_up_at` does), and that month is paid: a payout to look at now.
    """
    svc = _services()
    period = last_ended_period(svc.clock.now()) if backdate else None
    if period is not None:
        _refuse_to_pay_others(svc, period)
    run = secrets.token_hex(2)
    top = svc.rules.current(svc.clock).tiers.tiers[-1].threshold
    table = Table(
        _text_column("referrer"), "referrals", "rewards by tier", "total", title="demo rewards"
    )
    signed = 0

    def money(minor: int) -> str:  # the demo signs up in the default program
        return program_money(svc, DEFAULT_PROGRAM, minor)

    for n in range(referrers):
        referrer_id = f"demo-{run}-referrer-{n + 1}"
        code = enroll(svc.store, svc.clock, referrer_id).referrer.code
        rewards: dict[int, int] = {}
        for i in range(top + n):
            # A second apart from the first instant of the month: early, so that rewards
            # held for a few days (REFERRALS_HOLD_DAYS) are still payable in it.
            at = period.start + timedelta(seconds=signed) if period else None
            result = sign_up(
                svc.store,
                svc.clock,
                svc.rules.for_signup,
                f"demo-{run}-user-{n + 1}-{i + 1}",
                code,
                signed_up_at=at,
            )
            signed += 1
            cents = result.referral.reward_cents
            rewards[cents] = rewards.get(cents, 0) + 1
        by_tier = ", ".join(f"{count} x {money(c)}" for c, count in rewards.items())
        earned = sum(c * count for c, count in rewards.items())
        table.add_row(referrer_id, str(top + n), by_tier, money(earned))
    console.print(table)
    if period is None:
        return
    console.print(f"signed up in {period}; paying {period}:")
    try:
        paid = _pay(svc, period)
        _print_run(svc, paid)
        report = payout_reports.get_report(svc.store, svc.reports, period)
        manifest = payout_reports.get_manifest(svc.store, svc.reports, period)
    except DomainError as error:
        raise _fail(error) from None
    where = svc.settings.reports_url.rstrip("/")
    # Printed as they are stored, byte for byte (not through rich, which would wrap them).
    console.print(f"\nreport: {where}/{report_key(str(period))}")
    print(report.decode(), end="", flush=True)
    console.print(f"\nmanifest: {where}/{manifest_key(str(period))}")
    print(manifest.decode(), end="", flush=True)


def _refuse_to_pay_others(svc: Services, period: Period) -> None:
    """Before anything is written: the run pays every unpaid reward of the month, so
    the demo pays only where the month holds nothing but demo rewards, and is unpaid."""
    preview = payouts.preview_payout(svc.store, svc.clock, period)
    others = sorted(
        {line.referrer_id for line in preview.lines if not line.referrer_id.startswith("demo-")}
    )
    if preview.status is RunStatus.COMPLETED:
        why = f"{period} is already paid on this database, so it cannot pay the demo's signups"
    elif others:
        why = f"{period} has unpaid rewards of {len(others)} users besides the demo's "
        why += f"({', '.join(others[:3])}{', ...' if len(others) > 3 else ''}): paying it "
        why += "would pay them too"
    else:
        return
    console.print(
        f"[red]error[/red] {why}. Run `demo` without --backdate, or on another database "
        "(REFERRALS_DATABASE_URL=sqlite:///./demo.db)."
    )
    raise typer.Exit(code=1)


@payout_app.command("run")
def payout_run(
    period: Annotated[str | None, typer.Option(help="YYYY-MM; default: last month")] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Show the lines, write nothing")
    ] = False,
) -> None:
    """Pay every unpaid reward earned before the period's end, exactly once."""
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    svc = _services()
    started = svc.clock.now()
    try:
        chosen = Period.parse(period) if period else last_ended_period(started)
        if dry_run:
            preview = payouts.preview_payout(svc.store, svc.clock, chosen, svc.rules.minimums())
            _print_lines(preview.period, preview.lines, preview.currencies)
            if preview.status is RunStatus.COMPLETED:
                done = preview.completed_at
                at = f" at {done:%Y-%m-%d %H:%M} UTC" if done else ""
                console.print(
                    f"dry run: {preview.period} is completed{at}: it paid "
                    f"{preview.referral_count} rewards to {preview.referrer_count} referrers, "
                    f"{_paid(preview.totals)}; running it again changes nothing"
                )
                return
            if preview.status is not None:
                console.print(
                    f"a run of {preview.period} is {preview.status}: running it resumes it "
                    "once its lease has expired (a live run answers payout_in_progress)"
                )
            console.print(
                f"dry run: {preview.referral_count} rewards to {preview.referrer_count} "
                f"referrers, {_paid(preview.totals)}; nothing was written"
            )
            if preview.carried_forward:
                console.print(f"carried forward (below the minimum): {_carried(preview.totals)}")
            for held in preview.held:
                reasons = [c.detail or c.name for c in held.receipt.failed] if held.receipt else []
                console.print(
                    f"held for review: {held.id} ({held.referrer_id}): {'; '.join(reasons)}"
                )
            return
        columns = (SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn())
        with Progress(*columns, console=console, transient=True) as progress:
            task = progress.add_task(f"payout {chosen}: assigning rewards", total=None)
            run = _pay(
                svc,
                chosen,
                lambda n: progress.update(
                    task, description=f"payout {chosen}: {n} rewards assigned"
                ),
            )
    except DomainError as error:
        raise _fail(error) from None
    outbox.dispatch(svc.store, svc.notifier, svc.clock, svc.retry_policy)
    _print_run(svc, run)
    if run.completed_at is not None and run.completed_at < started:
        console.print(f"{run.period} was completed before: nothing more was paid")


def _pay(
    svc: Services, period: Period, on_progress: Callable[[int], None] | None = None
) -> PayoutRun:
    """Run the period's payout with the settings' batch size and minimum, audited as the CLI."""
    run = payouts.run_payout(
        svc.store,
        svc.reports,
        svc.clock,
        period,
        owner=attempt_owner(svc.clock.now()),
        batch_size=svc.settings.payout_batch_size,
        minimum_cents=svc.rules.minimums(),
        on_progress=on_progress,
    )
    audit.record(svc.store, svc.clock, CLI_ACTOR, "payout.run", f"payout:{run.period}")
    return run


def _print_run(svc: Services, run: PayoutRun) -> None:
    # Whole values, so that the report's path and sha256 can be pasted.
    table = Table("", _id_column(""), title=f"payout {run.period}", show_header=False)
    table.add_row("status", run.status)
    table.add_row("referrers", str(run.referrer_count))
    table.add_row("rewards", str(run.referral_count))
    # One amount per currency: a run never sums different currencies.
    table.add_row("total", _paid(run.totals))
    table.add_row("clawed back", format_amounts((t.currency, t.clawback_cents) for t in run.totals))
    table.add_row("carried forward", _carried(run.totals))
    table.add_row("report", f"{svc.settings.reports_url.rstrip('/')}/{run.report_key}")
    table.add_row("sha256", run.report_sha256 or "")
    if run.status is RunStatus.COMPLETED and not run.report_published:
        # Paid all the same: the schedule, or this command again, publishes it.
        table.add_row("published", f"no: {run.error}")
    console.print(table)


@payout_app.command("list")
def payout_list() -> None:
    """Every payout run, newest period first."""
    svc = _services()
    table = Table("period", "status", "referrers", "rewards", "total", "completed")
    for run in payouts.list_runs(svc.store):
        completed = run.completed_at.isoformat(timespec="seconds") if run.completed_at else ""
        table.add_row(
            run.period,
            run.status,
            str(run.referrer_count),
            str(run.referral_count),
            _paid(run.totals),
            completed,
        )
    console.print(table)


def _paid(totals: Iterable[CurrencyTotal]) -> str:
    return format_amounts((total.currency, total.total_cents) for total in totals)


def _carried(totals: Iterable[CurrencyTotal]) -> str:
    return format_amounts(
        (total.currency, total.carried_forward_cents)
        for total in totals
        if total.carried_forward_cents
    )


def _print_lines(period: str, lines: list[PayoutLine], currencies: Mapping[str, str]) -> None:
    table = Table(_text_column("user"), "entries", "amount", "line", title=f"payout {period}")
    for line in lines[:50]:
        currency = currencies.get(line.program_id, DEFAULT_CURRENCY)
        amount = format_money(line.amount_cents, currency)
        table.add_row(line.referrer_id, str(line.referral_count), amount, line.kind)
    if len(lines) > 50:
        table.add_row(f"... {len(lines) - 50} more", "", "", "")
    console.print(table)


@events_app.command("list")
def events_list(status: EventStatus | None = None, limit: int = 50) -> None:
    """Notification events, newest first (`--status dead` for the dead letters)."""
    svc = _services()
    table = Table(
        _id_column("id"),
        _text_column("type"),
        _text_column("status"),
        _text_column("tries"),
        _text_column("last error"),
    )
    for event in outbox.list_events(svc.store, status, limit):
        table.add_row(event.id, event.type, event.status, str(event.attempts), event.last_error)
    console.print(table)


@events_app.command("retry")
def events_retry(event_id: str) -> None:
    """Send a dead-lettered event again."""
    svc = _services()
    try:
        outbox.requeue(svc.store, svc.clock, event_id, actor=CLI_ACTOR)
    except DomainError as error:
        raise _fail(error) from None
    result = outbox.dispatch(svc.store, svc.notifier, svc.clock, svc.retry_policy)
    console.print(f"requeued {event_id}; delivered {result.delivered}, failed {result.failed}")


@events_app.command("discard")
def events_discard(event_id: str) -> None:
    """Drop a dead-lettered event for good (audited); `retry` sends it instead."""
    svc = _services()
    try:
        outbox.discard(svc.store, svc.clock, event_id, actor=CLI_ACTOR)
    except DomainError as error:
        raise _fail(error) from None
    console.print(f"discarded {event_id}")


@events_app.command("dispatch")
def events_dispatch() -> None:
    """Deliver the events that are due now."""
    svc = _services()
    result = outbox.dispatch(svc.store, svc.notifier, svc.clock, svc.retry_policy)
    console.print(f"delivered {result.delivered}, failed {result.failed}, dead {result.dead}")


def _id_column(header: str) -> Column:
    """A column of record ids, printed whole on one line so that an id can be pasted back
    into a command (`events retry ID`): the other columns give way (only a terminal
    narrower than the id itself folds it, and even then nothing is cut)."""
    return Column(header, no_wrap=True, overflow="fold")


def _text_column(header: str) -> Column:
    """A column of user ids or text that may be long: folded onto more lines, never cut."""
    return Column(header, overflow="fold")
