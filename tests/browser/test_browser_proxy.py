"""Two dashboard processes behind a real nginx (``stratlog serve``), driven by Chromium.

A session's downloads and its websocket must reach the process that holds it: the test opens
the Overview through the proxy, downloads a PNG and the snapshot zip, reloads, finds the same
view on the same process, sees that fresh browsers are spread over both processes, and that a
killed process is restarted while its sessions carry on.
"""

from __future__ import annotations

import io
import os
import re
import signal
import subprocess
import sys
import time
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect

from stratlog.serve import AFFINITY_COOKIE, find_nginx, healthy
from tests.browser.conftest import ROOT, WAIT_MS, Dashboard
from tests.browser.test_browser_dashboard import (
    EXCEPTION,
    HEADER_CAPTION,
    PNG_MAGIC,
    day,
    download,
    open_page,
    params,
    screenshot,
)
from tests.net import free_port, free_ports_in_a_row

pytestmark = pytest.mark.browser

SERVED_BY = re.compile(r"Served by dashboard process (\d)/2 · pid (\d+) · port (\d+)")
START_S = 120


@dataclass(frozen=True)
class Proxied(Dashboard):
    """``stratlog serve`` running: the dashboard at nginx's base URL, and where its files are."""

    run_dir: Path = Path()


@pytest.fixture(scope="module")
def proxied(
    demo_database: tuple[str, datetime], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Proxied]:
    """``stratlog serve --workers 2`` on the browser suite's demo database."""
    url, end = demo_database
    run_dir = tmp_path_factory.mktemp("serve")
    port, first = free_port(), free_ports_in_a_row(2)
    command = [
        sys.executable, "-m", "stratlog.cli.main", "--database", url, "serve", "--workers", "2",
        "--port", str(port), "--worker-port", str(first), "--connection-budget", "4",
        "--nginx", find_nginx(), "--run-dir", str(run_dir),
    ]  # fmt: skip
    log = run_dir / "serve.log"
    with log.open("wb") as sink:
        process = subprocess.Popen(command, cwd=ROOT, stdout=sink, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + START_S
        while not healthy(port):
            assert process.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.3)
        assert "behind nginx at" in log.read_text()
        yield Proxied(base, end, url, run_dir)
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
    text = log.read_text()
    assert process.returncode == 0, text
    for number in (1, 2):
        worker_log = (run_dir / f"dashboard-{number}.log").read_text(errors="replace")
        assert "Traceback" not in worker_log, worker_log[-3000:]


def fresh(browser: Browser) -> BrowserContext:
    context = browser.new_context(viewport={"width": 1440, "height": 1000}, accept_downloads=True)
    context.set_default_timeout(WAIT_MS)
    return context


def served_by(page: Page, proxied: Proxied) -> tuple[str, str, str]:
    """Open the Health page in this session; (process number, pid, port) it names.

    The window is the demo's last day, fixed. A relative one ("1h") ends now: once the clock
    passes the next full hour after the demo was written (its data ends at an hour), it holds
    no runs, an Overview opened from it has no charts and no PNG buttons, and the kill test's
    download waited for a button that never came (CI, after a 15-minute suite)."""
    open_page(page, proxied.at(f"health?strategy=fraud-screen&{day(proxied)}"), "Health")
    caption = page.get_by_text(SERVED_BY).inner_text()
    found = SERVED_BY.search(caption)
    assert found, caption
    return found.group(1), found.group(2), found.group(3)


def test_a_session_keeps_its_process_its_downloads_and_its_view(
    browser: Browser, proxied: Proxied, artifacts: Path
) -> None:
    context = fresh(browser)
    page = context.new_page()
    try:
        view = f"?strategy=fraud-screen&{day(proxied)}"
        open_page(page, proxied.at(view), "Overview")
        cookies = {c["name"]: c for c in context.cookies()}
        assert AFFINITY_COOKIE in cookies and cookies[AFFINITY_COOKIE]["httpOnly"]
        assert re.fullmatch(r"w[12]", cookies[AFFINITY_COOKIE]["value"])  # no address in it
        caption = page.locator(HEADER_CAPTION).first.inner_text()
        shown = params(page)
        name, png = download(page, "png_status", artifacts)  # a /media/ GET to this process
        assert png[:8] == PNG_MAGIC and name.endswith("_status.png")
        name, archive = download(page, "snapshot_zip", artifacts)
        files = set(zipfile.ZipFile(io.BytesIO(archive)).namelist())
        assert {"snapshot.md", "status.png", "error_codes.csv"} <= files
        page.reload()
        open_page(page, page.url, "Overview")
        assert params(page) == shown
        assert page.locator(HEADER_CAPTION).first.inner_text() == caption
        screenshot(page, artifacts, "proxied-overview")
        first = served_by(page, proxied)
        page.reload()
        assert served_by(page, proxied) == first  # same cookie, same process
        assert {c["name"]: c["value"] for c in context.cookies()}[AFFINITY_COOKIE] == (
            cookies[AFFINITY_COOKIE]["value"]
        )
    finally:
        context.close()


def test_new_browsers_are_spread_over_both_processes(browser: Browser, proxied: Proxied) -> None:
    seen: dict[str, str] = {}
    for _ in range(20):  # each fresh browser has a random cookie: 2 x 0.5^20 to miss one
        context = fresh(browser)
        try:
            number, _, port = served_by(context.new_page(), proxied)
        finally:
            context.close()
        seen[number] = port
        if len(seen) == 2:
            break
    assert sorted(seen) == ["1", "2"] and seen["1"] != seen["2"]


def test_a_killed_process_is_restarted_and_its_session_goes_on(
    browser: Browser, proxied: Proxied, artifacts: Path
) -> None:
    context = fresh(browser)
    page = context.new_page()
    try:
        number, pid, port = served_by(page, proxied)
        os.kill(int(pid), signal.SIGKILL)
        # The open page's websocket drops and Streamlit's client reconnects by itself; nginx
        # sends it to the other process (the killed one is down), where the next click runs
        # the page, from the URL's view, in a new session: no reload, no error.
        # A click sent before the client has noticed the drop is lost with the old socket,
        # as it would be for a person, who clicks again.
        sidebar = page.locator('[data-testid="stSidebar"]')
        heading = page.locator("h1").filter(has_text="Overview")
        for _ in range(10):
            sidebar.get_by_role("link", name="Overview").click()
            try:
                expect(heading).to_be_visible(timeout=3_000)
                break
            except AssertionError:
                continue
        expect(heading).to_be_visible()
        deadline = time.monotonic() + START_S
        while not healthy(int(port)):
            assert time.monotonic() < deadline, "the killed process was not restarted"
            time.sleep(0.5)
        log = (proxied.run_dir / "serve.log").read_text()
        assert f"dashboard process {number} (port {port}) exited with code -9" in log
        # The first process is back, but this session lives on the other one now: the cookie
        # followed it, so a download still reaches the process that makes the file.
        assert {c["name"]: c["value"] for c in context.cookies()}[AFFINITY_COOKIE] != f"w{number}"
        name, png = download(page, "png_status", artifacts)
        assert png[:8] == PNG_MAGIC and name.endswith("_status.png")
        sidebar.get_by_role("link", name="Health").click()
        expect(page.get_by_text(SERVED_BY)).not_to_contain_text(f"pid {pid} ")
        assert params(page)["strategy"] == "fraud-screen"
        expect(page.locator(EXCEPTION)).to_have_count(0)
        page.reload()
        _, new_pid, _ = served_by(page, proxied)
        assert new_pid != pid
        screenshot(page, artifacts, "proxied-health-after-restart")
    finally:
        context.close()
