"""A bug answers one 500 problem, is logged once, and the client's connection stays open."""

import logging
import socket
import threading
import time
from collections.abc import Iterator

import pytest
import uvicorn
from fastapi import FastAPI

from referrals.api.app import create_app
from referrals.bootstrap import Services


@pytest.fixture
def app(services: Services) -> FastAPI:
    built = create_app(services)

    def broken() -> None:
        raise RuntimeError("a bug")

    built.add_api_route("/test/broken", broken)
    return built


@pytest.fixture
def served(app: FastAPI) -> Iterator[int]:
    """The app on a real uvicorn server (keep-alive is the server's), on a free port."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "the server did not start"
        time.sleep(0.01)
    yield port
    server.should_exit = True
    thread.join(10)


def exchange(conn: socket.socket, path: str) -> bytes:
    """One HTTP/1.1 request on an open connection; the whole response (Content-Length)."""
    conn.sendall(f"GET {path} HTTP/1.1\r\nHost: test\r\n\r\n".encode())
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        assert chunk, f"the server closed the connection after {data!r}"
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = next(
        int(line.split(b":")[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    )
    while len(body) < length:
        chunk = conn.recv(65536)
        assert chunk, "the server closed the connection mid-body"
        body += chunk
    return data


def test_a_500_keeps_the_connection_for_the_next_request(
    served: int, caplog: pytest.LogCaptureFixture
) -> None:
    with socket.create_connection(("127.0.0.1", served), timeout=10) as conn:
        failed = exchange(conn, "/test/broken")
        assert failed.startswith(b"HTTP/1.1 500")
        assert b'"code":"internal_error"' in failed and b"a bug" not in failed
        assert exchange(conn, "/healthz").startswith(b"HTTP/1.1 200")  # the same connection


def test_a_500_is_logged_once_with_its_traceback(
    served: int, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR):
        with socket.create_connection(("127.0.0.1", served)) as conn:
            exchange(conn, "/test/broken")
        # The server logs an error it sees after the answer: wait for a later request.
        with socket.create_connection(("127.0.0.1", served)) as conn:
            exchange(conn, "/healthz")
    errors = [record for record in caplog.records if record.levelno >= logging.ERROR]
    assert len(errors) == 1, [record.getMessage() for record in errors]
    assert errors[0].exc_info is not None and "a bug" in str(errors[0].exc_info[1])
