"""What the command line's modules share: the services, the console, and how a refused
command ends."""

import typer
from rich.console import Console

from referrals.bootstrap import Services, build
from referrals.domain.errors import DomainError
from referrals.domain.money import format_money
from referrals.startup import operator_errors

console = Console()


def services(*, create_tables: bool = False) -> Services:
    # Commands migrate first: the embedded shape needs no separate set-up step. On
    # DynamoDB the deployed stack owns the tables: only `db upgrade` creates them.
    with operator_errors():
        return build(migrate=True, create_tables=create_tables)


def refused(error: DomainError) -> typer.Exit:
    console.print(f"[red]error[/red] {error.code}: {error.detail}")
    return typer.Exit(code=1)


def program_money(svc: Services, program_id: str, minor: int) -> str:
    """An amount of a program's rewards, in its currency (RulesBook keeps its programs)."""
    return format_money(minor, svc.rules.currency(program_id))
