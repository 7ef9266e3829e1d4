"""What the dashboard's funnel page shows: the window's form as typed, the stages with
the rates between them, a chart per stage by day, and the referrers who brought most."""

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from referrals.domain.errors import DomainError, InvalidInput
from referrals.domain.funnel import Funnel
from referrals.domain.money import format_money
from referrals.ports import Store
from referrals.services.funnel import parse_day, program_funnel
from referrals.web.charts import bar_chart

DEFAULT_DAYS = 30
REFERRERS = 50
MAX_FIELD = 32


@dataclass(frozen=True, slots=True)
class FunnelForm:
    start: str  # YYYY-MM-DD, the first day
    end: str  # YYYY-MM-DD, the last day (included)

    @classmethod
    def of(cls, start: str, end: str, today: date) -> "FunnelForm":
        return cls(
            start[:MAX_FIELD] or (today - timedelta(days=DEFAULT_DAYS - 1)).isoformat(),
            end[:MAX_FIELD] or today.isoformat(),
        )

    def days(self) -> tuple[date, date]:
        """[first, day after the last): the service's window."""
        first, last = parse_day(self.start.strip(), "from"), parse_day(self.end.strip(), "to")
        return first, last + timedelta(days=1)


def funnel_context(store: Store, program_id: str, form: FunnelForm) -> tuple[int, dict[str, Any]]:
    """The page's status and context: 200 with the funnel, or 400 with the form's error."""
    context: dict[str, Any] = {"form": form, "result": None, "error": None}
    try:
        first, end = form.days()
        result = program_funnel(store, program_id, first, end, REFERRERS)
    except InvalidInput as error:
        return 400, context | {"error": f"Not shown: {error.detail}."}
    except DomainError as error:
        return 404, context | {"error": f"Not shown: {error.detail}."}
    return 200, context | {"result": result, "money": _money(result), "charts": _charts(result)}


def _money(result: Funnel) -> Any:
    """Minor units shown as an amount of the program's currency, with its ISO 4217
    decimals: "$12.34", "1234 JPY"."""
    return lambda minor: format_money(minor, result.currency)


def _charts(result: Funnel) -> list[tuple[str, str, Any]]:
    every = max(1, len(result.days) // 5)

    def chart(value: Any) -> Any:
        points = [(d.day.isoformat(), value(d.stages)) for d in result.days]
        return bar_chart(points, label_every=every, shorten=lambda iso: iso[5:])

    return [
        ("Clicks per day", "clicks", chart(lambda s: s.clicks)),
        ("Signups per day", "signups", chart(lambda s: s.signups)),
        ("Conversions per day", "purchases", chart(lambda s: s.conversions)),
        (
            f"Revenue per day (minor units of {result.currency})",
            f"minor units of {result.currency}",
            chart(lambda s: s.revenue_minor),
        ),
    ]
