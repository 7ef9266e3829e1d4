"""Signed, expiring links: a referrer opens their portal page with one, no account needed.

A token is `base64url(payload) "." base64url(HMAC-SHA256(key, base64url(payload)))`,
the payload a small JSON object: the user id, their code and the expiry (unix seconds).
The key is one derived for this purpose only (see `referrals.derived_keys`), so nothing
else the app signs verifies as a link.
"""

import base64
import hashlib
import hmac
import json
import re
from dataclasses import dataclass
from datetime import datetime

from referrals.domain.errors import DomainError

# Far longer than any real token (a 128-character user id and a 32-character code make
# about 300 characters): a bound on the work an anonymous request can cause.
MAX_TOKEN_LENGTH = 1024
_LAST_SECOND = 253_402_300_799  # 9999-12-31T23:59:59Z: any later expiry overflows a datetime
# The payload, a dot, and the signature: 32 bytes are 43 characters of unpadded base64url.
_TOKEN = re.compile(r"([A-Za-z0-9_-]+)\.([A-Za-z0-9_-]{43})")


class InvalidLink(DomainError):
    """Refused whatever the reason (malformed, forged, expired), with one answer: 403."""

    code = "forbidden"


@dataclass(frozen=True, slots=True)
class LinkClaims:
    user_id: str
    code: str
    expires_at: int  # unix seconds: the link opens nothing from this second on


def sign(key: bytes, claims: LinkClaims) -> str:
    payload = json.dumps(
        {"u": claims.user_id, "c": claims.code, "e": claims.expires_at},
        separators=(",", ":"),
        sort_keys=True,
    )
    body = _encode(payload.encode())
    return f"{body}.{_signature(key, body)}"


def verify(key: bytes, token: str, now: datetime) -> LinkClaims:
    """The claims of a token signed with `key` that has not expired at `now`.

    Raises InvalidLink, and nothing else, for any other input.
    """
    if not isinstance(token, str) or len(token) > MAX_TOKEN_LENGTH:
        raise InvalidLink("the link is not valid")
    match = _TOKEN.fullmatch(token)
    if match is None:
        raise InvalidLink("the link is not valid")
    body, signature = match.groups()
    # Compared as the canonical encoding, not decoded bytes: base64 has spare bits, and a
    # signature differing only in them would otherwise verify.
    if not hmac.compare_digest(_signature(key, body).encode(), signature.encode()):
        raise InvalidLink("the link is not valid")
    claims = _claims(body)  # only a payload this app signed is ever parsed
    if now.timestamp() >= claims.expires_at:
        raise InvalidLink("the link has expired")
    return claims


def _claims(body: str) -> LinkClaims:
    try:
        data = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    except (ValueError, RecursionError):  # binascii, Unicode and JSON errors are ValueErrors
        raise InvalidLink("the link is not valid") from None
    if not isinstance(data, dict):
        raise InvalidLink("the link is not valid")
    user_id, code, expires_at = data.get("u"), data.get("c"), data.get("e")
    if not (isinstance(user_id, str) and isinstance(code, str)):
        raise InvalidLink("the link is not valid")
    # bool is an int subclass, and no expiry.
    if type(expires_at) is not int or not 0 < expires_at <= _LAST_SECOND:
        raise InvalidLink("the link is not valid")
    return LinkClaims(user_id, code, expires_at)


def _signature(key: bytes, body: str) -> str:
    return _encode(hmac.new(key, body.encode(), hashlib.sha256).digest())


def _encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")
