"""`/healthz`'s round trip to PostgreSQL, made on the event loop.

A health check run in a request thread waits, under full load, for Python's GIL
after each round trip: the event loop and the other request threads keep passing it
among themselves, and a thread coming back from the database can wait seconds for its
turn (BENCHMARKS.md, issue 27). A balancer whose probe times out then takes a
saturated but healthy server out of rotation. This probe never leaves the event loop:
one connection of its own per process, opened at the first check and kept, used by one
check at a time (a round trip takes well under a millisecond), dropped after a failure
so the next check connects again.
"""

import asyncio

import psycopg
from sqlalchemy.engine import make_url

# A check that takes longer answers 503: the database is as good as unreachable.
CHECK_TIMEOUT_S = 2.0


class PostgresProbe:
    def __init__(self, url: str) -> None:
        # psycopg takes the SQLAlchemy URL's postgresql:// form, query options included.
        self._conninfo = (
            make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
        )
        self._connection: psycopg.AsyncConnection[tuple[object, ...]] | None = None
        self._turn: asyncio.Lock | None = None  # made on the event loop that checks

    async def check(self) -> None:
        """Raise if PostgreSQL cannot answer `SELECT 1` within CHECK_TIMEOUT_S."""
        if self._turn is None:
            self._turn = asyncio.Lock()
        async with self._turn:
            try:
                async with asyncio.timeout(CHECK_TIMEOUT_S):
                    if self._connection is None:
                        self._connection = await psycopg.AsyncConnection.connect(
                            self._conninfo, autocommit=True
                        )
                    await self._connection.execute("SELECT 1")
            except BaseException:
                await self._drop()  # mid-query or broken: the next check connects anew
                raise

    async def close(self) -> None:
        """At the app's shutdown: close the connection. A check after it opens another,
        with a new turn, on the event loop it runs on (an app started again, as tests do,
        runs on a new loop)."""
        self._turn = None
        await self._drop()

    async def _drop(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            await connection.close()
