"""Throwaway databases on the local PostgreSQL server (127.0.0.1:5432, trust auth)."""

import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import create_engine, text

from referrals.adapters.sql.schema import metadata
from referrals.adapters.sql.store import SqlStore
from referrals.bootstrap import Services, build, build_store
from referrals.config import Settings

PG_SERVER = "postgresql+psycopg://postgres@127.0.0.1:5432"


@contextmanager
def locale_database(prefix: str) -> Iterator[str]:
    """An empty database of its own, dropped at the end; yields its URL.

    It sorts text by the en-US locale, as many servers do, not by bytes: reports
    and pages must come out in the same order as on every other store anyway.
    """
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    admin = create_engine(f"{PG_SERVER}/postgres", isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(
            text(
                f'CREATE DATABASE "{name}" TEMPLATE template0'
                " LOCALE_PROVIDER icu ICU_LOCALE 'en-US' LOCALE 'C.UTF-8'"
            )
        )
    try:
        yield f"{PG_SERVER}/{name}"
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@contextmanager
def migrated_database(prefix: str) -> Iterator[str]:
    """A database of its own at the latest schema, dropped at the end; yields its URL."""
    with locale_database(prefix) as url:
        build_store(url, migrate=True).dispose()
        yield url


@contextmanager
def emptied_store(url: str) -> Iterator[SqlStore]:
    """A store on a migrated database of `url`, every table emptied first."""
    store = build_store(url)
    assert isinstance(store, SqlStore)
    with store.writer.begin() as conn:
        conn.execute(text(f"TRUNCATE {', '.join(t.name for t in metadata.sorted_tables)} CASCADE"))
    try:
        yield store
    finally:
        store.dispose()


@contextmanager
def services_on(prefix: str, reports: str, pool_size: int = 5) -> Iterator[Services]:
    """Services built as `referrals serve` builds them, on a migrated database of their
    own with a pool of `pool_size`; its connections closed, then the database dropped."""
    with migrated_database(prefix) as url:
        svc = build(Settings(database_url=url, reports_url=reports, pool_size=pool_size))
        try:
            yield svc
        finally:
            svc.store.dispose()  # type: ignore[attr-defined]
