"""What the dashboard's programs pages show of simulations and checks reports: the form a
proposal is typed in, read into rules and a window, and the before/after rows.

A proposal on the dashboard is the version in force with other tiers (and, if given, a
monthly cap), simulated over whole UTC days: the API takes every rule.
"""

import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from typing import Any

from referrals.domain.checks_report import ChecksReport
from referrals.domain.errors import DomainError, InvalidInput, NotFound
from referrals.domain.money import format_money
from referrals.domain.program import RuleVersion
from referrals.domain.simulation import Simulation, Window
from referrals.domain.tiers import TierSchedule
from referrals.ports import Store
from referrals.services.funnel import parse_day
from referrals.services.programs import ProgramView
from referrals.services.simulations import checks_report, simulate

DEFAULT_DAYS = 90  # "the last 3 months"
REPORT_DAYS = 30  # the checks report on the programs page
MAX_FIELD = 200  # characters of a form field read at all
# A checks report reads a program's last 30 days of referrals: kept a minute.
REPORT_TTL_S = 60.0
MOVERS = 20


@dataclass(frozen=True, slots=True)
class Proposal:
    """The form as typed (shown back as typed), and what it means once read."""

    tiers: str
    monthly_cap: str
    start: str  # YYYY-MM-DD, the first day
    end: str  # YYYY-MM-DD, the last day (included)

    @classmethod
    def default(cls, current: RuleVersion, today: date) -> "Proposal":
        cap = current.monthly_cap_cents
        return cls(
            tiers=str(current.tiers),
            monthly_cap=str(cap) if cap else "",
            start=(today - timedelta(days=DEFAULT_DAYS)).isoformat(),
            end=today.isoformat(),
        )

    def rules(self, current: RuleVersion, currency: str) -> RuleVersion:
        """The version in force with the typed tiers and monthly cap (whole minor units
        of the program's `currency`; empty: none)."""
        try:
            tiers = TierSchedule.parse(self.tiers[:MAX_FIELD])
        except InvalidInput as error:
            raise InvalidInput(f"tiers: {error.detail}", field="tiers") from None
        cap = self.monthly_cap.strip()
        if cap and not (cap.isdigit() and len(cap) <= 12):
            example = f"5000 is {format_money(5000, currency)}"
            raise InvalidInput(
                f"monthly cap: whole minor units of {currency}, e.g. {example}",
                field="monthly_cap",
            )
        return replace(current, tiers=tiers, monthly_cap_cents=int(cap) if cap else 0)

    def window(self) -> Window:
        """From the start of the first day to the end of the last (UTC)."""
        start, end = _day(self.start, "from"), _day(self.end, "to")
        return Window.of(start, end + timedelta(days=1))


def _day(text: str, field: str) -> datetime:
    day = parse_day(text[:MAX_FIELD].strip(), field)
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class Row:
    """A line of the before/after table, with its bars (percent of the larger figure)."""

    label: str
    actual: int
    simulated: int
    money: bool  # minor units of the program's currency, shown as an amount; else a count
    actual_width: float
    simulated_width: float

    @property
    def change(self) -> int:
        return self.simulated - self.actual


def _row(label: str, actual: int, simulated: int, money: bool) -> Row:
    top = max(abs(actual), abs(simulated))
    width = (lambda v: round(100 * abs(v) / top, 1)) if top else (lambda v: 0.0)
    return Row(label, actual, simulated, money, width(actual), width(simulated))


def comparison(result: Simulation) -> list[Row]:
    a, s = result.actual, result.simulated
    return [
        _row("Rewards earned", a.count, s.count, False),
        _row("Earned (after the caps)", a.earned_cents, s.earned_cents, True),
        _row("Held for review", a.held_cents, s.held_cents, True),
        _row("Cut by the caps", a.capped_cents, s.capped_cents, True),
        _row("Referee rewards", a.referee_cents, s.referee_cents, True),
    ]


def tier_rows(result: Simulation, currency: str) -> list[Row]:
    """Rewards per tier (threshold and amount in the program's `currency`), either way."""
    actual = {(t.threshold, t.reward_cents): t.count for t in result.actual.tiers}
    simulated = {(t.threshold, t.reward_cents): t.count for t in result.simulated.tiers}
    keys = sorted(actual.keys() | simulated.keys())
    return [
        _row(
            f"from referral {t}: {format_money(c, currency)}",
            actual.get((t, c), 0),
            simulated.get((t, c), 0),
            False,
        )
        for t, c in keys
    ]


def percent(share: float | None) -> str:
    return "n/a" if share is None else f"{share * 100:.0f}%"


def report_window(now: datetime) -> Window:
    return Window(now - timedelta(days=REPORT_DAYS), now)


def report_rows(report: ChecksReport) -> list[dict[str, object]]:
    return [
        {
            "check": row.name,
            "mode": row.mode,
            "checked": row.checked,
            "flagged": row.flagged.rewards,
            "bad": row.flagged.rejected + row.flagged.reversed,
            "good": row.flagged.approved,
            "open": row.flagged.in_review + row.flagged.awaiting,
            "precision": percent(row.precision),
            "baseline": percent(row.baseline),
        }
        for row in report.rows
    ]


def programs_context(
    store: Store,
    views: Sequence[ProgramView],
    now: datetime,
    kept: dict[str, tuple[float, list[dict[str, object]]]],
) -> dict[str, Any]:
    """The programs page's checks reports (`kept` for REPORT_TTL_S, by program) and the
    simulation forms, filled in with the version in force and the last 3 months."""
    reports = {}
    for view in views:
        hit = kept.get(view.program.id)
        if hit is None or time.monotonic() - hit[0] >= REPORT_TTL_S:
            report = checks_report(store, view.program.id, report_window(now))
            hit = kept[view.program.id] = (time.monotonic(), report_rows(report))
        reports[view.program.id] = hit[1]
    defaults = {
        view.program.id: Proposal.default(current, now.date())
        for view in views
        if (current := view.current(now)) is not None
    }
    return {"reports": reports, "defaults": defaults, "report_days": REPORT_DAYS}


def simulation_context(
    store: Store, view: ProgramView, now: datetime, form: Proposal
) -> tuple[int, dict[str, Any]]:
    """The simulation page: the form alone until it is filled in, then its result; a
    form that cannot be read is shown back with why (400), naming the field."""
    current, currency = view.current(now), view.program.currency
    context: dict[str, Any] = {"program": view.program, "current": current, "result": None}
    if current is None:
        return 404, context | {"form": form, "error": "The program has no rules in force."}
    if not (form.tiers or form.start or form.end):
        return 200, context | {"form": Proposal.default(current, now.date())}
    try:
        result = simulate(
            store, view.program.id, form.window(), form.rules(current, currency), MOVERS
        )
    except NotFound as error:
        return 404, context | {"form": form, "error": f"Not simulated: {error.detail}."}
    except DomainError as error:
        return 400, context | {"form": form, "error": f"Not simulated: {error.detail}."}
    rows = {"rows": comparison(result), "tier_rows": tier_rows(result, currency)}
    return 200, context | {"form": form, "result": result} | rows
