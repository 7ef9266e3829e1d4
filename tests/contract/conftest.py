"""Every store adapter runs the same contract suite; add an adapter to `STORES` to include it."""

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from referrals.adapters.dynamodb.store import DynamoStore
from referrals.adapters.memory import MemoryStore
from referrals.adapters.sql.store import SqlStore
from referrals.bootstrap import build_store
from referrals.ports import Store
from tests.postgresql import emptied_store, migrated_database

STORES = ["memory", "sqlite", "postgresql", "dynamodb"]


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
        if name == "get_paginator":
            return lambda operation: LockedPages(attribute(operation), self._lock)
        if not callable(attribute) or name == "get_waiter":
            return attribute

        def call(*args: Any, **kwargs: Any) -> Any:
            with self._lock:
                return attribute(*args, **kwargs)

        return call


class LockedPages:
    """A paginator whose requests are atomic too: it sends them from the client itself,
    past AtomicRequests, so each page is fetched under the same lock."""

    def __init__(self, paginator: Any, lock: threading.Lock) -> None:
        self._paginator = paginator
        self._lock = lock

    def paginate(self, **kwargs: Any) -> Iterator[Any]:
        pages = iter(self._paginator.paginate(**kwargs))
        while True:
            with self._lock:
                page = next(pages, None)
            if page is None:
                return
            yield page


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
    """A database of its own on the local server, migrated once, dropped at the end."""
    with migrated_database("referrals_contract") as url:
        yield url


@pytest.fixture
def postgresql_store(postgresql_database: str) -> Iterator[Store]:
    with emptied_store(postgresql_database) as store:
        yield store
