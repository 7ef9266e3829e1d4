"""Failures of the storage under the database: a full disk, a read-only file or server, an
I/O error. A request cannot fix them and a retry soon will not either: they are raised
as `StorageUnavailable` (503 storage_unavailable), and logged once a minute at most,
not with a traceback per request."""

import logging
import os
import sqlite3
import threading
import time
from pathlib import Path

from referrals.domain.errors import StorageUnavailable

logger = logging.getLogger("referrals.storage")

# SQLite's primary result codes (the low byte of an extended code). A database in WAL
# mode on a read-only filesystem cannot even be opened (its -shm file): CANTOPEN.
_SQLITE = {
    sqlite3.SQLITE_FULL,
    sqlite3.SQLITE_READONLY,
    sqlite3.SQLITE_IOERR,
    sqlite3.SQLITE_CANTOPEN,
}
# PostgreSQL's SQLSTATEs: disk full, insufficient resources, read-only transaction
# (a standby, default_transaction_read_only), I/O error.
_POSTGRESQL = {"53100", "53000", "25006", "58030"}
# Free space below this on a SQLite database's filesystem: a write may fail any moment
# (a signup writes a few pages to the log, a checkpoint copies them into the file).
MIN_FREE_BYTES = 1 << 20


def storage_failure(error: BaseException) -> str | None:
    """What the storage said, if `error` (or an error it was raised from) is one of these."""
    seen: BaseException | None = error
    while seen is not None:
        driver = getattr(seen, "orig", None) or seen  # SQLAlchemy wraps the driver's error
        if isinstance(driver, sqlite3.Error) and driver.sqlite_errorcode & 0xFF in _SQLITE:
            return str(driver)
        if getattr(driver, "sqlstate", None) in _POSTGRESQL:
            return str(driver).strip().splitlines()[0]
        seen = seen.__cause__ or seen.__context__
    return None


def require_room(database: Path) -> None:
    """Raise StorageUnavailable unless a SQLite database's file and folder are writable and
    its filesystem has room: a rolled-back transaction writes nothing, so it cannot tell."""
    folder = database.parent
    if not os.access(folder, os.W_OK) or (database.exists() and not os.access(database, os.W_OK)):
        raise StorageUnavailable(f"the database {database} is read-only")
    stats = os.statvfs(folder)
    if stats.f_bavail * stats.f_frsize < MIN_FREE_BYTES:
        raise StorageUnavailable(f"the disk of the database {database} is full")


class StorageWatch:
    """Turns storage failures into StorageUnavailable, logging one line a minute at most."""

    def __init__(self, every: float = 60.0) -> None:
        self._every = every
        self._lock = threading.Lock()
        self._logged_at: float | None = None
        self._hidden = 0  # failures since the last line

    def translate(self, error: BaseException) -> StorageUnavailable | None:
        reason = storage_failure(error)
        if reason is None:
            return None
        with self._lock:
            now = time.monotonic()
            if self._logged_at is None or now - self._logged_at >= self._every:
                more = f" (and {self._hidden} more since the last line)" if self._hidden else ""
                logger.error("storage unavailable: %s%s", reason, more)
                self._logged_at, self._hidden = now, 0
            else:
                self._hidden += 1
        return StorageUnavailable(f"the database cannot store this now: {reason}")
