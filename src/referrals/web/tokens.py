"""Signed tokens handed to browsers: the dashboard's session cookie and CSRF token, and the
referrer portal's link.

Each is signed by itsdangerous under a key and salt of its own purpose
(`derived_keys`), so a value signed for one is refused as any other. Expiry is a claim
of the token, checked on the service's clock, rather than itsdangerous' own timestamp:
a link's lifetime is chosen per link, and a session ends with its key when that comes
first. A token that does not verify, has expired or is not of the expected shape is
simply not one: the functions answer None (or False), never raise.

- Session: `{"k": key id, "s": session id, "e": expires}`. It names the admin key that
  signed in, never the key itself. The session id is random: it makes each sign-in's
  token, and so its CSRF token, unique, and names the server's record of the session
  (`services.sessions`), which a valid signature alone does not replace: signing out
  or revoking the key ends the session there.
- CSRF token: the signature of the session id under the CSRF purpose, so only a page
  of the session has it.
- Portal link: `{"u": user id, "c": code, "e": expires}` (`domain.links.LinkClaims`).
"""

import hmac
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from itsdangerous import BadData

from referrals.config import Settings
from referrals.derived_keys import (
    DASHBOARD_CSRF,
    DASHBOARD_SESSION,
    PORTAL_LINK,
    serializer,
    signer,
)
from referrals.domain.links import LinkClaims

# Far longer than any token of ours (a 128-character user id and a 32-character code make
# a link's about 300 characters): a bound on the work an anonymous request can cause.
MAX_TOKEN = 1024
_LAST_SECOND = 253_402_300_799  # 9999-12-31T23:59:59Z: any later expiry overflows a datetime


@dataclass(frozen=True, slots=True)
class Session:
    key_id: str  # the admin key that signed in: the actor of what the session does
    expires_at: datetime
    token: str
    id: str  # the server's record of it


def issue_session(
    settings: Settings, key_id: str, now: datetime, until: datetime | None = None
) -> Session:
    """A new session for `key_id`, valid for `settings.dashboard_session_seconds`, or
    until `until` (the key's expiry) if that comes first; in whole seconds."""
    expires = int(now.timestamp()) + settings.dashboard_session_seconds
    if until is not None:
        expires = min(expires, int(until.timestamp()))
    session_id = secrets.token_urlsafe(12)
    token = serializer(settings, DASHBOARD_SESSION).dumps(
        {"k": key_id, "s": session_id, "e": expires}
    )
    return Session(key_id, datetime.fromtimestamp(expires, UTC), token, session_id)


def verify_session(settings: Settings, token: str | None, now: datetime) -> Session | None:
    """The session of a valid, unexpired token; None for anything else."""
    if token is None or (claims := _load(settings, DASHBOARD_SESSION, token, now)) is None:
        return None
    key_id, session_id = claims.get("k"), claims.get("s")
    if not (isinstance(key_id, str) and key_id and isinstance(session_id, str)):
        return None
    return Session(key_id, datetime.fromtimestamp(claims["e"], UTC), token, session_id)


def csrf_token(settings: Settings, session: Session) -> str:
    """The token every form of the session carries."""
    return signer(settings, DASHBOARD_CSRF).get_signature(session.id).decode()


def csrf_valid(settings: Settings, session: Session, token: str | None) -> bool:
    if not token or len(token) > MAX_TOKEN or not token.isascii():
        return False
    # Compared as issued, in constant time: not decoded, which would take other spellings.
    return hmac.compare_digest(token, csrf_token(settings, session))


def sign_link(settings: Settings, claims: LinkClaims) -> str:
    """The token of a portal link: it opens `claims.user_id`'s page until `claims.expires_at`."""
    return serializer(settings, PORTAL_LINK).dumps(
        {"u": claims.user_id, "c": claims.code, "e": claims.expires_at}
    )


def verify_link(settings: Settings, token: str | None, now: datetime) -> LinkClaims | None:
    """The claims of a valid, unexpired portal link token; None for anything else."""
    if (claims := _load(settings, PORTAL_LINK, token, now)) is None:
        return None
    user_id, code = claims.get("u"), claims.get("c")
    if not (isinstance(user_id, str) and isinstance(code, str)):
        return None
    return LinkClaims(user_id, code, claims["e"])


def _load(
    settings: Settings, purpose: bytes, token: str | None, now: datetime
) -> dict[str, Any] | None:
    """The claims of `token` if it is signed for `purpose` and has not expired at `now`;
    None otherwise. Only a payload this app signed is decoded."""
    if not token or len(token) > MAX_TOKEN or not token.isascii():
        return None
    signed = serializer(settings, purpose)
    try:
        claims = signed.loads(token)
    except BadData:  # a bad signature, or (signed by another version) a bad payload
        return None
    # itsdangerous decodes base64 leniently (padding, the +/ alphabet, spare bits): only
    # the spelling this app issues is taken, so a token is one string, not several.
    if not isinstance(claims, dict) or signed.dumps(claims) != token:
        return None
    expires = claims.get("e")
    # bool is an int subclass, and no expiry.
    if type(expires) is not int or not 0 < expires <= _LAST_SECOND:
        return None
    return claims if now.timestamp() < expires else None
