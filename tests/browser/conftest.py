"""Fixtures for the browser suite: a demo database, ``streamlit run`` on a free port, Chromium.

The server runs as a subprocess on a temporary demo database whose data ends at the current
hour, so the presets show data. Chromium is Debian's (/usr/bin/chromium), never a download.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, Playwright, expect, sync_playwright

from stratlog.demo import floor_hour, write_demo
from stratlog.ui.bridge import Backend
from tests.browser import hostile
from tests.browser.chromium import CHROMIUM, CHROMIUM_ARGS
from tests.net import free_port

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"
DEMO_ROWS = 30_000
DEMO_DAYS = 7
SERVER_START_S = 60
#: The first page of a fresh server imports pandas, Altair... give every wait some room.
WAIT_MS = 30_000
expect.set_options(timeout=WAIT_MS)


@dataclass(frozen=True)
class Dashboard:
    """A running dashboard: its base URL and the demo data's last moment."""

    base: str
    end: datetime
    url: str

    def at(self, path: str = "") -> str:
        """An absolute URL of the app."""
        return f"{self.base}/{path.lstrip('/')}"


def wait_healthy(base: str, process: subprocess.Popen[bytes], log: Path) -> None:
    """Block until Streamlit answers its health check (or fail with the server log)."""
    deadline = time.monotonic() + SERVER_START_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"streamlit exited early:\n{log.read_text()}")
        try:
            with urllib.request.urlopen(f"{base}/_stcore/health", timeout=1) as answer:
                if answer.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"streamlit did not become healthy:\n{log.read_text()}")


@pytest.fixture(scope="package")
def demo_database(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, datetime]:
    """A demo SQLite database whose data ends at the current hour, plus hostile rows."""
    url = f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('browser-demo') / 'demo.db'}"
    end = floor_hour(datetime.now(UTC))
    backend = Backend(url)
    try:
        backend.run(write_demo(backend.repository, DEMO_ROWS, days=DEMO_DAYS, end=end), 120)
        backend.run(backend.repository.insert_many(hostile.rows(end)))
    finally:
        backend.close()
    return url, end


@contextmanager
def streamlit_server(url: str, log: Path, *extra: str) -> Iterator[str]:
    """``streamlit run dashboard.py`` on a free port against ``url``; yields the base URL."""
    port = free_port()
    command = [
        sys.executable, "-m", "streamlit", "run", str(ROOT / "dashboard.py"),
        "--server.port", str(port), "--server.address", "127.0.0.1",
        "--server.headless", "true", "--server.fileWatcherType", "none",
        "--browser.gatherUsageStats", "false", "--client.showErrorDetails", "full", *extra,
    ]  # fmt: skip
    env = {**os.environ, "STRATLOG_DATABASE_URL": url}
    with log.open("wb") as sink:
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=sink, stderr=sink)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(base, process, log)
        yield base
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


@pytest.fixture(scope="package")
def dashboard(
    demo_database: tuple[str, datetime], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Dashboard]:
    """The dashboard on the demo database; stopped when the browser tests end.

    Package scope: the sync Playwright driver runs its own event loop in this thread, which
    must be gone before the asyncio tests of other packages run.
    """
    url, end = demo_database
    log = tmp_path_factory.mktemp("browser-server") / "streamlit.log"
    with streamlit_server(url, log) as base:
        yield Dashboard(base=base, end=end, url=url)


@pytest.fixture(scope="package")
def playwright() -> Iterator[Playwright]:
    """The Playwright driver (sync API)."""
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="package")
def browser(playwright: Playwright) -> Iterator[Browser]:
    """Headless Debian Chromium."""
    chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
    yield chromium
    chromium.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    """A fresh browser context (no cookies, no session) and page per test."""
    context = browser.new_context(viewport={"width": 1440, "height": 1000})
    context.set_default_timeout(WAIT_MS)
    yield context.new_page()
    context.close()


@pytest.fixture(scope="package", autouse=True)
def artifacts() -> Path:
    """The folder for screenshots (git-ignored)."""
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS
