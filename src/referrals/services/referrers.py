"""Enrolling referrers."""

from dataclasses import dataclass

from referrals.domain.checks import Fingerprint, Fingerprints
from referrals.domain.codes import generate_code, is_valid_code, is_valid_user_id, normalize_code
from referrals.domain.errors import (
    CodeTaken,
    InvalidInput,
    ProgramArchived,
    ProgramNotFound,
    ReferrerExists,
)
from referrals.domain.model import DEFAULT_PROGRAM, Referrer
from referrals.domain.program import ProgramStatus
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
    program: str = DEFAULT_PROGRAM,
) -> Enrollment:
    """Make `user_id` a referrer of `program` with a generated or vanity code (codes
    are unique across programs: a signup finds the program by its code).

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
            existing = uow.referrers.get(user_id, program=program)
            if existing is not None:
                if code is not None and normalize_code(code) != normalize_code(existing.code):
                    raise ReferrerExists(f"{user_id} is already a referrer with another code")
                return Enrollment(existing, created=False)
            _require_open(uow, program)
            if code is not None and uow.referrers.by_code(code) is not None:
                raise CodeTaken(f"the code {code} is taken")
            referrer = add_referrer(
                uow, clock, user_id, email, ip_hash, device_hash, code, program=program
            )
            uow.commit()
            return Enrollment(referrer, created=True)

    return retry_on_conflict(attempt)


def _require_open(uow: UnitOfWork, program_id: str) -> None:
    """A program takes new referrers unless archived. The default program always
    exists (it is made on first need, see services.programs), so it is not read."""
    if program_id == DEFAULT_PROGRAM:
        return
    program = uow.programs.get(program_id)
    if program is None:
        raise ProgramNotFound(f"no program has the id {program_id!r}")
    if program.status is ProgramStatus.ARCHIVED:
        raise ProgramArchived(f"program {program_id!r} is archived")


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
    *,
    program: str = DEFAULT_PROGRAM,
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
        program_id=program,
    )
    uow.referrers.add(referrer)
    return referrer
