"""`adapters.sql.probe.PostgresProbe`: /healthz's round trip on the event loop, on one
connection of its own that it keeps, and opens again after the server closed it."""

import asyncio
import socket

import psycopg
import pytest

from referrals.adapters.sql.probe import PostgresProbe
from tests.postgresql import locale_database

ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"


def _backends(database: str) -> list[int]:
    with psycopg.connect(ADMIN) as admin:
        rows = admin.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = %s", (database,)
        ).fetchall()
    return [pid for (pid,) in rows]


def test_checks_share_one_connection_kept_between_them() -> None:
    async def checks(probe: PostgresProbe, url: str) -> list[int]:
        await probe.check()
        first = _backends(url.rsplit("/", 1)[1])
        await asyncio.gather(*(probe.check() for _ in range(20)))  # they take turns on it
        assert _backends(url.rsplit("/", 1)[1]) == first
        await probe.close()
        return first

    with locale_database("probe_kept") as url:
        probe = PostgresProbe(url)
        assert len(asyncio.run(checks(probe, url))) == 1
        assert _backends(url.rsplit("/", 1)[1]) == []  # closed with the probe


def test_a_connection_the_server_ended_fails_one_check_and_the_next_connects_again() -> None:
    async def scenario(probe: PostgresProbe, database: str) -> None:
        await probe.check()
        (backend,) = _backends(database)
        with psycopg.connect(ADMIN) as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", (backend,))
        with pytest.raises(psycopg.OperationalError):
            await probe.check()
        await probe.check()
        assert _backends(database) not in ([], [backend])
        await probe.close()

    with locale_database("probe_again") as url:
        asyncio.run(scenario(PostgresProbe(url), url.rsplit("/", 1)[1]))


def test_a_server_that_cannot_be_reached_fails_the_check() -> None:
    with socket.socket() as unused:  # a port nothing listens on
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    probe = PostgresProbe(f"postgresql+psycopg://postgres@127.0.0.1:{port}/nothing")
    with pytest.raises(psycopg.OperationalError):
        asyncio.run(probe.check())


def test_an_app_started_again_checks_on_its_new_event_loop() -> None:
    async def serve_once(probe: PostgresProbe) -> None:
        await asyncio.gather(*(probe.check() for _ in range(5)))  # they wait their turn
        await probe.close()  # the app's shutdown

    with locale_database("probe_loops") as url:
        probe = PostgresProbe(url)
        asyncio.run(serve_once(probe))
        asyncio.run(serve_once(probe))  # a turn bound to the first loop would refuse here
