"""The life of a server, as an operator lives it: start, write, stop, start again, write.

Each write must be answered within a few seconds, after every kind of stop, on
SQLite and on PostgreSQL, and the readiness check (`/readyz`, which takes the write
path) must say 200 throughout: nothing a start, a stop or a command leaves behind
may hold the database's write lock.
Also: a key made before the first start, `db upgrade` first, two servers on one
PostgreSQL database, a taken port, `make run` twice, and a database left at the
previous release's schema upgraded by the next start with its data.
"""

import os
import signal
import subprocess
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine

from referrals.adapters.sql.migrate import MIGRATIONS
from referrals.domain.periods import last_ended_period
from tests.e2e.conftest import (
    CliResult,
    ServerFactory,
    ServerProcess,
    free_port,
    referrals_env,
    referrals_script,
)
from tests.postgresql import locale_database

pytestmark = pytest.mark.e2e

# A write on a healthy server takes milliseconds; the hang this guards against
# answered after 60 s with a 500.
WRITE_TIMEOUT_S = 5.0


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Path | str]:
    """The database a test's servers and commands share: a SQLite file or a PostgreSQL URL."""
    if request.param == "sqlite":
        yield tmp_path / "referrals.db"
        return
    with locale_database("referrals_life") as url:
        yield url


def ready(server: ServerProcess) -> None:
    response = httpx.get(f"{server.base_url}/readyz", timeout=WRITE_TIMEOUT_S)
    assert response.status_code == 200, f"{response.text}\n{server.output()}"


def sign_up(server: ServerProcess, key: str, user: str, code: str) -> dict[str, object]:
    """One signup, answered within WRITE_TIMEOUT_S or the test fails."""
    with httpx.Client(
        base_url=server.base_url,
        headers={"Authorization": f"Bearer {key}"},
        timeout=WRITE_TIMEOUT_S,
    ) as client:
        response = client.post("/v1/signups", json={"user_id": user, "referral_code": code})
    assert response.status_code == 201, f"{response.text}\n{server.output()}"
    referral: dict[str, object] = response.json()["referral"]
    return referral


def enroll(server: ServerProcess, key: str, user: str) -> str:
    with httpx.Client(
        base_url=server.base_url,
        headers={"Authorization": f"Bearer {key}"},
        timeout=WRITE_TIMEOUT_S,
    ) as client:
        response = client.post("/v1/referrers", json={"user_id": user})
    assert response.status_code == 201, f"{response.text}\n{server.output()}"
    code: str = response.json()["code"]
    return code


def stop(server: ServerProcess, how: signal.Signals) -> None:
    server.process.send_signal(how)
    server.process.wait(timeout=10)


def test_a_server_restarted_again_and_again_keeps_accepting_writes(
    servers: ServerFactory, database: Path | str
) -> None:
    first = servers.start(database)
    key = first.printed_key
    assert key is not None, first.output()
    ready(first)
    code = enroll(first, key, "alice")
    assert sign_up(first, key, "bob-0", code)["ordinal"] == 1
    server = first
    for n, how in enumerate([signal.SIGTERM, signal.SIGKILL, signal.SIGTERM], start=1):
        stop(server, how)
        server = servers.start(database)
        assert server.printed_key is None, "a key is printed on the first start only"
        ready(server)
        assert sign_up(server, key, f"bob-{n}", code)["ordinal"] == n + 1
        ready(server)


def test_a_key_made_before_the_first_start_is_the_one_that_works(
    servers: ServerFactory, database: Path | str, cli: Callable[..., CliResult]
) -> None:
    made = cli("keys", "create", "--role", "admin")
    assert made.returncode == 0, made.output
    key = made.stdout.strip().splitlines()[-1]
    server = servers.start(database)
    assert server.printed_key is None  # the database has a key: none is made for it
    ready(server)
    code = enroll(server, key, "alice")
    assert sign_up(server, key, "bob", code)["ordinal"] == 1
    # And the command line still writes while the server runs.
    again = cli("keys", "create", "--role", "ingest")
    assert again.returncode == 0, again.output
    assert sign_up(server, again.stdout.strip().splitlines()[-1], "carol", code)["ordinal"] == 2


def test_db_upgrade_then_start(
    servers: ServerFactory, database: Path | str, cli: Callable[..., CliResult]
) -> None:
    upgraded = cli("db", "upgrade")
    assert upgraded.returncode == 0, upgraded.output
    assert "up to date" in upgraded.stdout
    server = servers.start(database)
    assert server.printed_key is not None, server.output()
    ready(server)
    code = enroll(server, server.printed_key, "alice")
    assert sign_up(server, server.printed_key, "bob", code)["ordinal"] == 1


def test_two_servers_started_on_one_postgresql_database_print_one_key(
    servers: ServerFactory, tmp_path: Path
) -> None:
    with locale_database("referrals_life") as url:
        # Started together, so that both find the database empty and race for the key.
        with ThreadPoolExecutor(max_workers=2) as pool:
            both = list(pool.map(servers.start, [url, url]))
        keys = [server.printed_key for server in both if server.printed_key]
        assert len(keys) == 1, [server.output() for server in both]
        code = enroll(both[0], keys[0], "alice")
        for n, server in enumerate(both, start=1):
            ready(server)
            assert sign_up(server, keys[0], f"bob-{n}", code)["ordinal"] == n


def test_a_server_on_a_taken_port_says_which_and_how_to_choose_another(
    servers: ServerFactory, tmp_path: Path, pycache: Path
) -> None:
    running = servers.start(tmp_path / "referrals.db")
    second = subprocess.run(
        [str(referrals_script()), "serve", "--port", str(running.port)],
        capture_output=True,
        text=True,
        env=referrals_env(tmp_path / "other.db", tmp_path, pycache),
        cwd=tmp_path,
        timeout=60,
        check=False,
    )
    assert second.returncode != 0
    assert f"port {running.port}" in second.stderr and "--port" in second.stderr
    assert "Traceback" not in second.stderr
    assert not (tmp_path / "other.db").exists()  # refused before touching any database
    ready(running)


REPO = Path(__file__).resolve().parents[2]


def test_make_run_twice_on_one_database_keeps_accepting_writes(
    tmp_path: Path, pycache: Path
) -> None:
    """The README's first command, as a user runs it on day one and on day two."""
    factory = ServerFactory(tmp_path, pycache)
    database = tmp_path / "referrals.db"
    key = None
    for day in (1, 2):
        port = free_port()
        env = referrals_env(database, tmp_path, pycache)
        stdout, stderr = tmp_path / f"make-run-{day}.stdout", tmp_path / f"make-run-{day}.stderr"
        with stdout.open("wb") as out, stderr.open("wb") as err:
            process = subprocess.Popen(
                ["make", "--no-print-directory", "run", f"PORT={port}"],
                cwd=REPO,
                env=env,
                stdout=out,
                stderr=err,
                start_new_session=True,  # make, and the server it runs, stop together
            )
        server = ServerProcess(process, port, stdout, stderr)
        try:
            assert factory.wait_ready(server), server.output()
            key = key or server.printed_key
            assert key is not None, server.output()
            assert (server.printed_key is not None) == (day == 1)
            assert f"http://127.0.0.1:{port}/docs" in server.output()
            assert f"http://127.0.0.1:{port}/dashboard" in server.output()
            ready(server)
            code = enroll(server, key, f"alice-{day}")
            assert sign_up(server, key, f"bob-{day}", code)["ordinal"] == 1
        finally:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(timeout=15)


def previous_schema(database: Path | str) -> str:
    """Take the database down to the schema before the newest migration, as the
    previous release left it; the revision it is at now."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    scripts = ScriptDirectory.from_config(config)
    revision = scripts.get_revision(scripts.get_current_head())
    assert revision is not None and isinstance(revision.down_revision, str)
    url = database if isinstance(database, str) else f"sqlite:///{database}"
    engine = create_engine(url)
    try:
        with engine.begin() as connection:
            config.attributes["connection"] = connection
            command.downgrade(config, revision.down_revision)
    finally:
        engine.dispose()
    return revision.down_revision


def test_a_database_left_by_the_previous_release_is_upgraded_on_start_with_its_data(
    servers: ServerFactory, database: Path | str
) -> None:
    first = servers.start(database)
    key = first.printed_key
    assert key is not None, first.output()
    code = enroll(first, key, "alice")
    last_month = last_ended_period(datetime.now(UTC))
    with httpx.Client(
        base_url=first.base_url, headers={"Authorization": f"Bearer {key}"}, timeout=30
    ) as client:
        imported = client.post(
            "/v1/signups",
            json={
                "user_id": "bob",
                "referral_code": code,
                "signed_up_at": last_month.start.isoformat(),
            },
        )
        assert imported.status_code == 201, imported.text
        paid = client.post("/v1/payouts", json={"period": str(last_month)})
        assert paid.status_code == 200 and paid.json()["status"] == "completed", paid.text
    stop(first, signal.SIGTERM)
    previous_schema(database)

    upgraded = servers.start(database)
    ready(upgraded)
    assert "migrated the database" in upgraded.output()
    with upgraded.client(key) as client:
        alice = client.get("/v1/referrers/alice").json()
        assert (alice["referral_count"], alice["paid_cents"]) == (1, 1000)
        run = client.get(f"/v1/payouts/{last_month}").json()
        assert run["status"] == "completed" and run["total_cents"] == 1000
        # The settings it priced with are the default program's first version, in force
        # from the beginning: what was earned before reads as priced by it.
        rules = client.get("/v1/programs/default").json()["current"]
        assert (rules["version"], rules["effective_from"]) == (1, "1970-01-01T00:00:00Z")
        assert rules["rules"]["tiers"][0] == {"threshold": 1, "reward_cents": 1000}
    assert sign_up(upgraded, key, "carol", code)["ordinal"] == 2
