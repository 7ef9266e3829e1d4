"""Every store adapter runs the same contract suite; add an adapter to `STORES` to include it."""

import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws
from sqlalchemy import create_engine, text

from referrals.adapters.dynamodb.store import DynamoStore
from referrals.adapters.memory import MemoryStore
from referrals.adapters.sql.schema import metadata
from referrals.adapters.sql.store import SqlStore
from referrals.bootstrap import build_store
from referrals.ports import Store

STORES = ["memory", "sqlite", "postgresql", "dynamodb"]
PG_SERVER = "postgresql+psycopg://postgres@127.0.0.1:5432"


@pytest.fixture(params=STORES)
def store(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Store]:
    if request.param == "memory":
        yield MemoryStore()
        return
    if request.param == "dynamodb":
        yield from dynamodb_store(monkeypatch)
        return
    if request.param == "postgresql":
        yield request.getfixturevalue("postgresql_store")
        return
    sql = build_store(f"sqlite:///{tmp_path}/contract.db", migrate=True)
    assert isinstance(sql, SqlStore)
    yield sql
    sql.dispose()


class AtomicRequests:
    """Make each request to moto atomic, as each request to DynamoDB is.

    moto's in-process backend is not thread-safe: two concurrent conditional
    writes can both pass their condition, which real DynamoDB never allows.
    Serializing whole requests restores DynamoDB's per-request atomicity while
    keeping every interleaving between requests (read in one, conditional
    write in the next), which is what the optimistic store must survive.
    """

    def __init__(self, client: Any) -> None:
        self._client = client
        self._lock = threading.Lock()

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._client, name)
        if not callable(attribute) or name in ("get_waiter", "get_paginator"):
            return attribute

        def call(*args: Any, **kwargs: Any) -> Any:
            with self._lock:
                return attribute(*args, **kwargs)

        return call


def dynamodb_store(monkeypatch: pytest.MonkeyPatch) -> Iterator[Store]:
    """Both tables on moto, created from the same definitions the CDK stack uses."""
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-2",
    }.items():
        monkeypatch.setenv(name, value)
    with mock_aws():
        client = AtomicRequests(boto3.client("dynamodb", region_name="us-east-2"))
        store = DynamoStore(client, "test")
        store.create_tables()
        yield store


@pytest.fixture(scope="session")
def postgresql_database() -> Iterator[str]:
    """A database of its own on the local server, migrated once, dropped at the end.

    It sorts text by the en-US locale, as many servers do, not by bytes: reports
    and pages must come out in the same order as on every other store anyway.
    """
    name = f"referrals_contract_{uuid.uuid4().hex[:12]}"
    admin = create_engine(f"{PG_SERVER}/postgres", isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(
            text(
                f'CREATE DATABASE "{name}" TEMPLATE template0'
                " LOCALE_PROVIDER icu ICU_LOCALE 'en-US' LOCALE 'C.UTF-8'"
            )
        )
    url = f"{PG_SERVER}/{name}"
    build_store(url, migrate=True).dispose()  # type: ignore[attr-defined]
    yield url
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture
def postgresql_store(postgresql_database: str) -> Iterator[Store]:
    sql = build_store(postgresql_database)
    assert isinstance(sql, SqlStore)
    with sql.writer.begin() as conn:
        tables = ", ".join(t.name for t in metadata.sorted_tables)
        conn.execute(text(f"TRUNCATE {tables} CASCADE"))
    yield sql
    sql.dispose()
