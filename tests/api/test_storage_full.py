"""A full disk under the SQLite database: writes answer 503 storage_unavailable and write
nothing, readiness says 503, one log line a minute; once room is made, writes go on."""

import errno
import logging
import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from referrals.api.app import create_app
from referrals.bootstrap import Services, build
from referrals.config import Settings
from referrals.domain.model import Role
from referrals.services.keys import create_key


@pytest.fixture
def disk(tmp_path: Path) -> Iterator[Path]:
    """A 4 MiB filesystem of its own (a tmpfs), to fill without filling the machine's."""
    mount_point = tmp_path / "disk"
    mount_point.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mount_point)],
        capture_output=True,
        text=True,
        check=False,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs CAP_SYS_ADMIN): {mounted.stderr.strip()}")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=False)


@pytest.fixture
def services(disk: Path, tmp_path: Path) -> Iterator[Services]:
    settings = Settings(database_url=f"sqlite:///{disk}/full.db", reports_url=str(tmp_path))
    svc = build(settings, migrate=True)
    yield svc
    svc.store.dispose()


def fill(disk: Path) -> Path:
    """Empty the database's log into its file, then take every byte left."""
    with sqlite3.connect(disk / "full.db") as db:
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    filler = disk / "filler"
    with filler.open("wb") as out:
        try:
            while True:
                out.write(b"\0" * 65536)
                out.flush()
        except OSError as error:
            assert error.errno == errno.ENOSPC
    return filler


def test_a_full_disk_answers_503_writes_nothing_and_recovers(
    services: Services, disk: Path, caplog: pytest.LogCaptureFixture
) -> None:
    client = TestClient(create_app(services))
    plaintext, _ = create_key(services.store, services.clock, Role.ADMIN)
    admin = {"Authorization": f"Bearer {plaintext}"}
    code = client.post("/v1/referrers", json={"user_id": "alice"}, headers=admin).json()["code"]
    filler = fill(disk)

    with caplog.at_level(logging.WARNING, logger="referrals.storage"):
        for n in range(5):
            body = {"user_id": f"bob-{n}", "referral_code": code}
            refused = client.post("/v1/signups", json=body, headers=admin)
            assert refused.status_code == 503, refused.text
            assert refused.json()["code"] == "storage_unavailable"
    assert client.get("/readyz").status_code == 503
    lines = [r for r in caplog.records if r.name == "referrals.storage"]
    assert len(lines) == 1 and lines[0].exc_info is None  # one line, no traceback

    filler.unlink()
    assert client.get("/readyz").status_code == 200
    assert client.get("/v1/referrers/alice", headers=admin).json()["referral_count"] == 0
    signed = client.post(
        "/v1/signups", json={"user_id": "bob", "referral_code": code}, headers=admin
    )
    assert signed.status_code == 201 and signed.json()["referral"]["ordinal"] == 1


def test_a_read_only_database_answers_503(services: Services, disk: Path) -> None:
    client = TestClient(create_app(services))
    plaintext, _ = create_key(services.store, services.clock, Role.ADMIN)
    services.store.dispose()
    subprocess.run(["mount", "-o", "remount,ro", str(disk)], check=True)
    try:
        refused = client.post(
            "/v1/referrers",
            json={"user_id": "alice"},
            headers={"Authorization": f"Bearer {plaintext}"},
        )
        assert refused.status_code == 503, refused.text
        assert refused.json()["code"] == "storage_unavailable"
        assert client.get("/readyz").status_code == 503
    finally:
        subprocess.run(["mount", "-o", "remount,rw", str(disk)], check=True)
