"""Group commit for SQLite: the writers of one process share a transaction and its fsync.

SQLite has one writer at a time, and with `synchronous=FULL` each commit waits
for an fsync, which was a third of the time a signup held the write lock. Here
the writers of this process queue on a mutex and each runs inside a SAVEPOINT
of one open transaction. A writer that keeps its work releases its savepoint;
the last writer in line (no one queued behind it) commits for everyone whose
work is in the transaction, and each of them returns only once that COMMIT is
durable. Alone, a writer commits its own work at once; under load one fsync
serves a whole batch. A writer that fails rolls back to its savepoint and takes
no one's work with it.
"""

import threading
from contextlib import suppress

from sqlalchemy import Connection, Engine, RootTransaction

# A batch is committed at this size even with writers still queued, so the
# first writer of a batch never waits for an unbounded line behind it.
MAX_BATCH = 64


class BatchFailed(RuntimeError):
    """The shared transaction could not be committed; this writer's work is lost."""


class _Batch:
    """The writers' work in one transaction: settled once committed or failed."""

    __slots__ = ("failure", "settled", "writers")

    def __init__(self) -> None:
        self.settled = False
        self.failure: BaseException | None = None
        self.writers = 0  # whose released work waits in it


class GroupCommit:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._mutex = threading.Lock()
        self._settled = threading.Condition(self._mutex)  # a batch committed or failed
        self._queue_lock = threading.Lock()
        self._queued = 0  # writers waiting for the mutex
        self._holder: int | None = None  # thread id inside a unit of work
        self._conn: Connection | None = None
        self._transaction: RootTransaction | None = None
        self._batch = _Batch()  # the work in the open (or next) transaction

    def enter(self) -> Connection:
        """Wait for the write lock of this process; return the connection, in a savepoint."""
        if self._holder == threading.get_ident():
            raise RuntimeError("a unit of work is already open on this thread")
        with self._queue_lock:
            self._queued += 1
        self._mutex.acquire()
        with self._queue_lock:
            self._queued -= 1
        self._holder = threading.get_ident()
        try:
            if self._conn is None:
                self._conn = self._engine.connect()
            if self._transaction is None:
                self._transaction = self._conn.begin()  # BEGIN IMMEDIATE
            # Plain SQL: SQLAlchemy compiles its SAVEPOINT afresh each time, which took
            # a quarter of a signup's Python time. One name: savepoints never nest here.
            self._conn.exec_driver_sql("SAVEPOINT writer")
            return self._conn
        except BaseException as error:
            self._abort(error)
            self._leave()
            raise

    def commit(self) -> None:
        """Keep this writer's work; return once it is durable, or raise if it is lost."""
        assert self._conn is not None
        try:
            self._conn.exec_driver_sql("RELEASE writer")  # the work joins the transaction
        except BaseException as error:
            self._abort(error)
            self._leave()
            raise
        batch = self._batch
        batch.writers += 1
        if self._queued and batch.writers < MAX_BATCH:
            self._holder = None
            while not batch.settled:  # a later writer commits the batch, or fails it
                self._settled.wait()
        else:
            self._commit_batch()
        self._leave()
        if batch.failure is not None:
            raise BatchFailed("the write transaction failed to commit") from batch.failure

    def rollback(self) -> None:
        """Drop this writer's work, keep the others'."""
        assert self._conn is not None
        try:
            self._conn.exec_driver_sql("ROLLBACK TO writer")
            self._conn.exec_driver_sql("RELEASE writer")
        except BaseException as error:
            self._abort(error)
        self._leave()

    def dispose(self) -> None:
        with self._mutex:
            if self._conn is not None:
                self._conn.close()
            self._conn = self._transaction = None

    def _leave(self) -> None:
        # The last writer in line commits what the writers before it left waiting.
        if self._batch.writers and not self._queued:
            self._commit_batch()
        self._holder = None
        self._mutex.release()

    def _commit_batch(self) -> None:
        assert self._transaction is not None
        try:
            self._transaction.commit()
        except BaseException as error:
            self._abort(error)
            return
        self._transaction = None
        self._settle()

    def _abort(self, error: BaseException) -> None:
        """After a failure the transaction is in doubt: roll it all back, fail its batch."""
        self._batch.failure = error
        conn, self._conn, self._transaction = self._conn, None, None
        if conn is not None:
            with suppress(Exception):  # closing a broken connection may fail too
                conn.invalidate()  # never return a connection in doubt to the pool
        self._settle()

    def _settle(self) -> None:
        self._batch.settled = True
        self._batch = _Batch()
        self._settled.notify_all()
