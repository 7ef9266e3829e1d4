"""Running the concurrent requests that share a key together, one batch at a time."""

import threading
from collections.abc import Callable, Hashable, Sequence
from typing import Generic, TypeVar

In = TypeVar("In")
Out = TypeVar("Out")

# The most requests one batch takes: its unit of work, and the wait of the first
# of them for the last, stay short.
MAX_BATCH = 16


class _Request(Generic[In, Out]):
    __slots__ = ("batch", "item", "outcome", "turn")

    def __init__(self, item: In) -> None:
        self.item = item
        self.turn = threading.Event()  # set with an outcome, or with a batch to run
        self.batch: list[_Request[In, Out]] | None = None  # a batch to run: its requests
        self.outcome: Out | BaseException | None = None


class Batches(Generic[In, Out]):
    """The requests of one key run one batch at a time, in this process.

    The first request of a key runs alone, at once. The requests of that key that
    arrive while a batch runs wait, and run together once it ends, in one call of
    `work`, by the thread of the first of them: the others' threads only wait. So
    requests that would queue one after another anyway (a hot referrer's signups,
    on its row lock) share one transaction instead, and each pays its own part of
    the work but not a whole transaction and a wait for the lock. Requests of
    different keys never wait for each other here.
    """

    def __init__(self, max_batch: int = MAX_BATCH) -> None:
        self._max_batch = max_batch
        self._mutex = threading.Lock()
        # A key is here while a batch of it runs: the requests waiting for the next.
        self._waiting: dict[Hashable, list[_Request[In, Out]]] = {}

    def run(
        self,
        key: Hashable,
        item: In,
        work: Callable[[Sequence[In]], Sequence[Out | BaseException]],
    ) -> Out:
        """`item`'s outcome from `work`, which takes a batch of items and answers
        each one's outcome in order: a result, or the exception to raise for it.
        An exception raised by `work` itself fails the whole batch."""
        request: _Request[In, Out] = _Request(item)
        with self._mutex:
            queue = self._waiting.get(key)
            if queue is None:
                self._waiting[key] = []
                batch = [request]
            else:
                queue.append(request)
                batch = None
        if batch is None:
            request.turn.wait()
            if request.batch is None:
                return unwrap(request.outcome)
            batch = request.batch
        self._run(key, batch, work)
        return unwrap(request.outcome)

    def _run(
        self,
        key: Hashable,
        batch: list[_Request[In, Out]],
        work: Callable[[Sequence[In]], Sequence[Out | BaseException]],
    ) -> None:
        outcomes: Sequence[Out | BaseException]
        try:
            outcomes = work([r.item for r in batch])
            if len(outcomes) != len(batch):
                raise RuntimeError(f"{len(batch)} requests, {len(outcomes)} outcomes")
        except BaseException as error:  # every request of the batch fails with it
            outcomes = [error] * len(batch)
        for request, outcome in zip(batch, outcomes, strict=True):
            request.outcome = outcome
        with self._mutex:  # the requests that came meanwhile run next, led by the first
            queue = self._waiting.pop(key)
            upcoming, rest = queue[: self._max_batch], queue[self._max_batch :]
            if upcoming:
                self._waiting[key] = rest
        for request in batch[1:]:
            request.turn.set()
        if upcoming:
            upcoming[0].batch = upcoming
            upcoming[0].turn.set()


def unwrap(outcome: Out | BaseException | None) -> Out:
    """An outcome as `work` answers it: the result, or its exception raised."""
    if isinstance(outcome, BaseException):
        raise outcome
    return outcome  # type: ignore[return-value]  # set before its request's turn
