"""Dashboard sessions on the server: signing out ends one everywhere, and none outlives its key.

The cookie is a signed token naming the key and the session (`web.tokens`); the
signature spares the store a read for a forged one, and this record decides whether
a genuine one still opens the dashboard. A session is live while its record is (not
signed out, not expired) and its key is (an admin key, not revoked, not expired), so
revoking a key, or the end of a rotation's grace period, ends its sessions with no
write of their own. Both are read on every page: the dashboard is for a few people.
"""

from datetime import datetime

from referrals.domain.model import ApiKey, DashboardSession, Role
from referrals.ports import Clock, Store


def start(
    store: Store, clock: Clock, key: ApiKey, session_id: str, expires_at: datetime
) -> DashboardSession:
    """Record a sign-in of `key`; it ends at `expires_at`, or with the key if sooner."""
    if key.expires_at is not None:
        expires_at = min(expires_at, key.expires_at)
    session = DashboardSession(session_id, key.id, clock.now(), expires_at)
    with store.unit_of_work() as uow:
        uow.sessions.add(session)
        uow.commit()
    return session


def live_key(store: Store, clock: Clock, key_id: str, session_id: str) -> ApiKey | None:
    """The admin key of a live session, or None: no such session, signed out, expired,
    or its key revoked or expired."""
    now = clock.now()
    with store.read() as uow:
        session = uow.sessions.get(key_id, session_id)
        if session is None or not session.live(now):
            return None
        key = uow.api_keys.get(key_id)
    if key is None or not key.active(now) or key.role is not Role.ADMIN:
        return None
    return key


def end(store: Store, clock: Clock, key_id: str, session_id: str) -> None:
    """Sign out: the session ends for every copy of its cookie. Ending an ended or
    unknown session changes nothing."""
    with store.unit_of_work() as uow:
        session = uow.sessions.get(key_id, session_id)
        if session is not None and session.ended_at is None:
            uow.sessions.end(session, clock.now())
            uow.commit()
