"""Fraud checks on a signup. They flag rather than block: a failed check holds the reward
for review, so a false positive costs a review, never a lost signup."""

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache
from importlib.resources import files

from referrals.domain.model import Check, Referral, Referrer

EMAIL_ALIAS = "email_alias"
DISPOSABLE_EMAIL = "disposable_email"
SAME_DEVICE = "same_device"
VELOCITY = "velocity"
VELOCITY_WINDOW = timedelta(hours=1)

# Providers that deliver "a.b+tag@" to "ab@": the local part is normalised for them only,
# since elsewhere dots and plus signs may tell two real people apart.
_DOTS_IGNORED = frozenset({"gmail.com", "googlemail.com"})
_PLUS_TAGS = frozenset(
    {
        "gmail.com",
        "googlemail.com",
        "outlook.com",
        "hotmail.com",
        "live.com",
        "icloud.com",
        "me.com",
        "fastmail.com",
        "proton.me",
        "protonmail.com",
    }
)
_SAME_MAILBOX = {"googlemail.com": "gmail.com"}


@dataclass(frozen=True, slots=True)
class FraudChecks:
    """Which checks run; each can be switched off."""

    email_alias: bool = True
    disposable_email: bool = True
    same_device: bool = True  # the referee's IP address or device is the referrer's
    velocity_per_hour: int = 0  # flag beyond this many referrals an hour per referrer; 0: off


def normalize_email(email: str) -> str:
    """The mailbox an address delivers to, as far as its provider's rules are known."""
    local, _, domain = email.casefold().rpartition("@")
    domain = _SAME_MAILBOX.get(domain, domain)
    if domain in _PLUS_TAGS:
        local = local.split("+", 1)[0]
    if domain in _DOTS_IGNORED:
        local = local.replace(".", "")
    return f"{local}@{domain}"


def fingerprint(value: str | None) -> str | None:
    """What is stored of an IP address or device id: enough to compare, not to read back."""
    if not value:
        return None
    return hashlib.sha256(value.encode()).hexdigest()[:32]


@cache
def disposable_domains() -> frozenset[str]:
    text = files("referrals.domain").joinpath("data/disposable_domains.txt").read_text()
    lines = (line.strip().casefold() for line in text.splitlines())
    return frozenset(line for line in lines if line and not line.startswith("#"))


def is_disposable(email: str) -> bool:
    domain = email.rpartition("@")[2].casefold()
    parts = domain.split(".")
    # A subdomain of a disposable domain is disposable too.
    return any(".".join(parts[i:]) in disposable_domains() for i in range(len(parts) - 1))


def signup_checks(
    enabled: FraudChecks,
    referrer: Referrer,
    email: str | None,
    ip_hash: str | None,
    device_hash: str | None,
) -> list[Check]:
    """The checks that need nothing but the signup and its referrer."""
    checks = []
    if enabled.email_alias and email and referrer.email:
        alias = normalize_email(email) == normalize_email(referrer.email)
        detail = "the referee's address reaches the referrer's mailbox" if alias else ""
        checks.append(Check(EMAIL_ALIAS, not alias, detail))
    if enabled.disposable_email and email:
        disposable = is_disposable(email)
        detail = f"{email.rpartition('@')[2].casefold()} is a disposable domain"
        checks.append(Check(DISPOSABLE_EMAIL, not disposable, detail if disposable else ""))
    if enabled.same_device and (ip_hash or device_hash):
        same = [
            name
            for name, mine, theirs in (
                ("IP address", ip_hash, referrer.ip_hash),
                ("device", device_hash, referrer.device_hash),
            )
            if mine and mine == theirs
        ]
        detail = f"same {' and '.join(same)} as the referrer" if same else ""
        checks.append(Check(SAME_DEVICE, not same, detail))
    return checks


def velocity_check(limit: int, earlier: Referral | None, now: datetime) -> Check:
    """`earlier` is the referrer's referral `limit` before this one: if it came within
    the window, this is one referral more than `limit` in it."""
    fast = earlier is not None and earlier.created_at > now - VELOCITY_WINDOW
    detail = f"more than {limit} referrals for this referrer within an hour" if fast else ""
    return Check(VELOCITY, not fast, detail)
