"""Enrolling referrers."""

from dataclasses import dataclass

from referrals.domain.checks import Fingerprint, Fingerprints
from referrals.domain.codes import generate_code, is_valid_code, is_valid_user_id, normalize_code
from referrals.domain.errors import CodeTaken, InvalidInput, ReferrerExists
from referrals.domain.model import Referrer
from referrals.ports import Clock, Store, UnitOfWork
from referrals.services.retry import retry_on_conflict


@dataclass(frozen=True, slots=True)
class Enrollment:
    referrer: Referrer
    created: bool


def enroll(
    store: Store,
    clock: Clock,
    user_id: str,
    email: str | None = None,
    code: str | None = None,
    ip: str | None = None,
    device_id: str | None = None,
    *,
    fingerprints: Fingerprints | None = None,
) -> Enrollment:
    """Make `user_id` a referrer with a generated or vanity code.

    `ip` and `device_id`, if given, are kept as keyed `fingerprints` (required
    then): a referee signing up from the same one is flagged for review.

    Idempotent: enrolling the same user again returns the existing referrer,
    unless a different code is asked for (ReferrerExists).
    """
    if not is_valid_user_id(user_id):
        raise InvalidInput("user_id must be 1-128 characters of [A-Za-z0-9._:@+-]")
    if code is not None and not is_valid_code(code):
        raise InvalidInput("code must be 3-32 characters of [A-Za-z0-9_-]")
    ip_hash, device_hash = (stored(f) for f in fingerprints_of(fingerprints, ip, device_id))

    def attempt() -> Enrollment:
        with store.unit_of_work() as uow:
            existing = uow.referrers.get(user_id)
            if existing is not None:
                if code is not None and normalize_code(code) != normalize_code(existing.code):
                    raise ReferrerExists(f"{user_id} is already a referrer with another code")
                return Enrollment(existing, created=False)
            if code is not None and uow.referrers.by_code(code) is not None:
                raise CodeTaken(f"the code {code} is taken")
            referrer = add_referrer(uow, clock, user_id, email, ip_hash, device_hash, code)
            uow.commit()
            return Enrollment(referrer, created=True)

    return retry_on_conflict(attempt)


def fingerprints_of(
    fingerprints: Fingerprints | None, ip: str | None, device_id: str | None
) -> tuple[Fingerprint | None, Fingerprint | None]:
    """The fingerprints of `ip` and `device_id`; nothing of them is kept unkeyed."""
    if fingerprints is None:
        if ip or device_id:
            raise ValueError("an IP address or device id needs the service's fingerprints")
        return None, None
    return fingerprints(ip), fingerprints(device_id)


def stored(fingerprint: Fingerprint | None) -> str | None:
    return fingerprint.stored if fingerprint is not None else None


def add_referrer(
    uow: UnitOfWork,
    clock: Clock,
    user_id: str,
    email: str | None,
    ip_hash: str | None = None,
    device_hash: str | None = None,
    code: str | None = None,
) -> Referrer:
    """Insert a referrer with `code`, or a freshly drawn one.

    A drawn code is not looked up first: collisions of 8-character codes are
    rare (32^8 ≈ 10^12), and the store's unique key turns one into a Conflict,
    which the use case's retry answers with a fresh draw.
    """
    referrer = Referrer(
        user_id,
        code or generate_code(),
        email,
        referral_count=0,
        created_at=clock.now(),
        ip_hash=ip_hash,
        device_hash=device_hash,
    )
    uow.referrers.add(referrer)
    return referrer
