import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor

import pytest

from referrals.services.batching import Batches
from tests.batches import wait_until_queued


class Work:
    """Records each batch it is given; the first one waits for `release`."""

    def __init__(self, outcome: Callable[[str], object] = str.upper) -> None:
        self.batches: list[list[str]] = []
        self.running = threading.Event()
        self.release = threading.Event()
        self._outcome = outcome

    def __call__(self, items: Sequence[str]) -> list[object]:
        self.batches.append(list(items))
        self.running.set()
        assert self.release.wait(10)
        return [self._outcome(item) for item in items]


def queue_behind_a_running_batch(
    batches: Batches[str, object], work: Work, pool: ThreadPoolExecutor, items: list[str]
) -> list[Future[object]]:
    """The first item runs (and waits in `work`); the others queue behind it."""
    first = pool.submit(batches.run, "k", items[0], work)
    assert work.running.wait(10)
    rest = []
    for n, item in enumerate(items[1:], start=1):
        rest.append(pool.submit(batches.run, "k", item, work))
        wait_until_queued(batches, "k", n)
    return [first, *rest]


def test_a_request_alone_runs_at_once_in_a_batch_of_its_own() -> None:
    work = Work()
    work.release.set()
    assert Batches[str, object]().run("k", "a", work) == "A"
    assert work.batches == [["a"]]


def test_requests_that_came_while_a_batch_ran_run_together_next_each_with_its_outcome() -> None:
    batches: Batches[str, object] = Batches()
    work = Work()
    with ThreadPoolExecutor(4) as pool:
        futures = queue_behind_a_running_batch(batches, work, pool, ["a", "b", "c", "d"])
        work.release.set()
        assert [f.result(10) for f in futures] == ["A", "B", "C", "D"]
    assert work.batches == [["a"], ["b", "c", "d"]]  # in the order they came
    assert batches._waiting == {}  # the key is free again


def test_an_item_refused_fails_alone() -> None:
    def refuse_b(item: str) -> object:
        return ValueError(f"no {item}") if item == "b" else item.upper()

    batches: Batches[str, object] = Batches()
    work = Work(refuse_b)
    with ThreadPoolExecutor(3) as pool:
        a, b, c = queue_behind_a_running_batch(batches, work, pool, ["a", "b", "c"])
        work.release.set()
        with pytest.raises(ValueError, match="no b"):
            b.result(10)
        assert (a.result(10), c.result(10)) == ("A", "C")


def test_an_error_of_the_work_itself_fails_its_whole_batch_but_not_the_next() -> None:
    class Broken(Work):
        def __call__(self, items: Sequence[str]) -> list[object]:
            done = super().__call__(items)
            if "b" in items:
                raise RuntimeError("the database went away")
            return done

    batches: Batches[str, object] = Batches()
    work = Broken()
    with ThreadPoolExecutor(3) as pool:
        a, b, c = queue_behind_a_running_batch(batches, work, pool, ["a", "b", "c"])
        work.release.set()
        assert a.result(10) == "A"
        for failed in (b, c):
            with pytest.raises(RuntimeError, match="went away"):
                failed.result(10)
    assert Batches[str, object]().run("k", "d", work) == "D"


def test_a_batch_takes_at_most_its_limit_the_rest_run_after_it() -> None:
    batches: Batches[str, object] = Batches(max_batch=2)
    work = Work()
    with ThreadPoolExecutor(4) as pool:
        futures = queue_behind_a_running_batch(batches, work, pool, ["a", "b", "c", "d"])
        work.release.set()
        assert [f.result(10) for f in futures] == ["A", "B", "C", "D"]
    assert work.batches == [["a"], ["b", "c"], ["d"]]


def test_requests_of_another_key_do_not_wait() -> None:
    batches: Batches[str, object] = Batches()
    held, free = Work(), Work()
    free.release.set()
    with ThreadPoolExecutor(2) as pool:
        running = pool.submit(batches.run, "k", "a", held)
        assert held.running.wait(10)
        assert batches.run("other", "b", free) == "B"  # while "k" still runs
        assert not running.done()
        held.release.set()
        assert running.result(10) == "A"
