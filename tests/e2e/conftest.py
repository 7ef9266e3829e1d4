"""Fixtures that run the real `referrals` console script: a served API and the CLI."""

import itertools
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

READY_TIMEOUT_S = 20.0
STOP_TIMEOUT_S = 10.0
CLI_TIMEOUT_S = 120.0
# Concurrent signups queue on SQLite's single writer; a short client timeout
# would turn a slow-but-correct answer into a spurious failure.
HTTP_TIMEOUT_S = 30.0


def referrals_script() -> Path:
    # The console script sits next to the interpreter of the venv running pytest.
    # There is no `python -m referrals`, and the script execs python directly, so
    # the PID of the spawned process is the server itself (what SIGKILL must hit).
    script = Path(sys.executable).parent / "referrals"
    if not script.exists():
        pytest.fail(f"the `referrals` console script is not installed next to {sys.executable}")
    return script


def referrals_env(database: Path | str, workdir: Path, pycache: Path) -> dict[str, str]:
    """The environment of a spawned `referrals`: `database` is a SQLite file or a URL."""
    # A developer's own REFERRALS_* settings (tiers, database) must not leak into the run.
    env = {k: v for k, v in os.environ.items() if not k.startswith("REFERRALS_")}
    # The venv ships no bytecode and `make` sets PYTHONDONTWRITEBYTECODE, so every
    # process would compile FastAPI, SQLAlchemy and Alembic again (seconds per start).
    # A private cache outside the tree keeps startups short without touching the venv.
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = str(pycache)
    url = database if isinstance(database, str) else f"sqlite:///{database}"
    env["REFERRALS_DATABASE_URL"] = url
    env["REFERRALS_REPORTS_URL"] = str(workdir / "reports")
    env["REFERRALS_SCHEDULER"] = "off"
    # Rich wraps tables to the terminal width; a wide one keeps each row on one line.
    env["COLUMNS"] = "200"
    env["PYTHONUNBUFFERED"] = "1"
    return env


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class ServerProcess:
    process: subprocess.Popen[bytes]
    port: int
    stdout_path: Path
    stderr_path: Path
    printed_key: str | None = None
    _clients: list[httpx.Client] = field(default_factory=list)

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def output(self) -> str:
        out = self.stdout_path.read_text(errors="replace")
        err = self.stderr_path.read_text(errors="replace")
        return f"--- stdout ---\n{out}\n--- stderr ---\n{err}"

    def uvicorn_pid(self) -> int | None:
        """The PID uvicorn reports for the process that serves requests."""
        found = re.search(r"Started server process \[(\d+)\]", self.stderr_path.read_text())
        return int(found.group(1)) if found else None

    def client(self, key: str | None = None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        client = httpx.Client(base_url=self.base_url, headers=headers, timeout=HTTP_TIMEOUT_S)
        self._clients.append(client)
        return client

    def kill(self) -> None:
        """SIGKILL: no shutdown hook, no flush, exactly like a power cut of the process."""
        os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=STOP_TIMEOUT_S)

    def stop(self) -> None:
        for client in self._clients:
            client.close()
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=STOP_TIMEOUT_S)


class ServerFactory:
    """Starts `referrals serve` processes; any database file can be served again later."""

    def __init__(self, workdir: Path, pycache: Path) -> None:
        self.workdir = workdir
        self.pycache = pycache
        self.started: list[ServerProcess] = []
        # Servers may be started from several threads at once: each its own files.
        self._names = itertools.count()

    def start(
        self, database: Path | str, env: dict[str, str] | None = None, workers: int = 1
    ) -> ServerProcess:
        """A healthy server on `database`; `env`: REFERRALS_* settings of its own."""
        printed: str | None = None
        # Another process may grab the probed port before uvicorn binds it: try a new one.
        for _ in range(3):
            server = self._spawn(database, env or {}, workers)
            if self.wait_ready(server):
                break
            printed = printed or server.printed_key
            if "address already in use" not in server.output().lower():
                pytest.fail(f"`referrals serve` did not become healthy:\n{server.output()}")
        else:
            pytest.fail(f"`referrals serve` found no free port:\n{server.output()}")
        server.printed_key = server.printed_key or printed
        return server

    def _spawn(self, database: Path | str, env: dict[str, str], workers: int) -> ServerProcess:
        port = free_port()
        n = next(self._names)
        stdout_path = self.workdir / f"serve-{n}.stdout"
        stderr_path = self.workdir / f"serve-{n}.stderr"
        # Files, not pipes: nobody has to drain them while the server logs every request.
        with stdout_path.open("wb") as out, stderr_path.open("wb") as err:
            process = subprocess.Popen(
                [
                    *(str(referrals_script()), "serve", "--host", "127.0.0.1"),
                    *("--port", str(port), "--workers", str(workers)),
                ],
                stdout=out,
                stderr=err,
                env=referrals_env(database, self.workdir, self.pycache) | env,
                cwd=self.workdir,
            )
        server = ServerProcess(process, port, stdout_path, stderr_path)
        self.started.append(server)
        return server

    def wait_ready(self, server: ServerProcess) -> bool:
        deadline = time.monotonic() + READY_TIMEOUT_S
        while time.monotonic() < deadline:
            if server.process.poll() is not None:
                server.printed_key = _printed_key(server.stdout_path)
                return False
            try:
                if httpx.get(f"{server.base_url}/healthz", timeout=2.0).status_code == 200:
                    # The key is printed and flushed before uvicorn starts, so it is there now.
                    server.printed_key = _printed_key(server.stdout_path)
                    return True
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        server.stop()
        pytest.fail(
            f"`referrals serve` not healthy after {READY_TIMEOUT_S:.0f} s:\n{server.output()}"
        )

    def stop_all(self) -> None:
        for server in self.started:
            server.stop()


def _printed_key(stdout_path: Path) -> str | None:
    keys = [line for line in stdout_path.read_text().splitlines() if line.startswith("rk_")]
    assert len(keys) <= 1, f"more than one key printed: {keys}"
    return keys[0] if keys else None


WARM_UP_IMPORTS = (
    "import referrals.cli, referrals.api.app, referrals.adapters.sql.migrate, "
    "alembic.command, uvicorn.main, uvicorn.protocols.http.auto, uvicorn.loops.auto"
)


@pytest.fixture(scope="session")
def pycache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A bytecode cache for the spawned processes, filled once before any timed wait."""
    cache = tmp_path_factory.mktemp("pycache")
    workdir = tmp_path_factory.mktemp("warm-up")
    # Compiling the dependencies takes seconds on a busy machine; doing it here keeps
    # that cost out of the server's bounded start-up wait.
    done = subprocess.run(
        [sys.executable, "-c", WARM_UP_IMPORTS],
        env=referrals_env(workdir / "unused.db", workdir, cache),
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT_S,
        check=False,
    )
    if done.returncode != 0:
        pytest.fail(f"the referrals package does not import:\n{done.stderr}")
    return cache


@pytest.fixture
def database(tmp_path: Path) -> Path:
    return tmp_path / "referrals.db"


@pytest.fixture
def servers(tmp_path: Path, pycache: Path) -> Iterator[ServerFactory]:
    factory = ServerFactory(tmp_path, pycache)
    try:
        yield factory
    finally:
        factory.stop_all()


@pytest.fixture
def server(servers: ServerFactory, database: Path) -> ServerProcess:
    """A server on a fresh database, with the admin key it printed on first start."""
    started = servers.start(database)
    assert started.printed_key is not None, started.output()
    return started


@pytest.fixture
def admin(server: ServerProcess) -> httpx.Client:
    assert server.printed_key is not None
    return server.client(server.printed_key)


@pytest.fixture(scope="module")
def module_server(
    tmp_path_factory: pytest.TempPathFactory, pycache: Path
) -> Iterator[ServerProcess]:
    """One server for a module whose tests use disjoint users: each start costs seconds."""
    workdir = tmp_path_factory.mktemp("serve")
    factory = ServerFactory(workdir, pycache)
    try:
        started = factory.start(workdir / "referrals.db")
        assert started.printed_key is not None, started.output()
        yield started
    finally:
        factory.stop_all()


def fetch_referrals(
    client: httpx.Client, path: str, limit: int = 500, **params: Any
) -> list[dict[str, Any]]:
    """Every item of a paginated referral list, following next_cursor to the end."""
    items: list[dict[str, Any]] = []
    query: dict[str, Any] = {"limit": limit, **params}
    for _ in range(10_000):
        response = client.get(path, params=query)
        assert response.status_code == 200, response.text
        page = response.json()
        items.extend(page["items"])
        if page["next_cursor"] is None:
            return items
        query["cursor"] = page["next_cursor"]
    raise AssertionError(f"{path} never returned a last page")


@pytest.fixture
def all_referrals() -> Callable[..., list[dict[str, Any]]]:
    return fetch_referrals


@dataclass(frozen=True)
class CliResult:
    returncode: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return f"{self.stdout}\n{self.stderr}"


@pytest.fixture
def cli(tmp_path: Path, database: Path | str, pycache: Path) -> Callable[..., CliResult]:
    """Run `referrals ARGS...` on the test's database, as an operator would."""

    def run(*args: str) -> CliResult:
        done = subprocess.run(
            [str(referrals_script()), *args],
            capture_output=True,
            text=True,
            env=referrals_env(database, tmp_path, pycache),
            cwd=tmp_path,
            timeout=CLI_TIMEOUT_S,
            check=False,
        )
        return CliResult(done.returncode, done.stdout, done.stderr)

    return run
