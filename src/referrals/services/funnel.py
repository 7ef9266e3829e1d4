"""A program's funnel over whole UTC days (domain.funnel): one read of three counts, each
a key range of its records by time (clicks, referrals, sales and refunds), never every
record of the program."""

from datetime import UTC, date, datetime, time, timedelta

from referrals.domain.errors import InvalidInput
from referrals.domain.funnel import Funnel, funnel
from referrals.ports import Store
from referrals.services.programs import get_program

MAX_DAYS = 366
MAX_REFERRERS = 500


def parse_day(text: str, name: str) -> date:
    """A day as a client writes it (YYYY-MM-DD); 400 naming `name` if it is no day."""
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise InvalidInput(f"{name}: a day, YYYY-MM-DD", field=name) from None


def program_funnel(store: Store, program_id: str, start: date, end: date, limit: int) -> Funnel:
    """The funnel of the days [start, end) (UTC), with the `limit` referrers who brought
    the most signups."""
    if end <= start:
        raise InvalidInput("to: must be after from", field="to")
    if end - start > timedelta(days=MAX_DAYS):
        raise InvalidInput(f"to: at most {MAX_DAYS} days after from", field="to")
    if not 1 <= limit <= MAX_REFERRERS:
        raise InvalidInput(f"limit: 1-{MAX_REFERRERS}", field="limit")
    program = get_program(store, program_id).program  # 404 for one that does not exist
    since, until = (datetime.combine(day, time(), UTC) for day in (start, end))
    with store.read() as uow:
        clicks = uow.clicks.tally(program_id, since, until)
        referrals = uow.stats.referral_days(program_id, since, until)
        sales = uow.sales.tally(program_id, since, until)
    return funnel(program.currency, start, end, clicks, referrals, sales, limit)
