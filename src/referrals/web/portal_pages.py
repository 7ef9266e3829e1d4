"""The referrer portal's pages, rendered from a `PortalView`.

A referrer sees their own referrals, but not who the referees are: no email, and a
referee's user id only masked. A page is one program's (its code's), so every amount
on it is in that program's currency.
"""

from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import quote

from referrals.domain.model import ReferralStatus
from referrals.domain.money import format_money
from referrals.services.portal_views import CLICK_DAYS, PortalView
from referrals.web import templates

# Words a referrer understands; the API's status names are for integrators.
STATUS_LABELS = {
    ReferralStatus.AWAITING: "awaiting purchase",
    ReferralStatus.PENDING: "pending",
    ReferralStatus.HELD: "in review",
    ReferralStatus.PROCESSING: "being paid",
    ReferralStatus.PAID: "paid",
    ReferralStatus.REJECTED: "not eligible",
    ReferralStatus.REVERSED: "cancelled",
    ReferralStatus.CLAWED_BACK: "cancelled after payment",
}


@dataclass(frozen=True, slots=True)
class Row:
    date: str
    referee: str
    status: str
    reward: str


def share_link(share_url: str, code: str) -> str:
    return share_url.replace("{code}", quote(code, safe=""))


def mask(user_id: str) -> str:
    """The first characters of an id, enough for its owner to tell referrals apart."""
    shown = 2 if len(user_id) >= 6 else 1 if len(user_id) >= 3 else 0
    return user_id[:shown] + "•••"


def render_page(view: PortalView, share_url: str, currency: str) -> str:
    """The referrer's page in their program, its amounts in the program's `currency`."""

    def money(minor: int) -> str:
        return format_money(minor, currency)

    stats = view.stats
    referrer, earnings, next_tier = stats.referrer, stats.earnings, stats.next_tier
    rows = [
        Row(
            date=r.created_at.astimezone(UTC).strftime("%Y-%m-%d"),
            referee=mask(r.referee_id),
            status=STATUS_LABELS.get(r.status, str(r.status)),
            reward=money(r.reward_cents),
        )
        for r in view.recent
    ]
    # To a referrer, "pending" is all they earned and were not paid yet; the part the
    # next payout pays (its hold period over) is said apart when there is one.
    unpaid = earnings.pending_cents + earnings.payable_cents
    note = "earned, not paid yet"
    if earnings.payable_cents:
        note += f"; {money(earnings.payable_cents)} of it in the next payout"
    amounts = [("pending", "Pending", unpaid, note)]
    if earnings.held_cents:
        amounts.append(("held", "In review", earnings.held_cents, "checked before it is paid"))
    amounts.append(("paid", "Paid", earnings.paid_cents, "paid out to you"))
    if earnings.clawed_back_cents:
        amounts.append(
            ("clawed-back", "Taken back", earnings.clawed_back_cents, "cancelled after payment")
        )
    return templates.get_template("portal/page.html").render(
        user_id=referrer.user_id,
        code=referrer.code,
        share_link=share_link(share_url, referrer.code),
        referral_count=referrer.referral_count,
        clicks=view.clicks,
        click_days=CLICK_DAYS,
        rows=rows,
        amounts=[(slug, label, money(cents), note) for slug, label, cents, note in amounts],
        earned=money(earnings.earned_cents),
        next_tier=None
        if next_tier is None
        else {"at": next_tier.threshold, "reward": money(next_tier.reward_cents)},
        expires_at=_when(view.expires_at),
    )


def render_refused(status: int) -> str:
    """The page for a link refused (403) or a code that leads nowhere (404)."""
    if status == 404:
        title, message = "Page not found", "There is no referral page at this address."
    else:
        title = "Link invalid or expired"
        message = "This link is invalid or has expired. Ask the app that sent it for a new one."
    return templates.get_template("portal/refused.html").render(title=title, message=message)


def _when(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
