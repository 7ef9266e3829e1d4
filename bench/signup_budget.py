"""Where a signup's CPU goes, layer by layer, against the floor of each layer.

Issue 23 asks for 3x pinax-referrals' signups on one server process, or measured
evidence of what would reach it. `bench/signup_peers.py` gives the ratio; this gives
the budget: the CPU time per request of each layer of our signup and of the plainest
thing that could stand in its place, measured in one process, in one run, in
interleaved rounds (the best of each), with no server and no network:

- the web layer: a bare Starlette route, bare FastAPI routes (`async def`, and `def`,
  which FastAPI runs in its thread pool), our `/livez`, and our `POST /v1/signups`
  through the whole app with its real SQLite store (`synchronous=FULL`);
- the use case: `sign_up` called directly on that store;
- the statements: the INSERT of an outbox event through SQLAlchemy Core
  (`Connection.execute`) and the same INSERT through the sqlite3 module, and a durable
  commit of one row (wall time).

    python -m bench.signup_budget [--rounds 12] [--requests 200]

CPU time is the process's (`time.process_time`: every thread, so a `def` route's
worker thread counts). The ASGI app is called directly: a server (uvicorn with
httptools) adds its own cost to every request, the same for all of them.
"""

import argparse
import asyncio
import json
import os
import sqlite3
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from pydantic import BaseModel
from sqlalchemy import insert
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from referrals.adapters.sql.schema import outbox
from referrals.api.app import create_app
from referrals.bootstrap import Services, build
from referrals.config import Settings
from referrals.domain.program import DEFAULT_PROGRAM
from referrals.services.keys import create_first_admin_key
from referrals.services.referrers import enroll
from referrals.services.signups import sign_up

Asgi = Callable[..., Awaitable[None]]
REFERRERS = 200


async def call(app: Asgi, method: str, path: str, body: bytes = b"", key: str = "") -> int:
    """One request through `app`, as a server would hand it over; its status."""
    headers = [(b"host", b"bench"), (b"content-type", b"application/json")]
    headers.append((b"content-length", str(len(body)).encode()))
    if key:
        headers.append((b"authorization", f"Bearer {key}".encode()))
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": headers,
        "client": ("127.0.0.1", 40000),
        "server": ("127.0.0.1", 8000),
        "state": {},
    }
    messages = [{"type": "http.request", "body": body, "more_body": False}]
    status: list[int] = []

    async def receive() -> dict[str, Any]:
        if messages:
            return messages.pop()
        await asyncio.Event().wait()  # the client never disconnects
        raise AssertionError

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            status.append(message["status"])

    await app(scope, receive, send)
    return status[0]


class Body(BaseModel):
    user_id: str
    referral_code: str


def bare_apps() -> dict[str, Asgi]:
    """The floors of the web layer: the same POST, parsed and answered, nothing else."""

    async def starlette_signup(request: Request) -> JSONResponse:
        body = await request.json()
        return JSONResponse({"user_id": body["user_id"]}, status_code=201)

    bare_async = FastAPI()
    bare_def = FastAPI()

    @bare_async.post("/signup", status_code=201)
    async def async_signup(body: Body) -> dict[str, str]:
        return {"user_id": body.user_id}

    @bare_def.post("/signup", status_code=201)
    def def_signup(body: Body) -> dict[str, str]:
        return {"user_id": body.user_id}

    return {
        "Starlette, async route": Starlette(
            routes=[Route("/signup", starlette_signup, methods=["POST"])]
        ),
        "FastAPI, async route": bare_async,
        "FastAPI, def route (thread pool)": bare_def,
    }


class Ours:
    """Our app and store on a SQLite file, with referrers and an admin key."""

    def __init__(self, folder: Path) -> None:
        url = f"sqlite:///{folder / 'referrals.db'}"
        self.services: Services = build(Settings(database_url=url, scheduler=False), migrate=True)
        self.app = create_app(self.services)
        svc = self.services
        self.key = create_first_admin_key(svc.store, svc.clock) or ""
        enrolled = (enroll(svc.store, svc.clock, f"ref-{i}") for i in range(REFERRERS))
        self.codes = [enrollment.referrer.code for enrollment in enrolled]
        self.signups = 0

    def next_signup(self) -> tuple[str, str]:
        self.signups += 1
        return f"referee-{self.signups}", self.codes[self.signups % REFERRERS]

    def signup_body(self) -> bytes:
        user_id, code = self.next_signup()
        return json.dumps({"user_id": user_id, "referral_code": code}).encode()

    def use_case(self) -> None:
        svc = self.services
        user_id, code = self.next_signup()
        sign_up(
            svc.store,
            svc.clock,
            svc.rules.for_signup(DEFAULT_PROGRAM, svc.clock.now()),
            user_id,
            code,
        )


def statements(folder: Path, count: int) -> dict[str, float]:
    """µs of CPU per INSERT of an outbox event, SQLAlchemy Core vs the sqlite3 module, in
    one transaction each; and the CPU and wall µs of a durable commit of one row."""
    ours = build(Settings(database_url=f"sqlite:///{folder / 'statements.db'}"), migrate=True)
    engine = ours.store.writer  # type: ignore[attr-defined]
    now = datetime.now(UTC)
    row = {
        "type": "referral.created",
        "payload": '{"referral_id":"x"}',
        "created_at": now,
        "status": "pending",
        "attempts": 0,
        "next_attempt_at": now,
        "last_error": None,
    }
    statement = insert(outbox)
    with engine.begin() as connection:
        started = time.process_time()
        for i in range(count):
            connection.execute(statement, {**row, "id": f"core-{i}"})
        core = time.process_time() - started
    plain = sqlite3.connect(folder / "statements.db", isolation_level=None)
    plain.execute("PRAGMA synchronous=FULL")
    sql = (
        "INSERT INTO outbox (id, type, payload, created_at, status, attempts, "
        "next_attempt_at, last_error) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
    )
    micros = int(now.timestamp() * 1_000_000)
    plain.execute("BEGIN IMMEDIATE")
    started = time.process_time()
    for i in range(count):
        values = (f"plain-{i}", "referral.created", '{"referral_id":"x"}', micros)
        plain.execute(sql, (*values, "pending", 0, micros, None))
    driver = time.process_time() - started
    plain.execute("COMMIT")
    plain.execute("CREATE TABLE IF NOT EXISTS beat (n INTEGER)")
    started, cpu = time.perf_counter(), time.process_time()
    for i in range(count // 4):
        plain.execute("INSERT INTO beat VALUES (?)", (i,))  # autocommit: one durable commit
    commit, commit_cpu = time.perf_counter() - started, time.process_time() - cpu
    plain.close()
    engine.dispose()
    return {
        "INSERT, SQLAlchemy Core": core / count * 1e6,
        "INSERT, sqlite3 module": driver / count * 1e6,
        "durable commit of one row, CPU": commit_cpu / (count // 4) * 1e6,
        "durable commit of one row, wall µs": commit / (count // 4) * 1e6,
    }


async def cpu_per_request(work: Callable[[], Awaitable[object]], requests: int) -> float:
    started = time.process_time()
    for _ in range(requests):
        await work()
    return (time.process_time() - started) / requests * 1e6


async def measure(rounds: int, requests: int, folder: Path) -> dict[str, float]:
    ours = Ours(folder)
    bare = bare_apps()
    body = json.dumps({"user_id": "u-1", "referral_code": "CODE"}).encode()

    async def use_case() -> None:
        ours.use_case()

    async def signup() -> None:
        status = await call(ours.app, "POST", "/v1/signups", ours.signup_body(), ours.key)
        assert status == 201, status

    work: dict[str, Callable[[], Awaitable[object]]] = {
        name: (lambda app=app: call(app, "POST", "/signup", body)) for name, app in bare.items()
    }
    work["ours, GET /livez"] = lambda: call(ours.app, "GET", "/livez")
    work["ours, POST /v1/signups (SQLite)"] = signup
    work["ours, sign_up() alone (SQLite)"] = use_case
    best = dict.fromkeys(work, float("inf"))
    async with ours.app.router.lifespan_context(ours.app):
        for what in work.values():  # warm up: caches, compiled statements, the pool
            for _ in range(50):
                await what()
        for _ in range(rounds):
            for name, what in work.items():
                best[name] = min(best[name], await cpu_per_request(what, requests))
    ours.services.store.writer.dispose()  # type: ignore[attr-defined]
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=12)
    parser.add_argument("--requests", type=int, default=200)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        figures = asyncio.run(measure(args.rounds, args.requests, folder))
        figures |= statements(folder, 2000)
    print(f"load average {os.getloadavg()[0]:.1f}; CPU µs per request, best of {args.rounds}:")
    print("| what | µs |\n|---|---:|")
    for name, value in figures.items():
        print(f"| {name} | {value:,.1f} |")
    web = figures["ours, POST /v1/signups (SQLite)"] - figures["ours, sign_up() alone (SQLite)"]
    core, driver = figures["INSERT, SQLAlchemy Core"], figures["INSERT, sqlite3 module"]
    print(
        f"\nour web layer on a signup: {web:,.0f} µs (bare FastAPI def route: "
        f"{figures['FastAPI, def route (thread pool)']:,.0f}, bare Starlette: "
        f"{figures['Starlette, async route']:,.0f}); SQLAlchemy Core over the driver: "
        f"{core - driver:,.0f} µs per statement ({core / driver:.1f}x)"
    )


if __name__ == "__main__":
    main()
