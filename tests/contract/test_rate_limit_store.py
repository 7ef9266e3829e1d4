"""Failed authentications counted per subject in fixed windows, the same on every store:
the rate limit that every server of one store shares (api/ratelimits.py)."""

from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

from referrals.ports import Store

T0 = datetime(2026, 3, 14, 12, 0, 0, 123_456, tzinfo=UTC)
WINDOW = timedelta(seconds=60)


def test_a_first_failure_starts_a_window(store: Store) -> None:
    assert store.count_failure("203.0.113.7", T0, WINDOW) == (1, T0 + WINDOW)


def test_failures_within_the_window_add_up_and_keep_its_end(store: Store) -> None:
    store.count_failure("203.0.113.7", T0, WINDOW)
    store.count_failure("203.0.113.7", T0 + timedelta(seconds=10), WINDOW)
    later = T0 + WINDOW - timedelta(microseconds=1)
    assert store.count_failure("203.0.113.7", later, WINDOW) == (3, T0 + WINDOW)


def test_a_failure_once_the_window_ended_starts_a_new_one(store: Store) -> None:
    for _ in range(5):
        store.count_failure("203.0.113.7", T0, WINDOW)
    ended = T0 + WINDOW
    assert store.count_failure("203.0.113.7", ended, WINDOW) == (1, ended + WINDOW)
    assert store.count_failure("203.0.113.7", ended, WINDOW) == (2, ended + WINDOW)


def test_subjects_are_counted_apart(store: Store) -> None:
    store.count_failure("203.0.113.7", T0, WINDOW)
    store.count_failure("203.0.113.7", T0, WINDOW)
    assert store.count_failure("2001:db8:1:2::/64", T0, WINDOW) == (1, T0 + WINDOW)
    assert store.count_failure("203.0.113.7", T0, WINDOW)[0] == 3


def test_ended_windows_of_other_subjects_do_not_change_a_count(store: Store) -> None:
    for n in range(15):  # more than a count deletes of ended windows at once
        store.count_failure(f"10.0.0.{n}", T0, WINDOW)
    store.count_failure("203.0.113.7", T0 + timedelta(seconds=30), WINDOW)
    later = T0 + WINDOW + timedelta(seconds=1)
    for n in range(15):
        assert store.count_failure(f"10.0.0.{n}", later, WINDOW) == (1, later + WINDOW)
    assert store.count_failure("203.0.113.7", later, WINDOW)[0] == 2


def test_concurrent_failures_are_each_counted_once(store: Store) -> None:
    for _ in range(3):
        store.count_failure("203.0.113.7", T0, WINDOW)
    now = T0 + WINDOW  # every thread finds the window ended: one starts the next
    with ThreadPoolExecutor(8) as pool:
        counted = list(
            pool.map(lambda _: store.count_failure("203.0.113.7", now, WINDOW), range(40))
        )
    assert sorted(count for count, _ in counted) == list(range(1, 41))
    assert {ends for _, ends in counted} == {now + WINDOW}
