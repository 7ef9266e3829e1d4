"""Keys for what the app signs or keys (portal links, dashboard sessions, IP and device
fingerprints), one per purpose.

Each key is HMAC-SHA256(secret, purpose), so a value signed for one purpose (a
dashboard session cookie) never verifies as another (a portal link), although all
come from the one `secret_key`: the configured setting, or the secret the service
keeps in its store when none is configured (bootstrap puts it in the settings).
"""

import functools
import hashlib
import hmac
import logging
import secrets

from referrals.config import Settings

logger = logging.getLogger("referrals.keys")

# Every purpose in use, distinct: two signers sharing a label could forge each other's values.
PORTAL_LINK = b"portal-link"
DASHBOARD_SESSION = b"dashboard-session"
FINGERPRINT = b"fingerprint"


def secret_for(settings: Settings, purpose: bytes) -> bytes:
    """The key for `purpose`, derived from `settings.secret_key`.

    Settings built by `bootstrap.build` always carry one (configured, or kept in the
    store). Without one (settings made by hand, in tests), a random secret drawn once
    per process stands in: what it signs is valid only in this process.
    """
    secret = settings.secret_key.encode() if settings.secret_key else _process_secret()
    return hmac.new(secret, purpose, hashlib.sha256).digest()


@functools.cache
def _process_secret() -> bytes:
    logger.warning("no secret_key is set: what is signed is valid in this process only")
    return secrets.token_bytes(32)
