"""The claims of a referrer portal link, and the error of a refused one; the token
itself is signed and read by `web.tokens`."""

from dataclasses import dataclass

from referrals.domain.errors import DomainError


class InvalidLink(DomainError):
    """Refused whatever the reason (malformed, forged, expired), with one answer: 403."""

    code = "forbidden"


@dataclass(frozen=True, slots=True)
class LinkClaims:
    user_id: str
    code: str
    expires_at: int  # unix seconds: the link opens nothing from this second on
