"""A server killed with SIGKILL mid-load loses no acknowledged signup and no ordinal."""

import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from referrals.domain.tiers import DEFAULT_TIERS

pytestmark = pytest.mark.e2e

LOAD_THREADS = 6
REFERRERS = 3
ACKS_BEFORE_KILL = 60


class SignupLoad:
    """Threads that sign up fresh users back to back and remember what the server acknowledged."""

    def __init__(self, server: Any, key: str, codes: list[str]) -> None:
        self._server = server
        self._key = key
        self._codes = codes
        self._lock = threading.Lock()
        self.stop = threading.Event()
        self.acked: dict[str, dict[str, Any]] = {}  # user id -> the referral in the 2xx answer
        self.transport_errors = 0
        self.unexpected: list[tuple[str, int, str]] = []
        self._threads = [
            threading.Thread(target=self._run, args=(n,), daemon=True) for n in range(LOAD_THREADS)
        ]

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def join(self) -> None:
        self.stop.set()
        for thread in self._threads:
            thread.join(timeout=60)
            assert not thread.is_alive(), "a load thread hung after the server died"

    def acked_count(self) -> int:
        with self._lock:
            return len(self.acked)

    def _run(self, worker: int) -> None:
        client = self._server.client(self._key)
        i = 0
        while not self.stop.is_set():
            user_id = f"load-{worker}-{i}"
            body = {"user_id": user_id, "referral_code": self._codes[i % len(self._codes)]}
            i += 1
            try:
                response = client.post("/v1/signups", json=body)
            except httpx.TransportError:
                # The server died with this request in flight: it may or may not be
                # committed, and the test only holds the server to what it acknowledged.
                with self._lock:
                    self.transport_errors += 1
                continue
            with self._lock:
                if response.is_success:
                    self.acked[user_id] = response.json()["referral"]
                else:
                    self.unexpected.append((user_id, response.status_code, response.text))


def test_sigkill_during_signups_loses_no_acknowledged_signup(
    servers: Any, database: Path, all_referrals: Any
) -> None:
    first = servers.start(database)
    key = first.printed_key
    assert key is not None, first.output()
    admin = first.client(key)
    codes = []
    for n in range(REFERRERS):
        response = admin.post("/v1/referrers", json={"user_id": f"referrer-{n}"})
        assert response.status_code == 201, response.text
        codes.append(response.json()["code"])
    # The PID we signal must be the process uvicorn serves from, not a wrapper around it.
    assert first.uvicorn_pid() == first.pid, first.output()

    load = SignupLoad(first, key, codes)
    load.start()
    deadline = time.monotonic() + 30
    while load.acked_count() < ACKS_BEFORE_KILL:
        assert time.monotonic() < deadline, f"load too slow: {load.acked_count()} acks in 30 s"
        assert not load.unexpected, load.unexpected[:3]
        time.sleep(0.02)
    first.kill()
    # Let every worker notice the dead server before stopping, so the kill hit live load.
    deadline = time.monotonic() + 10
    while load.transport_errors < LOAD_THREADS and time.monotonic() < deadline:
        time.sleep(0.02)
    load.join()
    assert load.transport_errors > 0, "the server was killed while no request was running"
    assert load.unexpected == [], load.unexpected[:3]

    second = servers.start(database)
    assert second.printed_key is None, "a database that has a key must not get a new admin key"
    admin = second.client(key)

    stored: dict[str, dict[str, Any]] = {}
    for n in range(REFERRERS):
        referrer_id = f"referrer-{n}"
        items = all_referrals(admin, f"/v1/referrers/{referrer_id}/referrals")
        count = admin.get(f"/v1/referrers/{referrer_id}").json()["referral_count"]
        assert [item["ordinal"] for item in items] == list(range(1, count + 1)), referrer_id
        for item in items:
            assert item["reward_cents"] == DEFAULT_TIERS.reward_for(item["ordinal"]), item
            stored[item["referee_id"]] = item

    lost = sorted(set(load.acked) - set(stored))
    assert lost == [], f"{len(lost)} acknowledged signups lost, e.g. {lost[:5]}"
    for user_id, answered in load.acked.items():
        # What the client was told (id, ordinal, price) is what the database kept.
        assert stored[user_id] == answered, user_id
