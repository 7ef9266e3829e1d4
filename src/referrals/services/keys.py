"""API keys: random secrets shown once, stored only as a hash."""

import hashlib
import secrets
from dataclasses import replace

from referrals.domain.errors import Conflict
from referrals.domain.model import ApiKey, Role, new_id
from referrals.ports import Clock, Store
from referrals.services.audit import add_entry

KEY_PREFIX = "rk_"
# A fixed id, so that of several servers starting at once one makes the key (see
# `create_first_admin_key`); a name, so that the audit log and the dashboard read well.
# Other keys' ids are ULIDs (26 upper-case characters), which never take this one.
FIRST_KEY_ID = "first-admin"
CLI_ACTOR = "cli"  # the audit log's actor for what is done on the host, by the CLI


def hash_key(plaintext: str) -> str:
    # Keys carry 256 random bits, so a fast hash is enough: there is nothing to brute-force.
    return hashlib.sha256(plaintext.encode()).hexdigest()


def _new_key(clock: Clock, role: Role) -> tuple[str, ApiKey]:
    plaintext = KEY_PREFIX + secrets.token_urlsafe(32)
    return plaintext, ApiKey(new_id(), role, hash_key(plaintext), clock.now())


def create_key(
    store: Store, clock: Clock, role: Role, actor: str = CLI_ACTOR
) -> tuple[str, ApiKey]:
    """A new key; `actor` is who made it, for the audit log (the CLI on the host, by default)."""
    plaintext, key = _new_key(clock, role)
    with store.unit_of_work() as uow:
        uow.api_keys.add(key)
        add_entry(uow, clock, actor, "key.create", f"key:{key.id}", f"role {role}")
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
            plaintext, key = _new_key(clock, Role.ADMIN)
            uow.api_keys.add(replace(key, id=FIRST_KEY_ID))
            target = f"key:{FIRST_KEY_ID}"
            add_entry(uow, clock, CLI_ACTOR, "key.create", target, "role admin, first start")
            uow.commit()
    except Conflict:
        return None
    return plaintext


def authenticate(store: Store, plaintext: str) -> ApiKey | None:
    if not plaintext.startswith(KEY_PREFIX) or len(plaintext) > 128:
        return None
    with store.read() as uow:
        return uow.api_keys.by_hash(hash_key(plaintext))
