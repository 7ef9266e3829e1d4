"""Bearer API keys with two roles: `ingest` enrolls and signs up, `admin` does everything."""

import time
from collections.abc import Awaitable, Callable

from fastapi import Depends, Request
from fastapi.concurrency import run_in_threadpool
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

    def get(self, digest: str) -> ApiKey | None:
        hit = self._entries.get(digest)
        return hit[0] if hit is not None and hit[1] > time.monotonic() else None

    def put(self, digest: str, key: ApiKey) -> None:
        if len(self._entries) >= self.size:
            self._entries.clear()
        self._entries[digest] = (key, time.monotonic() + self.ttl)


# Dependencies that do not block are `async`: FastAPI runs a plain `def` one in
# its thread pool, and each such hop cost a signup more than its SQL did.
async def services(request: Request) -> Services:
    app_services: Services = request.app.state.services
    return app_services


def require(*roles: Role) -> Callable[..., Awaitable[ApiKey]]:
    """A dependency that admits keys of `roles` (admin is always admitted)."""
    allowed = {Role.ADMIN, *roles}

    async def dependency(
        request: Request, credentials: HTTPAuthorizationCredentials | None = Depends(bearer)
    ) -> ApiKey:
        if credentials is None:
            raise ApiError("unauthorized", "an API key is required: Authorization: Bearer <key>")
        cache: KeyCache = request.app.state.key_cache
        digest = hash_key(credentials.credentials)  # the plaintext itself is never kept
        key = cache.get(digest)
        if key is None:
            store = (await services(request)).store
            key = await run_in_threadpool(authenticate, store, credentials.credentials)
            if key is None:
                raise ApiError("unauthorized", "the API key is not valid")
            cache.put(digest, key)
        if key.role not in allowed:
            raise ApiError("forbidden", f"an {key.role} key may not do this")
        return key

    return dependency


admin = require(Role.ADMIN)
ingest = require(Role.INGEST)
