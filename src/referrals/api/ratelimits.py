"""Rate limits per client address: on failed authentication, and on the public routes.

A request with a bad API key costs a database read (keys are found by their hash),
and the public routes answer anyone; without limits, a client sending bad keys or
opening pages as fast as it can keeps the database busy. Both limits count in fixed
windows of `rate_limit_window_seconds`; past a limit the address gets a 429
`rate_limited` problem with `Retry-After` until its window ends: a short penalty,
bounded by the window.

- Failed authentication (a missing or invalid API key, dashboard sign-in key or
  portal link token) is counted in this process and in the store, which all servers
  share: one small write per failure, nothing per success. Once an address has
  `auth_failure_limit` failures in a window, this process refuses all its requests
  (but `/healthz` and `/livez`) before anything reads the database, and so does every other
  server from the first failure of that address it sees. If the store cannot take
  the write, this process's own count still holds.
- The public routes (`PUBLIC`: docs, readiness, the dashboard's sign-in, portal
  pages), `/healthz` and `/livez` excepted, are limited to `public_rate_limit` requests a window
  per address, counted by each process in memory: they are cheap enough that a
  write each would cost more than what it protects.

The client address is the ASGI client. Behind a proxy or load balancer that is the
proxy, unless uvicorn trusts its `X-Forwarded-For` (it does from 127.0.0.1; others
with FORWARDED_ALLOW_IPS): otherwise every client shares the proxy's limits. An
IPv6 address counts as its /64, which one client usually holds whole.

Counters are kept for at most MAX_SUBJECTS addresses per process; past that the
oldest windows are forgotten first (the store still counts failures).
"""

import functools
import hashlib
import ipaddress
import logging
import math
import threading
from datetime import datetime, timedelta
from typing import NoReturn

from fastapi import Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from referrals.api.problems import ApiError, problem
from referrals.config import Settings
from referrals.domain.errors import Conflict, DomainError
from referrals.ports import Clock, Store

logger = logging.getLogger("referrals.api")

MAX_SUBJECTS = 10_000
# Routes that need no key. /healthz and /livez are not limited: a balancer's or an
# orchestrator's probe must never be told to back off.
PUBLIC = frozenset(
    {
        "/",
        "/readyz",
        "/docs",
        "/docs/oauth2-redirect",
        "/redoc",
        "/openapi.json",
        "/dashboard/login",
    }
)
PUBLIC_PREFIXES = ("/static-offline-docs/", "/r/")
NEVER_LIMITED = frozenset({"/healthz", "/livez"})
FAILURES = "too many failed authentications from this address"
MAX_ADDRESS = 64  # longer "addresses" (not IP) are kept as a hash


def client_address(scope: Scope) -> str:
    """Who the limits count: the client's IP address, an IPv6 one as its /64."""
    client = scope.get("client")
    return _subject(str(client[0])) if client else "unknown"


@functools.lru_cache(maxsize=4096)  # every request asks; parsing IPv6 took ~25 µs
def _subject(host: str) -> str:
    if ":" in host:
        try:
            address = ipaddress.IPv6Address(host)
        except ValueError:
            pass
        else:
            if address.ipv4_mapped is not None:
                return str(address.ipv4_mapped)
            return str(ipaddress.IPv6Network((int(address), 64), strict=False))
    if len(host) > MAX_ADDRESS:
        return hashlib.sha256(host.encode()).hexdigest()[:32]
    return host or "unknown"


def is_public(path: str) -> bool:
    return path in PUBLIC or path.startswith(PUBLIC_PREFIXES)


def _seconds(delta: timedelta) -> int:
    """A Retry-After value: whole seconds, rounded up, at least 1."""
    return max(1, math.ceil(delta.total_seconds()))


class Windows:
    """Fixed-window counts by subject, in this process's memory, at most `size` of them.

    A subject starting a window is put last, so the first entries are the windows
    that end first: ended ones are dropped from the front as new ones come, and when
    full, the oldest goes.
    """

    def __init__(self, window: timedelta, size: int = MAX_SUBJECTS) -> None:
        self.window = window
        self.size = size
        self._counts: dict[str, tuple[datetime, int]] = {}
        self._lock = threading.Lock()  # routes count from the event loop and threads

    def current(self, subject: str) -> tuple[datetime, int] | None:
        """When `subject`'s last window ends and its count, if it has one (ended or not)."""
        return self._counts.get(subject)

    def hit(self, subject: str, now: datetime) -> tuple[int, datetime]:
        """Count one; the count in the window and when the window ends."""
        with self._lock:
            found = self._counts.get(subject)
            if found is not None and found[0] > now:
                counted = (found[0], found[1] + 1)
                self._counts[subject] = counted
            else:
                counted = (now + self.window, 1)
                self._put(subject, counted, now)
            return counted[1], counted[0]

    def raise_to(self, subject: str, count: int, ends: datetime, now: datetime) -> None:
        """Take a larger count from elsewhere (the store's): `count` until `ends`."""
        with self._lock:
            self._put(subject, (ends, count), now)

    def _put(self, subject: str, entry: tuple[datetime, int], now: datetime) -> None:
        self._counts.pop(subject, None)
        while self._counts:
            first = next(iter(self._counts))
            if self._counts[first][0] > now and len(self._counts) < self.size:
                break
            del self._counts[first]
        self._counts[subject] = entry


class RateLimits:
    """This process's limits, and its share of the failure counts the store keeps."""

    def __init__(self, store: Store, clock: Clock, settings: Settings) -> None:
        self.store = store
        self.clock = clock
        self.window = timedelta(seconds=settings.rate_limit_window_seconds)
        self.failure_limit = settings.auth_failure_limit
        self.public_limit = settings.public_rate_limit
        self._failures = Windows(self.window)
        self._public = Windows(self.window)

    def refused(self, subject: str) -> int | None:
        """Seconds `subject` is refused for after its failed authentications; None if it
        is not. Reads nothing but this process's memory."""
        found = self._failures.current(subject) if self.failure_limit else None
        if found is None or found[1] < self.failure_limit:
            return None  # every request asks: most end here, without reading the clock
        ends, now = found[0], self.clock.now()
        return _seconds(ends - now) if ends > now else None

    def public_request(self, subject: str) -> int | None:
        """Count a request to a public route; seconds to wait if it is over the limit."""
        if not self.public_limit:
            return None
        now = self.clock.now()
        count, ends = self._public.hit(subject, now)
        return _seconds(ends - now) if count > self.public_limit else None

    def failed(self, subject: str) -> int | None:
        """Count a failed authentication of `subject`, here and in the store (a write:
        call it from a worker thread); seconds it is refused for if it is now over the
        limit, None if this failure is still answered as such (401)."""
        if not self.failure_limit:
            return None
        now = self.clock.now()
        if (refused := self.refused(subject)) is not None:
            return refused  # a request in flight when the limit was reached: no write
        count, ends = self._failures.hit(subject, now)
        try:
            shared, shared_ends = self.store.count_failure(subject, now, self.window)
        except (DomainError, Conflict):
            pass  # the store cannot write now (it logs why): this process's count holds
        else:
            if shared > count:
                count, ends = shared, shared_ends
                self._failures.raise_to(subject, count, ends, now)
        if count >= self.failure_limit:
            logger.warning(
                "refusing %s for %d s: %d failed authentications within %d s",
                subject,
                _seconds(ends - now),
                count,
                self.window.total_seconds(),
            )
        return _seconds(ends - now) if count > self.failure_limit else None


def too_many(retry_after: int, why: str) -> JSONResponse:
    return problem(
        "rate_limited",
        f"{why}: retry after {retry_after} s",
        headers={"Retry-After": str(retry_after)},
    )


def limits_of(request: Request) -> RateLimits:
    limits: RateLimits = request.app.state.rate_limits
    return limits


async def refuse_unauthenticated(request: Request, detail: str) -> NoReturn:
    """A failed authentication of an API route: counted, then 401 with `detail`, or
    429 once the client's address is over its limit."""
    retry = await run_in_threadpool(limits_of(request).failed, client_address(request.scope))
    if retry is not None:
        raise ApiError(
            "rate_limited", f"{FAILURES}: retry after {retry} s", {"Retry-After": str(retry)}
        )
    raise ApiError("unauthorized", detail)


def count_failure(request: Request) -> JSONResponse | None:
    """A failed authentication of a page (dashboard sign-in, portal link), counted (a
    write: call it from a worker thread): the 429 to answer if the client's address
    is now over its limit, else None (answer the failure as usual)."""
    retry = limits_of(request).failed(client_address(request.scope))
    return too_many(retry, FAILURES) if retry is not None else None


class LimitRequests:
    """Refuse, before anything else runs, an address over its failure limit, and a
    request to a public route over the public limit."""

    def __init__(self, app: ASGIApp, limits: RateLimits) -> None:
        self.app = app
        self.limits = limits

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = _route_path(scope)
        if path in NEVER_LIMITED:
            await self.app(scope, receive, send)
            return
        subject = client_address(scope)
        if (retry := self.limits.refused(subject)) is not None:
            await too_many(retry, FAILURES)(scope, receive, send)
            return
        if is_public(path) and (retry := self.limits.public_request(subject)) is not None:
            await too_many(retry, "too many requests from this address")(scope, receive, send)
            return
        await self.app(scope, receive, send)


def _route_path(scope: Scope) -> str:
    """The path the app routes on: without the mount point (ASGI root_path)."""
    path = str(scope["path"])
    root = str(scope.get("root_path", ""))
    if root and path.startswith(root):
        return path[len(root) :] or "/"
    return path
