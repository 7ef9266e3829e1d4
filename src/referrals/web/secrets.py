"""Keys for the things the app signs (portal links, dashboard sessions), one per purpose.

Each key is HMAC-SHA256(secret, purpose), so a value signed for one purpose (a
dashboard session cookie) never verifies as another (a portal link), although both
come from the one `secret_key` setting.
"""

import functools
import hashlib
import hmac
import logging
import secrets

from referrals.config import Settings

logger = logging.getLogger("referrals.web")

# Every purpose in use, distinct: two signers sharing a label could forge each other's values.
PORTAL_LINK = b"portal-link"
DASHBOARD_SESSION = b"dashboard-session"


def secret_for(settings: Settings, purpose: bytes) -> bytes:
    """The signing key for `purpose`, derived from `settings.secret_key`.

    Without a secret key (an app built in tests, or a Lambda with none configured),
    a random secret drawn once per process stands in: what it signs is valid only in
    this process and until it ends. `referrals serve` draws one and hands it to its
    workers, so they agree.
    """
    secret = settings.secret_key.encode() if settings.secret_key else _process_secret()
    return hmac.new(secret, purpose, hashlib.sha256).digest()


@functools.cache
def _process_secret() -> bytes:
    logger.warning("no secret_key is set: portal links and sessions are valid in this process only")
    return secrets.token_bytes(32)
