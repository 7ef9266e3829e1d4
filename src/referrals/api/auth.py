"""Bearer API keys with two roles: `ingest` enrolls and signs up, `admin` does everything."""

import time
from collections.abc import Awaitable, Callable

from fastapi import Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from referrals.api.deps import services
from referrals.api.problems import ApiError
from referrals.api.ratelimits import refuse_unauthenticated
from referrals.domain.model import ApiKey, Role
from referrals.services.keys import LAST_USED_RESOLUTION, find_key, hash_key, record_use

bearer = HTTPBearer(auto_error=False, description="An API key from `referrals keys create`.")


class KeyCache:
    """Keys read in the last `ttl` seconds, by hash, so most requests skip the database.

    A revocation must hold on every server within a second, and servers share nothing
    but the database: so an entry lives half a second, and a server reads a busy key
    at most twice a second (docs/decisions/api-key-cache.md). Expiry needs no read: it
    is checked on the cached key at each use. A hash the database does not know is not
    cached. This server's own revocations clear it at once.
    """

    def __init__(self, ttl: float = 0.5, size: int = 1024) -> None:
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

    def update(self, digest: str, key: ApiKey) -> None:
        """Replace a cached key (its last use noted) without extending its life."""
        hit = self._entries.get(digest)
        if hit is not None:
            self._entries[digest] = (key, hit[1])

    def clear(self) -> None:
        self._entries.clear()


def require(*roles: Role) -> Callable[..., Awaitable[ApiKey]]:
    """A dependency that admits keys of `roles` (admin is always admitted).

    `async`, as every dependency that does not block: the store is read in a worker
    thread only when the key is not cached, or its last use is to be noted."""
    allowed = {Role.ADMIN, *roles}

    async def dependency(
        request: Request, credentials: HTTPAuthorizationCredentials | None = Depends(bearer)
    ) -> ApiKey:
        if credentials is None:
            await refuse_unauthenticated(
                request, "an API key is required: Authorization: Bearer <key>"
            )
        cache: KeyCache = request.app.state.key_cache
        svc = await services(request)
        digest = hash_key(credentials.credentials)  # the plaintext itself is never kept
        key = cache.get(digest)
        if key is None:
            key = await run_in_threadpool(find_key, svc.store, credentials.credentials)
            if key is None:
                await refuse_unauthenticated(request, "the API key is not valid")
            cache.put(digest, key)
        now = svc.clock.now()
        if not key.active(now):
            await refuse_unauthenticated(request, f"the API key is {key.state(now)}")
        if key.last_used_at is None or now - key.last_used_at >= LAST_USED_RESOLUTION:
            key = await run_in_threadpool(record_use, svc.store, svc.clock, key)
            cache.update(digest, key)
        if key.role not in allowed:
            raise ApiError("forbidden", f"an {key.role} key may not do this")
        return key

    return dependency


admin = require(Role.ADMIN)
ingest = require(Role.INGEST)
