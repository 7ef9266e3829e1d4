"""Browser tests: a real server on 127.0.0.1 and Debian's headless Chromium, driven by Playwright.

Each test's last screen is saved to `test-artifacts/screenshots/<test>.png`, so a
failure (or a review) can be looked at.
"""

import re
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from playwright.sync_api import Browser, Page, sync_playwright

from referrals.api.app import create_app
from referrals.bootstrap import Services, build
from referrals.config import Settings
from referrals.domain.model import Role
from referrals.ports import Clock
from referrals.services.keys import create_key

SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
START_TIMEOUT_S = 20.0


@dataclass
class LiveServer:
    base_url: str
    services: Services
    admin_key: str
    ingest_key: str

    def api(self, key: str | None = None) -> httpx.Client:
        """An HTTP client of the JSON API, with the admin key unless told otherwise."""
        token = key or self.admin_key
        return httpx.Client(
            base_url=self.base_url, headers={"Authorization": f"Bearer {token}"}, timeout=30
        )


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    """Settings a test module needs changed (override this fixture)."""
    return {}


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def live_clock() -> Clock | None:
    """The clock the server runs on (override this fixture); None: the system's."""
    return None


@pytest.fixture
def live(
    tmp_path: Path, settings_overrides: dict[str, Any], live_clock: Clock | None
) -> Iterator[LiveServer]:
    """The app served by uvicorn on 127.0.0.1 in a thread, on a SQLite file."""
    settings = Settings(
        database_url=f"sqlite:///{tmp_path}/browser.db",
        reports_url=str(tmp_path / "reports"),
        scheduler=False,
        secret_key="browser-test-secret-0123456789abcdef",
        **settings_overrides,
    )
    services = build(settings, migrate=True)
    if live_clock is not None:
        services = replace(services, clock=live_clock)
    admin, _ = create_key(services.store, services.clock, Role.ADMIN)
    ingest, _ = create_key(services.store, services.clock, Role.INGEST)
    port = _free_port()
    config = uvicorn.Config(
        create_app(services), host="127.0.0.1", port=port, log_level="warning", lifespan="on"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + START_TIMEOUT_S
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            pytest.fail("the test server did not start")
        time.sleep(0.02)
    yield LiveServer(f"http://127.0.0.1:{port}", services, admin, ingest)
    server.should_exit = True
    thread.join(timeout=10)
    services.store.dispose()  # type: ignore[attr-defined]


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    # Per module, not per session: Playwright's sync API holds an asyncio loop running
    # in this thread until it stops, and later tests that run their own loop here (the
    # Lambda handler through Mangum) would find it "already running".
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser: Browser, request: pytest.FixtureRequest) -> Iterator[Page]:
    """A fresh browser context (no cookies) per test; its last screen is saved."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    yield page
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.name)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)
    context.close()
