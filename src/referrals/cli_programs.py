"""`referrals programs ...`: programs and their rule versions from the command line."""

from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer
from pydantic import ValidationError
from rich.table import Table

from referrals.api.schemas.programs import ProgramOut, Rules
from referrals.cli_common import console, refused, services
from referrals.domain.errors import DomainError
from referrals.domain.program import DEFAULT_ATTRIBUTION_DAYS, Attribution, Program, ProgramStatus
from referrals.services import programs
from referrals.services.keys import CLI_ACTOR

programs_app = typer.Typer(help="Programs and their rules.", no_args_is_help=True)
RulesFile = Annotated[
    Path,
    typer.Option(
        "--rules",
        exists=True,
        dir_okay=False,
        help="A JSON file of rules, as `programs show` prints them.",
    ),
]
LandingUrl = Annotated[
    str | None,
    typer.Option(help="Where its tracked links (/l/CODE) send visitors (http or https)."),
]
WindowDays = Annotated[
    int | None,
    typer.Option(help="Days a click can still be credited with a signup (1-365; default 30)."),
]
AttributionOption = Annotated[
    Attribution | None,
    typer.Option(help="Which of a visitor's clicks is credited (default: first)."),
]


def _rules(path: Path | None) -> Rules:
    try:
        return Rules.model_validate_json(path.read_bytes()) if path else Rules()
    except ValidationError as error:
        console.print(f"[red]error[/red] the rules are not valid:\n{error}")
        raise typer.Exit(code=1) from None


@programs_app.command("list")
def programs_list() -> None:
    """Every program, with the version of its rules in force now."""
    svc = services()
    now = svc.clock.now()
    table = Table("id", "name", "currency", "status", "rules in force", "scheduled")
    for view in programs.list_programs(svc.store):
        current = view.current(now)
        p = view.program
        table.add_row(
            p.id,
            p.name,
            p.currency,
            p.status,
            f"v{current.version}" if current else "none",
            ", ".join(
                f"v{v.version} at {v.effective_from.isoformat()}" for v in view.scheduled(now)
            ),
        )
    console.print(table)


@programs_app.command("show")
def programs_show(program_id: str) -> None:
    """A program and its versions, as JSON (the API's shape)."""
    svc = services()
    try:
        view = programs.get_program(svc.store, program_id)
    except DomainError as error:
        raise refused(error) from None
    print(ProgramOut.of(view, svc.clock.now()).model_dump_json(indent=2))


@programs_app.command("create")
def programs_create(
    program_id: str,
    name: Annotated[str, typer.Option(help="Shown to operators.")],
    currency: Annotated[str, typer.Option(help="ISO 4217.")] = "USD",
    share_url: Annotated[str | None, typer.Option(help="With {code} in it.")] = None,
    rules: RulesFile | None = None,
    landing_url: LandingUrl = None,
    window_days: WindowDays = None,
    attribution: AttributionOption = None,
) -> None:
    """Create a program, its rules (default: the default tiers) in force at once."""
    svc = services()
    try:
        program = Program(
            program_id,
            name,
            currency,
            share_url_template=share_url,
            landing_url=landing_url,
            attribution_window_days=DEFAULT_ATTRIBUTION_DAYS
            if window_days is None
            else window_days,
            attribution=attribution or Attribution.FIRST,
        )
        programs.create_program(svc.store, svc.clock, CLI_ACTOR, program, _rules(rules).version())
    except DomainError as error:
        raise refused(error) from None
    console.print(f"created program {program_id}")


@programs_app.command("rules")
def programs_rules(
    program_id: str,
    rules: RulesFile,
    effective_from: Annotated[
        datetime | None,
        typer.Option(help="ISO 8601 with an offset; default and earliest: 5 s from now."),
    ] = None,
) -> None:
    """Schedule the program's next rule version."""
    svc = services()
    try:
        version = programs.schedule_rules(
            svc.store, svc.clock, CLI_ACTOR, program_id, _rules(rules).version(), effective_from
        )
    except DomainError as error:
        raise refused(error) from None
    console.print(
        f"{program_id} v{version.version} takes effect at {version.effective_from.isoformat()}"
    )


def _set_status(program_id: str, status: ProgramStatus) -> None:
    svc = services()
    try:
        programs.update_program(svc.store, svc.clock, CLI_ACTOR, program_id, status=status)
    except DomainError as error:
        raise refused(error) from None
    console.print(f"{program_id} is {status.value} (every server sees it within 2 s)")


@programs_app.command("pause")
def programs_pause(program_id: str) -> None:
    """Refuse new signups; what was earned is still paid."""
    _set_status(program_id, ProgramStatus.PAUSED)


@programs_app.command("resume")
def programs_resume(program_id: str) -> None:
    """Take signups again."""
    _set_status(program_id, ProgramStatus.ACTIVE)


@programs_app.command("archive")
def programs_archive(program_id: str) -> None:
    """Pause for good."""
    _set_status(program_id, ProgramStatus.ARCHIVED)


@programs_app.command("links")
def programs_links(
    program_id: str,
    landing_url: LandingUrl = None,
    no_landing_url: Annotated[
        bool, typer.Option("--no-landing-url", help="Turn its tracked links off.")
    ] = False,
    window_days: WindowDays = None,
    attribution: AttributionOption = None,
) -> None:
    """Set where the program's tracked links lead, and how clicks are credited."""
    svc = services()
    try:
        view = programs.update_program(
            svc.store,
            svc.clock,
            CLI_ACTOR,
            program_id,
            landing_url=landing_url,
            clear_landing_url=no_landing_url,
            attribution_window_days=window_days,
            attribution=attribution,
        )
    except DomainError as error:
        raise refused(error) from None
    p = view.program
    console.print(
        f"{program_id}: links lead to {p.landing_url or 'nowhere (no landing URL)'}; "
        f"{p.attribution.value} click within {p.attribution_window_days} days"
    )
