"""The payout report: a CSV line per user paid (and one more for their clawbacks, with a
negative amount), and its manifest. Deterministic bytes."""

import csv
import io
import json
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass

from referrals.domain.model import CurrencyTotal, PayoutLine, PayoutRun
from referrals.domain.money import DEFAULT_CURRENCY, exponent, format_minor

# `program` last: a reader of the columns before programs existed finds them in place.
HEADER = (
    "period",
    "referrer_id",
    "referral_count",
    "amount_cents",
    "amount",
    "currency",
    "program",
)
# A spreadsheet runs a cell that starts with one of these as a formula (CSV injection).
FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")


def report_key(period: str) -> str:
    return f"payouts/{period}/report.csv"


STAGED_PREFIX = "payouts/staged/"


def staged_key(period: str, sha256: str) -> str:
    """Where an attempt stores its report before completing: named by content, never shared,
    and removed once the report is published. Under a prefix of its own, so that a bucket
    can expire what an attempt that never completed left there (and old versions)."""
    return f"{STAGED_PREFIX}{period}/{sha256}.csv"


def manifest_key(period: str) -> str:
    return f"payouts/{period}/manifest.json"


# A cell of digits and number or date punctuation is read as a number, a date or a time
# ("1e5" as 100000, "00123" as 123, "12:30", "2026-11"), and changed. Only a plain
# integer a spreadsheet keeps exactly (no leading zero, at most 15 digits) is left as is.
_NUMBER_LIKE = re.compile(r"[0-9][0-9.:eE+-]*")
_EXACT_INTEGER = re.compile(r"0|[1-9][0-9]{0,14}")


def neutralise(cell: str) -> str:
    """Prefix an apostrophe, which spreadsheets show as text, to a cell they would run as a
    formula or read as another value (numbers, dates, times)."""
    if cell.startswith(FORMULA_TRIGGERS):
        return "'" + cell
    if _NUMBER_LIKE.fullmatch(cell) and not _EXACT_INTEGER.fullmatch(cell):
        return "'" + cell
    return cell


def render_csv(
    period: str, lines: Iterable[PayoutLine], currencies: Mapping[str, str] | None = None
) -> Iterator[bytes]:
    """The report, chunk by chunk, so a large run never holds it whole in memory.

    Each line is in its program's currency (`currencies`: program id -> ISO 4217 code;
    a program not in it pays in USD): `amount_cents` in its minor units, `amount` with
    its exponent (1234 JPY is "1234", 1234 USD "12.34")."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(HEADER)
    for n, line in enumerate(lines, 1):
        currency = (currencies or {}).get(line.program_id, DEFAULT_CURRENCY)
        writer.writerow(
            (
                period,
                neutralise(line.referrer_id),
                line.referral_count,
                line.amount_cents,
                format_minor(line.amount_cents, currency),
                currency,
                line.program_id,
            )
        )
        if n % 1000 == 0:
            yield buffer.getvalue().encode()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue().encode()


@dataclass(frozen=True, slots=True)
class ProgramTotal:
    """What a run pays in one program: its lines and their sum, in its currency."""

    program: str
    currency: str
    lines: int
    total_cents: int


def render_manifest(run: PayoutRun, programs: Sequence[ProgramTotal] = ()) -> bytes:
    """The run's totals and the report's sha256, linked to earlier reports both ways.

    `programs` sums the report's lines per program (sorted by program), each in its
    own currency: a run pays every program, and a reader checking one program's
    payments, or a currency's, needs not read the CSV. `totals` has the run's figures
    per currency (`run.totals`); the single `total_cents`, `clawback_cents`,
    `carried_forward_cents` and `currency` are those of the run's one currency, and
    null when it holds several: a run never sums different currencies. Every amount
    is in minor units, and again as a decimal string with the currency's exponent.

    `previous_period`/`previous_sha256` name the run completed just before this one,
    whatever its month, so every report is in one chain by completion order.
    `previous_month_period`/`previous_month_sha256` name the latest earlier month that
    was paid when this run completed: walking them goes back in month order. Periods
    may be run in any order (an imported month paid late), so that walk can skip a
    month paid afterwards. When months are paid in order, the two links are the same.
    """
    manifest = {
        "period": run.period,
        "cutoff": run.cutoff.isoformat(),
        "referrer_count": run.referrer_count,
        "referral_count": run.referral_count,
        "total_cents": run.total_cents,
        "clawback_cents": run.clawback_cents,
        "carried_forward_cents": run.carried_forward_cents,
        "currency": _single_currency(run),
        "report_key": run.report_key,
        "sha256": run.report_sha256,
        "previous_month_period": run.previous_month_period,
        "previous_month_sha256": run.previous_month_sha256,
        "previous_period": run.previous_period,
        "previous_sha256": run.previous_sha256,
        "programs": [
            {
                "program": total.program,
                "currency": total.currency,
                "lines": total.lines,
                "total_cents": total.total_cents,
                "total": format_minor(total.total_cents, total.currency),
            }
            for total in programs
        ],
        "totals": [_currency_total(total) for total in run.totals],
    }
    return json.dumps(manifest, indent=2, sort_keys=True).encode() + b"\n"


def _single_currency(run: PayoutRun) -> str | None:
    """The run's one currency; USD for a run that paid nothing; None with several."""
    if len(run.totals) > 1:
        return None
    return run.totals[0].currency if run.totals else DEFAULT_CURRENCY


def _currency_total(total: CurrencyTotal) -> dict[str, object]:
    return {
        "currency": total.currency,
        "exponent": exponent(total.currency),
        "referrer_count": total.referrer_count,
        "referral_count": total.referral_count,
        "total_cents": total.total_cents,
        "total": format_minor(total.total_cents, total.currency),
        "clawback_cents": total.clawback_cents,
        "clawback": format_minor(total.clawback_cents, total.currency),
        "carried_forward_cents": total.carried_forward_cents,
        "carried_forward": format_minor(total.carried_forward_cents, total.currency),
    }
