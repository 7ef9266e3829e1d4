"""API keys: random secrets shown once, stored only as a hash, with a lifecycle.

A key has a role, an optional name and expiry; it can be revoked (at once, for good)
or rotated. A rotation makes a new key (a new id and secret, the same role and name)
and sets the old key's expiry to the end of a grace period, so the clients using it
can move over: one row per secret, so a key is always found by the hash of what a
client sends, in one read, and nothing else about keys has to know about rotation.
Keys are never deleted: the audit log keeps naming them.
"""

import hashlib
import secrets
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime, timedelta

from referrals.domain.errors import Conflict, DomainError, InvalidInput, KeyNotActive, NotFound
from referrals.domain.model import ApiKey, Role, new_id
from referrals.ports import Clock, Store, UnitOfWork
from referrals.services.audit import add_entry
from referrals.services.retry import retry_on_conflict

KEY_PREFIX = "rk_"
# A fixed id, so that of several servers starting at once one makes the key (see
# `create_first_admin_key`); a name, so that the audit log and the dashboard read well.
# Other keys' ids are ULIDs (26 upper-case characters), which never take this one.
FIRST_KEY_ID = "first-admin"
FIRST_KEY_NAME = "first admin"
CLI_ACTOR = "cli"  # the audit log's actor for what is done on the host, by the CLI
MAX_NAME = 64
# When a key was last used, to the minute: a request writes it at most once a minute
# per key, so authenticating stays a read (and, with the API's cache, rarely even that).
LAST_USED_RESOLUTION = timedelta(minutes=1)
# Long enough to roll a deployment onto the new key; an operator may choose 0 to 30 days.
DEFAULT_GRACE = timedelta(hours=1)
MAX_GRACE = timedelta(days=30)
MIN_LIFETIME = timedelta(minutes=1)
MAX_LIFETIME = timedelta(days=3650)


def hash_key(plaintext: str) -> str:
    # Keys carry 256 random bits, so a fast hash is enough: there is nothing to brute-force.
    return hashlib.sha256(plaintext.encode()).hexdigest()


def check_name(name: str | None) -> str | None:
    """A key's name: 1-64 characters, no control characters; None for none."""
    if name is None:
        return None
    name = name.strip()
    if not 1 <= len(name) <= MAX_NAME or any(ord(c) < 32 or ord(c) == 127 for c in name):
        raise InvalidInput(f"a key's name is 1-{MAX_NAME} characters, no control characters")
    return name


def _expiry(now: datetime, expires_in: timedelta | None) -> datetime | None:
    if expires_in is None:
        return None
    if not MIN_LIFETIME <= expires_in <= MAX_LIFETIME:
        raise InvalidInput("a key expires in 1 minute to 3650 days")
    return now + expires_in


def _new_key(
    now: datetime, role: Role, name: str | None = None, expires_in: timedelta | None = None
) -> tuple[str, ApiKey]:
    plaintext = KEY_PREFIX + secrets.token_urlsafe(32)
    key = ApiKey(new_id(now), role, hash_key(plaintext), now, name, _expiry(now, expires_in))
    return plaintext, key


def _described(key: ApiKey) -> str:
    parts = [f"role {key.role}"]
    if key.name is not None:
        parts.append(f"name {key.name!r}")
    if key.expires_at is not None:
        parts.append(f"expires {key.expires_at.isoformat()}")
    return ", ".join(parts)


def create_key(
    store: Store,
    clock: Clock,
    role: Role,
    actor: str = CLI_ACTOR,
    *,
    name: str | None = None,
    expires_in: timedelta | None = None,
) -> tuple[str, ApiKey]:
    """A new key; `actor` is who made it, for the audit log (the CLI on the host, by default)."""
    plaintext, key = _new_key(clock.now(), role, check_name(name), expires_in)
    with store.unit_of_work() as uow:
        uow.api_keys.add(key)
        add_entry(uow, clock, actor, "key.create", f"key:{key.id}", _described(key))
        uow.commit()
    return plaintext, key


def create_first_admin_key(store: Store, clock: Clock) -> str | None:
    """On a store with no key, make an admin key and return it; otherwise None.

    The first key always has the same id, so of several servers starting at once
    on an empty database, one creates it and the others get a Conflict: exactly
    one admin key is printed, and its creation is audited once, by the host.
    """
    try:
        with store.unit_of_work() as uow:
            if uow.api_keys.count():
                return None
            plaintext, key = _new_key(clock.now(), Role.ADMIN, FIRST_KEY_NAME)
            uow.api_keys.add(replace(key, id=FIRST_KEY_ID))
            target = f"key:{FIRST_KEY_ID}"
            add_entry(uow, clock, CLI_ACTOR, "key.create", target, "role admin, first start")
            uow.commit()
    except Conflict:
        return None
    return plaintext


def find_key(store: Store, plaintext: str) -> ApiKey | None:
    """The key stored for `plaintext`, whatever its state; None if there is none."""
    if not plaintext.startswith(KEY_PREFIX) or len(plaintext) > 128:
        return None
    with store.read() as uow:
        return uow.api_keys.by_hash(hash_key(plaintext))


def authenticate(store: Store, plaintext: str, now: datetime) -> ApiKey | None:
    """The key of `plaintext` if it is active at `now` (not revoked, not expired)."""
    key = find_key(store, plaintext)
    return key if key is not None and key.active(now) else None


def record_use(store: Store, clock: Clock, key: ApiKey) -> ApiKey:
    """Note that `key` was used now, unless that was noted less than a minute ago;
    returns the key as it now stands. A write the store refuses (storage full or
    read-only, which the store reports itself) does not fail the caller: it is only
    a note, and a store that cannot write may still serve reads."""
    now = clock.now()
    if key.last_used_at is not None and now - key.last_used_at < LAST_USED_RESOLUTION:
        return key
    try:
        with store.unit_of_work() as uow:
            uow.api_keys.touch(key.key_hash, now, now - LAST_USED_RESOLUTION)
            uow.commit()
    except Conflict:
        pass  # another server noted a use within the minute: nothing is missing
    except DomainError:
        pass  # the store cannot write now (its own log says so): try again next minute
    return replace(key, last_used_at=now)


def list_keys(store: Store) -> Sequence[ApiKey]:
    """Every key, revoked and expired ones too, oldest first."""
    with store.read() as uow:
        return uow.api_keys.list()


def _get(uow: UnitOfWork, key_id: str) -> ApiKey:
    key = uow.api_keys.get(key_id)
    if key is None:
        raise NotFound(f"no key {key_id}")
    return key


def revoke_key(
    store: Store, clock: Clock, key_id: str, actor: str = CLI_ACTOR, reason: str | None = None
) -> ApiKey:
    """Revoke a key at once and for good; its dashboard sessions end with it. Revoking
    a revoked key changes nothing (and logs nothing)."""

    def attempt() -> ApiKey:
        with store.unit_of_work() as uow:
            key = _get(uow, key_id)
            if key.revoked_at is not None:
                return key
            now = clock.now()
            uow.api_keys.revoke(key, now)
            add_entry(uow, clock, actor, "key.revoke", f"key:{key.id}", reason)
            uow.commit()
            return replace(key, revoked_at=now)

    return retry_on_conflict(attempt)


def rotate_key(
    store: Store,
    clock: Clock,
    key_id: str,
    grace: timedelta = DEFAULT_GRACE,
    actor: str = CLI_ACTOR,
    *,
    expires_in: timedelta | None = None,
) -> tuple[str, ApiKey, ApiKey]:
    """A new key in place of an active one: the same role and name, a new id and secret
    (and `expires_in`, if given). The old key keeps working for `grace` (0: not at all),
    or until its own expiry if that comes first. Returns the new key's secret, the new
    key and the old one as it now stands."""
    if not timedelta(0) <= grace <= MAX_GRACE:
        raise InvalidInput("a rotation's grace period is 0 seconds to 30 days")

    def attempt() -> tuple[str, ApiKey, ApiKey]:
        with store.unit_of_work() as uow:
            old = _get(uow, key_id)
            now = clock.now()
            if not old.active(now):
                raise KeyNotActive(f"key {key_id} is {old.state(now)}: it cannot be rotated")
            until = now + grace
            if old.expires_at is not None:
                until = min(until, old.expires_at)
            plaintext, new = _new_key(now, old.role, old.name, expires_in)
            uow.api_keys.add(new)
            uow.api_keys.expire(old, until)
            why = f"rotated from {old.id}, {_described(new)}"
            add_entry(uow, clock, actor, "key.create", f"key:{new.id}", why)
            why = f"new key {new.id}; this one works until {until.isoformat()}"
            add_entry(uow, clock, actor, "key.rotate", f"key:{old.id}", why)
            uow.commit()
            return plaintext, new, replace(old, expires_at=until)

    return retry_on_conflict(attempt)
