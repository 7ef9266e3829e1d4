"""Money is integer minor units everywhere (cents for USD); decimal strings exist only
for display and reports, written with the currency's ISO 4217 exponent."""

from collections.abc import Iterable
from decimal import Decimal

DEFAULT_CURRENCY = "USD"

# ISO 4217's minor unit of the active codes (domain/data/currencies.txt) that do not
# have two decimals: 1234 JPY is "1234", 1234 KWD is "1.234".
_NO_DECIMALS = "BIF CLP DJF GNF ISK JPY KMF KRW PYG RWF UGX VND VUV XAF XOF XPF"
_THREE_DECIMALS = "BHD IQD JOD KWD LYD OMR TND"
_EXPONENTS = dict.fromkeys(_NO_DECIMALS.split(), 0) | dict.fromkeys(_THREE_DECIMALS.split(), 3)


def exponent(currency: str) -> int:
    """How many decimals the currency's minor unit has: 2 unless ISO 4217 says otherwise."""
    return _EXPONENTS.get(currency, 2)


def format_minor(minor: int, currency: str) -> str:
    """1234 of USD -> "12.34", of JPY -> "1234", of KWD -> "1.234": exact, no float."""
    places = exponent(currency)
    sign = "-" if minor < 0 else ""
    if places == 0:
        return f"{sign}{abs(minor)}"
    whole, frac = divmod(abs(minor), 10**places)
    return f"{sign}{whole}.{frac:0{places}d}"


def format_money(minor: int, currency: str) -> str:
    """For pages: "$12.34" in USD (as pages always showed dollars), else "1234 JPY"."""
    if currency == DEFAULT_CURRENCY:
        return format_dollars(minor)
    return f"{format_minor(minor, currency)} {currency}"


def format_amounts(amounts: Iterable[tuple[str, int]]) -> str:
    """(currency, minor units) pairs side by side, each as `format_money`, never summed:
    "$12.34, 1234 JPY"; "$0.00" for none."""
    shown = [format_money(minor, currency) for currency, minor in amounts]
    return ", ".join(shown) or format_money(0, DEFAULT_CURRENCY)


def format_cents(cents: int) -> str:
    """12345 -> "123.45", -5 -> "-0.05": exact, never through a float."""
    return format_minor(cents, DEFAULT_CURRENCY)


def format_dollars(cents: int) -> str:
    """12345 -> "$123.45", -5 -> "-$0.05": for pages, exact as format_cents."""
    return f"-${format_cents(-cents)}" if cents < 0 else f"${format_cents(cents)}"


def cents_to_dollars(cents: int) -> Decimal:
    """Dollars as an exact Decimal, for the original API's `rewardAmount` number."""
    return Decimal(cents).scaleb(-2).normalize() if cents % 100 else Decimal(cents // 100)
