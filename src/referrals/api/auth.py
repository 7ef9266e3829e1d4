"""Bearer API keys with two roles: `ingest` enrolls and signs up, `admin` does everything."""

import time
from collections.abc import Callable

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from referrals.api.problems import ApiError
from referrals.bootstrap import Services
from referrals.domain.model import ApiKey, Role
from referrals.services.keys import authenticate, hash_key

bearer = HTTPBearer(auto_error=False, description="An API key from `referrals keys create`.")


class KeyCache:
    """Keys verified in the last `ttl` seconds, so a request skips the database read.

    Keys cannot be revoked yet; revocation will have to clear this cache (or the
    TTL bounds how long a revoked key keeps working). Failures are not cached.
    """

    def __init__(self, ttl: float = 60.0, size: int = 1024) -> None:
        self.ttl = ttl
        self.size = size
        self._entries: dict[str, tuple[ApiKey, float]] = {}

    def get(self, plaintext: str, load: Callable[[], ApiKey | None]) -> ApiKey | None:
        digest = hash_key(plaintext)  # the plaintext itself is never kept
        now = time.monotonic()
        hit = self._entries.get(digest)
        if hit is not None and hit[1] > now:
            return hit[0]
        key = load()
        if key is not None:
            if len(self._entries) >= self.size:
                self._entries.clear()
            self._entries[digest] = (key, now + self.ttl)
        return key


def services(request: Request) -> Services:
    app_services: Services = request.app.state.services
    return app_services


def require(*roles: Role) -> Callable[..., ApiKey]:
    """A dependency that admits keys of `roles` (admin is always admitted)."""
    allowed = {Role.ADMIN, *roles}

    def dependency(
        request: Request, credentials: HTTPAuthorizationCredentials | None = Depends(bearer)
    ) -> ApiKey:
        if credentials is None:
            raise ApiError("unauthorized", "an API key is required: Authorization: Bearer <key>")
        plaintext = credentials.credentials
        cache: KeyCache = request.app.state.key_cache
        key = cache.get(plaintext, lambda: authenticate(services(request).store, plaintext))
        if key is None:
            raise ApiError("unauthorized", "the API key is not valid")
        if key.role not in allowed:
            raise ApiError("forbidden", f"a {key.role} key may not do this")
        return key

    return dependency


admin = require(Role.ADMIN)
ingest = require(Role.INGEST)
