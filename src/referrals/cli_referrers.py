"""`referrals referrers ...`: enroll a referrer in a program and show their stats, each
amount in the program's currency (a referrer in two programs is shown one at a time:
their earnings are never added across currencies)."""

from typing import Annotated

import typer
from rich.table import Table

from referrals.cli_common import console, program_money, refused, services
from referrals.domain.errors import DomainError
from referrals.domain.program import DEFAULT_PROGRAM
from referrals.services import queries
from referrals.services.referrers import enroll

referrers_app = typer.Typer(help="Referrers.", no_args_is_help=True)
ProgramOption = Annotated[str, typer.Option(help="The program's id")]


@referrers_app.command("enroll")
def referrers_enroll(
    user_id: str,
    email: str | None = None,
    code: Annotated[str | None, typer.Option()] = None,
    program: ProgramOption = DEFAULT_PROGRAM,
) -> None:
    """Enroll a referrer of a program (idempotent), with a generated or vanity code."""
    svc = services()
    try:
        enrollment = enroll(svc.store, svc.clock, user_id, email, code, program=program)
    except DomainError as error:
        raise refused(error) from None
    verb = "enrolled" if enrollment.created else "already enrolled"
    console.print(f"{verb} {user_id} with code [bold]{enrollment.referrer.code}[/bold]")


@referrers_app.command("show")
def referrers_show(user_id: str, program: ProgramOption = DEFAULT_PROGRAM) -> None:
    """Show a referrer's counts, earnings and next tier in a program."""
    svc = services()
    try:
        rules = svc.rules.current(svc.clock, program)
        stats = queries.referrer_stats(svc.store, svc.clock, rules, user_id)
    except DomainError as error:
        raise refused(error) from None

    def money(minor: int) -> str:
        return program_money(svc, program, minor)

    r, e = stats.referrer, stats.earnings
    table = Table(title=f"referrer {r.user_id} in {r.program_id}", show_header=False)
    table.add_row("code", r.code)
    table.add_row("referrals", str(r.referral_count))
    table.add_row("earned", money(e.earned_cents))
    table.add_row("pending (hold)", money(e.pending_cents))
    table.add_row("payable", money(e.payable_cents))
    table.add_row("held (review)", money(e.held_cents))
    table.add_row("paid", money(e.paid_cents))
    table.add_row("clawed back", money(e.clawed_back_cents))
    if stats.next_tier:
        next_at = f"{money(stats.next_tier.reward_cents)} from referral "
        table.add_row("next tier", next_at + str(stats.next_tier.threshold))
    console.print(table)
