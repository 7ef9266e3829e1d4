"""The secret the service keeps in its own store when none is configured.

Portal links, dashboard sessions and IP/device fingerprints are keyed by one secret
(a key derived from it per purpose, `derived_keys`). A configured one
(REFERRALS_SECRET_KEY, or Secrets Manager on Lambda) always wins. Without one, a
secret drawn at random is kept in the store, once: every process and every restart
reads the same one, so links, sessions and fingerprints outlive a restart and agree
across servers sharing the database. Whoever can read the database can read it,
which is why production should configure its own.
"""

import secrets

from referrals.ports import Clock, Store
from referrals.services.retry import retry_on_conflict

# The name of the one secret kept: it stands in for the secret_key setting.
SECRET_KEY = "secret_key"


def kept_secret(store: Store, clock: Clock, name: str = SECRET_KEY) -> str:
    """The secret kept under `name`, created if absent.

    Race-safe: two processes creating it at once both insert if absent; the loser's
    insert is a Conflict, and it reads the winner's. A store that only reads (a
    standby, a full disk) still answers once the secret exists.
    """
    with store.read() as uow:
        found = uow.secrets.get(name)
    if found is not None:
        return found

    def attempt() -> str:
        with store.unit_of_work() as uow:
            # Read again in the writing unit: the loser of a race reads the winner's here.
            existing = uow.secrets.get(name)
            if existing is not None:
                return existing
            value = secrets.token_urlsafe(32)  # 43 characters, 256 bits
            uow.secrets.add(name, value, clock.now())
            uow.commit()
            return value

    return retry_on_conflict(attempt)
