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
import time
from contextlib import suppress

from sqlalchemy import Connection, Engine, RootTransaction

# A batch is committed once this old (or this large) even with writers still
# queued: under a steady stream of writers the line never empties, and the first
# writer of a batch must not wait for everyone who arrives after it. About one
# fsync: long enough to share it, short enough to keep the tail latency low.
MAX_BATCH_AGE = 0.003  # seconds
MAX_BATCH = 64


class BatchFailed(RuntimeError):
    """The shared transaction could not be committed; this writer's work is lost."""


class _Batch:
    """The writers' work in one transaction: settled once committed, or failed."""

    __slots__ = ("failure", "opened", "settled", "writers")

    def __init__(self) -> None:
        # Waiters wait on this, not on the mutex: they need not queue for the mutex
        # again (behind every new writer) just to learn that their batch is durable.
        self.settled = threading.Event()
        self.failure: BaseException | None = None
        self.writers = 0  # whose released work waits in it
        self.opened = 0.0  # when the first of them released it (monotonic)


class Checkpointer:
    """Copies the write-ahead log into the database file off the request path.

    SQLite otherwise checkpoints inside the COMMIT that crosses 1000 pages of
    log, so one batch in a few hundred waited for the copy and its fsync (the
    tail of signups spread over many referrers, whose writes touch more pages).
    A PASSIVE checkpoint never blocks writers or readers; SQLite's own
    checkpoint stays as the fallback and finds little left to do.
    """

    def __init__(self, engine: Engine, every: float = 0.25) -> None:
        self._engine = engine
        self._every = every
        self._wrote = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()

    def wrote(self) -> None:
        """A transaction committed: a checkpoint has work to do."""
        if self._thread is None:
            with self._start_lock:
                if self._thread is None and not self._stop.is_set():
                    self._thread = threading.Thread(
                        target=self._run, name="sqlite-checkpointer", daemon=True
                    )
                    self._thread.start()
        self._wrote.set()

    def stop(self) -> None:
        self._stop.set()
        self._wrote.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def _run(self) -> None:
        while not self._stop.wait(self._every):
            if not self._wrote.wait(1.0) or self._stop.is_set():
                continue
            self._wrote.clear()
            try:
                # The driver's connection: no transaction may be open for a checkpoint.
                conn = self._engine.raw_connection()
                try:
                    conn.driver_connection.execute("PRAGMA wal_checkpoint(PASSIVE)")  # type: ignore[union-attr]
                finally:
                    conn.close()
            except Exception:  # a missed checkpoint is left to SQLite, at a commit
                continue


class GroupCommit:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._checkpointer = Checkpointer(engine)
        self._mutex = threading.Lock()
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
        if batch.writers == 1:
            batch.opened = time.monotonic()
        if self._queued and not self._full(batch):
            self._leave()  # a later writer commits the batch, or fails it
            batch.settled.wait()
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
        self._checkpointer.stop()
        with self._mutex:
            if self._conn is not None:
                self._conn.close()
            self._conn = self._transaction = None

    def _full(self, batch: _Batch) -> bool:
        return batch.writers >= MAX_BATCH or time.monotonic() - batch.opened >= MAX_BATCH_AGE

    def _leave(self) -> None:
        # The last writer in line ends the transaction: it commits what the writers
        # before it left waiting (and so does any writer that finds the batch full),
        # or, if none of them kept any work, rolls it back. A transaction left open
        # with no one in line would keep SQLite's write lock (BEGIN IMMEDIATE) from
        # every other connection and process until this store is disposed.
        if self._batch.writers:
            if not self._queued or self._full(self._batch):
                self._commit_batch()
        elif not self._queued:
            self._end_empty()
        self._holder = None
        self._mutex.release()

    def _end_empty(self) -> None:
        """Roll back a transaction that holds no kept work, releasing the write lock."""
        if self._transaction is None:
            return
        try:
            self._transaction.rollback()
        except BaseException as error:
            self._abort(error)
            return
        self._transaction = None

    def _commit_batch(self) -> None:
        assert self._transaction is not None
        try:
            self._transaction.commit()
        except BaseException as error:
            self._abort(error)
            return
        self._transaction = None
        self._settle()
        self._checkpointer.wrote()

    def _abort(self, error: BaseException) -> None:
        """After a failure the transaction is in doubt: roll it all back, fail its batch."""
        self._batch.failure = error
        conn, self._conn, self._transaction = self._conn, None, None
        if conn is not None:
            with suppress(Exception):  # closing a broken connection may fail too
                conn.invalidate()  # never return a connection in doubt to the pool
        self._settle()

    def _settle(self) -> None:
        self._batch.settled.set()
        self._batch = _Batch()
