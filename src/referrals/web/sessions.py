"""Dashboard sessions: signed, expiring tokens in a cookie, and the CSRF tokens derived from them.

A session token is `<key id>.<expires, epoch seconds>.<session id>.<signature>`: it
names the admin key that signed in, never the key itself, and the signature is an
HMAC-SHA256 under a key derived for this purpose only (`derived_keys`), so nothing
else the app signs (a portal link) can be replayed as a session. The session id is
random: it makes each sign-in's token, and so its CSRF token, unique, and names the
server's record of the session (`services.sessions`), which a valid signature
alone does not replace: signing out or revoking the key ends the session there.
"""

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from referrals.config import Settings
from referrals.derived_keys import DASHBOARD_SESSION, secret_for

MAX_TOKEN = 256  # longer is not one of ours: refused before any work
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class Session:
    key_id: str  # the admin key that signed in: the actor of what the session does
    expires_at: datetime
    token: str
    id: str  # the server's record of it


def _mac(settings: Settings, label: bytes, message: str) -> str:
    # One key per purpose, and a label per use of it: a CSRF token is never a signature.
    digest = hmac.new(
        secret_for(settings, DASHBOARD_SESSION), label + message.encode(), hashlib.sha256
    ).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def issue(settings: Settings, key_id: str, now: datetime, until: datetime | None = None) -> Session:
    """A new session for `key_id`, valid for `settings.dashboard_session_seconds`, or
    until `until` (the key's expiry) if that comes first."""
    expires = (now - _EPOCH) // timedelta(seconds=1) + settings.dashboard_session_seconds
    if until is not None:
        expires = min(expires, (until - _EPOCH) // timedelta(seconds=1))
    session_id = secrets.token_urlsafe(12)
    payload = f"{key_id}.{expires}.{session_id}"
    token = f"{payload}.{_mac(settings, b'session:', payload)}"
    return Session(key_id, datetime.fromtimestamp(expires, UTC), token, session_id)


def verify(settings: Settings, token: str | None, now: datetime) -> Session | None:
    """The session of a valid, unexpired token; None for anything else."""
    if not token or len(token) > MAX_TOKEN or not token.isascii():
        return None
    payload, _, signature = token.rpartition(".")
    if not hmac.compare_digest(signature, _mac(settings, b"session:", payload)):
        return None
    parts = payload.split(".")
    if len(parts) != 3 or not parts[0] or not parts[1].isdigit():
        return None
    key_id, expires, session_id = parts
    expires_at = datetime.fromtimestamp(int(expires), UTC)
    return Session(key_id, expires_at, token, session_id) if expires_at > now else None


def csrf_token(settings: Settings, session: Session) -> str:
    """The token every form of the session carries: only a page of the session has it."""
    return _mac(settings, b"csrf:", session.token)


def csrf_valid(settings: Settings, session: Session, token: str | None) -> bool:
    if not token or len(token) > MAX_TOKEN or not token.isascii():
        return False
    return hmac.compare_digest(token, csrf_token(settings, session))
