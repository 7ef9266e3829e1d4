"""Fraud checks on a signup. They flag rather than block: a failed check holds the reward
for review, so a false positive costs a review, never a lost signup."""

import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from functools import cache
from importlib.resources import files

from referrals.domain.model import Check, Referral, Referrer

EMAIL_ALIAS = "email_alias"
DISPOSABLE_EMAIL = "disposable_email"
SAME_DEVICE = "same_device"
VELOCITY = "velocity"
VELOCITY_WINDOW = timedelta(hours=1)
_CHECK_NAMES = frozenset({EMAIL_ALIAS, DISPOSABLE_EMAIL, SAME_DEVICE, VELOCITY})

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


class CheckMode(StrEnum):
    OFF = "off"  # not run
    SHADOW = "shadow"  # run, its verdict kept on the receipt, the reward never held for it
    HOLD = "hold"  # run, and a failure holds the reward for review


@dataclass(frozen=True, slots=True)
class FraudChecks:
    """Each check's mode. Shadow mode lets an operator see what a check would flag
    (its precision against the reviews) before it holds anyone's reward."""

    email_alias: CheckMode = CheckMode.HOLD
    disposable_email: CheckMode = CheckMode.HOLD
    same_device: CheckMode = CheckMode.HOLD  # the referee's IP or device is the referrer's
    velocity: CheckMode = CheckMode.HOLD
    velocity_per_hour: int = 0  # flag beyond this many referrals an hour per referrer; 0: off

    def to_dict(self) -> dict[str, object]:
        return {
            EMAIL_ALIAS: self.email_alias.value,
            DISPOSABLE_EMAIL: self.disposable_email.value,
            SAME_DEVICE: self.same_device.value,
            VELOCITY: self.velocity.value,
            "velocity_per_hour": self.velocity_per_hour,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, object]) -> "FraudChecks":
        modes = {
            name: CheckMode(str(data[name]))
            for name in (EMAIL_ALIAS, DISPOSABLE_EMAIL, SAME_DEVICE, VELOCITY)
            if name in data
        }
        per_hour = data.get("velocity_per_hour", 0)
        return cls(**modes, velocity_per_hour=int(per_hour))  # type: ignore[call-overload]

    def mode_of(self, name: str) -> CheckMode:
        """The mode of the check called `name`; OFF for a name it does not know (a
        verdict recorded by a check since retired judges nothing)."""
        mode = getattr(self, name, None) if name in _CHECK_NAMES else None
        return mode if isinstance(mode, CheckMode) else CheckMode.OFF

    @property
    def velocity_runs(self) -> bool:
        return self.velocity is not CheckMode.OFF and self.velocity_per_hour > 0


def normalize_email(email: str) -> str:
    """The mailbox an address delivers to, as far as its provider's rules are known."""
    local, _, domain = email.casefold().rpartition("@")
    domain = _SAME_MAILBOX.get(domain, domain)
    if domain in _PLUS_TAGS:
        local = local.split("+", 1)[0]
    if domain in _DOTS_IGNORED:
        local = local.replace(".", "")
    return f"{local}@{domain}"


# A keyed fingerprint starts with this: it tells it from the unkeyed ones stored
# before fingerprints were keyed (32 hex digits), and leaves room for another scheme.
KEYED = "k1:"


def fingerprint(key: bytes, value: str | None) -> str | None:
    """What is stored of an IP address or device id: enough to compare, not to read back.

    An HMAC-SHA256 under `key` (a key for this purpose only, derived from the
    service's secret), truncated to 128 bits. Unkeyed, every IPv4 address is hashed
    in about 90 minutes of one core (a list of device ids, faster), which reads
    every stored hash back; keyed, nothing can be tried without the key.
    """
    if not value:
        return None
    return KEYED + hmac.new(key, value.encode(), hashlib.sha256).hexdigest()[:32]


def unkeyed_fingerprint(value: str) -> str:
    """The fingerprint stored before they were keyed (sha256, readable back by brute
    force): compared with those still stored, never stored again."""
    return hashlib.sha256(value.encode()).hexdigest()[:32]


@dataclass(frozen=True, slots=True)
class Fingerprint:
    """An IP address or device id as a signup brings it, to store and to compare."""

    stored: str  # keyed: what is kept of it
    unkeyed: str  # compared only with a referrer's fingerprint stored before keying

    def matches(self, kept: str | None) -> bool:
        if kept is None:
            return False
        return kept == (self.stored if kept.startswith(KEYED) else self.unkeyed)


@dataclass(frozen=True, slots=True)
class Fingerprints:
    """Fingerprints under one key: the service's, derived for this purpose."""

    key: bytes = field(repr=False)

    def __call__(self, value: str | None) -> Fingerprint | None:
        stored = fingerprint(self.key, value)
        if stored is None or value is None:
            return None
        return Fingerprint(stored, unkeyed_fingerprint(value))


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
    ip: Fingerprint | None,
    device: Fingerprint | None,
) -> list[Check]:
    """The checks that need nothing but the signup and its referrer."""
    checks = []
    if enabled.email_alias is not CheckMode.OFF and email and referrer.email:
        alias = normalize_email(email) == normalize_email(referrer.email)
        detail = "the referee's address reaches the referrer's mailbox" if alias else ""
        checks.append(verdict(enabled.email_alias, EMAIL_ALIAS, not alias, detail))
    if enabled.disposable_email is not CheckMode.OFF and email:
        disposable = is_disposable(email)
        detail = f"{email.rpartition('@')[2].casefold()} is a disposable domain"
        checks.append(
            verdict(
                enabled.disposable_email,
                DISPOSABLE_EMAIL,
                not disposable,
                detail if disposable else "",
            )
        )
    if enabled.same_device is not CheckMode.OFF and (ip or device):
        same = [
            name
            for name, mine, theirs in (
                ("IP address", ip, referrer.ip_hash),
                ("device", device, referrer.device_hash),
            )
            if mine is not None and mine.matches(theirs)
        ]
        detail = f"same {' and '.join(same)} as the referrer" if same else ""
        checks.append(verdict(enabled.same_device, SAME_DEVICE, not same, detail))
    return checks


def verdict(mode: CheckMode, name: str, passed: bool, detail: str) -> Check:
    return Check(name, passed, detail, shadow=mode is CheckMode.SHADOW)


def velocity_check(
    limit: int, earlier: Referral | None, now: datetime, mode: CheckMode = CheckMode.HOLD
) -> Check:
    """`earlier` is the referrer's referral `limit` before this one: if it came within
    the window, this is one referral more than `limit` in it."""
    fast = earlier is not None and earlier.created_at > now - VELOCITY_WINDOW
    detail = f"more than {limit} referrals for this referrer within an hour" if fast else ""
    return verdict(mode, VELOCITY, not fast, detail)
