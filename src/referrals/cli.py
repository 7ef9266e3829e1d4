"""The `referrals` command line."""

import secrets
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from referrals.bootstrap import Services, build
from referrals.domain.errors import DomainError
from referrals.domain.model import ReferralStatus, Role
from referrals.domain.money import format_cents
from referrals.services import queries
from referrals.services.keys import create_first_admin_key, create_key
from referrals.services.referrers import enroll
from referrals.services.signups import sign_up

app = typer.Typer(
    help="Referral codes, tiered rewards and exactly-once payouts.", no_args_is_help=True
)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
keys_app = typer.Typer(help="API keys.", no_args_is_help=True)
referrers_app = typer.Typer(help="Referrers.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(keys_app, name="keys")
app.add_typer(referrers_app, name="referrers")
console = Console()


def _services() -> Services:
    # Commands migrate first: the embedded shape needs no separate set-up step.
    return build(migrate=True)


def _fail(error: DomainError) -> typer.Exit:
    console.print(f"[red]error[/red] {error.code}: {error.detail}")
    return typer.Exit(code=1)


@app.command()
def serve(
    host: str = "127.0.0.1",
    port: int = 8000,
    workers: Annotated[int, typer.Option(min=1, help="Worker processes.")] = 1,
) -> None:
    """Migrate the database if needed and serve the HTTP API."""
    import uvicorn

    svc = _services()
    key = create_first_admin_key(svc.store, svc.clock)
    if key is not None:
        console.print("Created the first admin key. It is shown once; keep it safe:")
        print(key, flush=True)
    console.print(f"API docs: http://{host}:{port}/docs")
    uvicorn.run(
        "referrals.api.app:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level="info",
    )


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Migrate the database to the latest schema."""
    _services()
    console.print("database is up to date")


@keys_app.command("create")
def keys_create(role: Annotated[Role, typer.Option(help="admin or ingest")] = Role.INGEST) -> None:
    """Create an API key; it is printed once, as the last line."""
    svc = _services()
    plaintext, key = create_key(svc.store, svc.clock, role)
    console.print(f"created {key.role} key {key.id}")
    print(plaintext, flush=True)


@referrers_app.command("enroll")
def referrers_enroll(
    user_id: str, email: str | None = None, code: Annotated[str | None, typer.Option()] = None
) -> None:
    """Enroll a referrer (idempotent), with a generated or vanity code."""
    svc = _services()
    try:
        enrollment = enroll(svc.store, svc.clock, user_id, email, code)
    except DomainError as error:
        raise _fail(error) from None
    verb = "enrolled" if enrollment.created else "already enrolled"
    console.print(f"{verb} {user_id} with code [bold]{enrollment.referrer.code}[/bold]")


@referrers_app.command("show")
def referrers_show(user_id: str) -> None:
    """Show a referrer's counts, earnings and next tier."""
    svc = _services()
    try:
        stats = queries.referrer_stats(svc.store, svc.program, user_id)
    except DomainError as error:
        raise _fail(error) from None
    r, e = stats.referrer, stats.earnings
    table = Table(title=f"referrer {r.user_id}", show_header=False)
    table.add_row("code", r.code)
    table.add_row("referrals", str(r.referral_count))
    table.add_row("earned", f"${format_cents(e.earned_cents)}")
    table.add_row("pending", f"${format_cents(e.pending_cents)}")
    table.add_row("paid", f"${format_cents(e.paid_cents)}")
    if stats.next_tier:
        next_at = f"${format_cents(stats.next_tier.reward_cents)} from referral "
        table.add_row("next tier", next_at + str(stats.next_tier.threshold))
    console.print(table)


@app.command()
def signup(user_id: str, referral_code: str, email: str | None = None) -> None:
    """Record that USER_ID signed up with REFERRAL_CODE."""
    svc = _services()
    try:
        result = sign_up(svc.store, svc.clock, svc.program, user_id, referral_code, email)
    except DomainError as error:
        raise _fail(error) from None
    r = result.referral
    replay = " (replay of a recorded signup)" if result.replayed else ""
    console.print(
        f"{user_id} referred by {r.referrer_id}: referral #{r.ordinal}, "
        f"reward ${format_cents(r.reward_cents)}{replay}; their code: {result.referee_code}"
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
    table = Table("id", "referrer", "referee", "#", "reward", "status", "created")
    for r in page.items:
        table.add_row(
            r.id,
            r.referrer_id,
            r.referee_id,
            str(r.ordinal),
            f"${format_cents(r.reward_cents)}",
            r.status,
            r.created_at.isoformat(timespec="seconds"),
        )
    console.print(table)


@app.command()
def demo(referrers: int = 2) -> None:
    """Enroll referrers and sign up enough users to cross every tier."""
    svc = _services()
    run = secrets.token_hex(2)
    top = svc.program.tiers.tiers[-1].threshold
    table = Table("referrer", "referrals", "rewards by tier", "total", title="demo rewards")
    for n in range(referrers):
        referrer_id = f"demo-{run}-referrer-{n + 1}"
        code = enroll(svc.store, svc.clock, referrer_id).referrer.code
        rewards: dict[int, int] = {}
        for i in range(top + n):
            result = sign_up(
                svc.store, svc.clock, svc.program, f"demo-{run}-user-{n + 1}-{i + 1}", code
            )
            cents = result.referral.reward_cents
            rewards[cents] = rewards.get(cents, 0) + 1
        by_tier = ", ".join(f"{count} x ${format_cents(c)}" for c, count in rewards.items())
        earned = sum(c * count for c, count in rewards.items())
        table.add_row(referrer_id, str(top + n), by_tier, f"${format_cents(earned)}")
    console.print(table)
