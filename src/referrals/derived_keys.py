"""Keys for what the app signs or keys (portal links, dashboard sessions and their CSRF
tokens, IP and device fingerprints), one per purpose.

Each key is HMAC-SHA256(secret, purpose), so a value signed for one purpose (a
dashboard session cookie) never verifies as another (a portal link), although all
come from the one `secret_key`: the configured setting, or the secret the service
keeps in its store when none is configured (bootstrap puts it in the settings).

Signed values go through itsdangerous: `serializer` and `signer` give it the secret
with the purpose as salt, and its "hmac" key derivation makes that same key.
"""

import functools
import hashlib
import hmac
import logging
import secrets
from typing import Any

from itsdangerous import Signer, URLSafeSerializer

from referrals.config import Settings

logger = logging.getLogger("referrals.keys")

# Every purpose in use, distinct: two signers sharing a label could forge each other's values.
PORTAL_LINK = b"portal-link"
DASHBOARD_SESSION = b"dashboard-session"
DASHBOARD_CSRF = b"dashboard-csrf"
FINGERPRINT = b"fingerprint"

# itsdangerous derives its key as HMAC-SHA256(secret, salt): `secret_for`'s, and signs with it.
_SIGNING: dict[str, Any] = {"key_derivation": "hmac", "digest_method": hashlib.sha256}


def secret_for(settings: Settings, purpose: bytes) -> bytes:
    """The key for `purpose`, derived from `settings.secret_key`.

    Settings built by `bootstrap.build` always carry one (configured, or kept in the
    store). Without one (settings made by hand, in tests), a random secret drawn once
    per process stands in: what it signs is valid only in this process.
    """
    return hmac.new(_secret(settings), purpose, hashlib.sha256).digest()


def serializer(settings: Settings, purpose: bytes) -> URLSafeSerializer:
    """Signs JSON values for `purpose` into URL-safe tokens, under `secret_for`'s key."""
    return URLSafeSerializer(_secret(settings), salt=purpose, signer_kwargs=_SIGNING)


def signer(settings: Settings, purpose: bytes) -> Signer:
    """Signs strings for `purpose`, under `secret_for`'s key."""
    return Signer(_secret(settings), salt=purpose, **_SIGNING)


def _secret(settings: Settings) -> bytes:
    return settings.secret_key.encode() if settings.secret_key else _process_secret()


@functools.cache
def _process_secret() -> bytes:
    logger.warning("no secret_key is set: what is signed is valid in this process only")
    return secrets.token_bytes(32)
