"""Money is integer cents everywhere; decimal strings exist only for display and reports."""

from decimal import Decimal

DEFAULT_CURRENCY = "USD"


def format_cents(cents: int) -> str:
    """12345 -> "123.45", -5 -> "-0.05": exact, never through a float."""
    sign = "-" if cents < 0 else ""
    whole, frac = divmod(abs(cents), 100)
    return f"{sign}{whole}.{frac:02d}"


def format_dollars(cents: int) -> str:
    """12345 -> "$123.45", -5 -> "-$0.05": for pages, exact as format_cents."""
    return f"-${format_cents(-cents)}" if cents < 0 else f"${format_cents(cents)}"


def cents_to_dollars(cents: int) -> Decimal:
    """Dollars as an exact Decimal, for the original API's `rewardAmount` number."""
    return Decimal(cents).scaleb(-2).normalize() if cents % 100 else Decimal(cents // 100)
