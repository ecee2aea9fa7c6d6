"""Database faults in a real browser against a real PostgreSQL: a banner, then recovery alone.

The dashboard starts while the server is down, recovers when it comes up, and recovers again
after an outage while the page is open; at no point does a traceback reach the page.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from stratlog.demo import floor_hour, write_demo
from stratlog.ui.bridge import Backend
from tests.browser.conftest import streamlit_server
from tests.browser.test_browser_dashboard import EXCEPTION, READY, screenshot
from tests.pg import PostgresServer

pytestmark = [pytest.mark.browser, pytest.mark.postgres]

BANNER = "Cannot reach the database"
#: The server trusts local connections and ignores it; it must never reach a page or a log.
PASSWORD = "s3cret-in-the-url"
#: The page retries every 5 s; give the recovery a few rounds.
RECOVERY_MS = 30_000


@dataclass(frozen=True)
class Outage:
    """A PostgreSQL server the test starts and stops, and the dashboard in front of it."""

    server: PostgresServer
    base: str
    url: str
    log: Path


@pytest.fixture(scope="module")
def outage(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Outage]:
    """A cluster that is initialised but not running, and the dashboard already pointed at it."""
    server = PostgresServer()
    url = server.url.replace("//postgres@", f"//postgres:{PASSWORD}@")
    log = tmp_path_factory.mktemp("faults-server") / "streamlit.log"
    try:
        with streamlit_server(url, log) as base:
            yield Outage(server, base, url, log)
    finally:
        server.cleanup()


def fill(url: str) -> None:
    """Bring the schema up to date and write a little demo data ending this hour."""
    backend = Backend(url, migrate=True)
    try:
        end = floor_hour(datetime.now(UTC))
        backend.run(write_demo(backend.repository, 2000, days=1, end=end), 120)
    finally:
        backend.close()


def no_traceback(page: Page) -> None:
    """No exception element and no Python traceback text anywhere on the page."""
    expect(page.locator(EXCEPTION)).to_have_count(0)
    text = page.locator("body").inner_text()
    assert "Traceback" not in text and PASSWORD not in text


def shows_banner(page: Page) -> None:
    """The outage banner with the cause and the retry note; nothing else of the page."""
    alert = page.locator('[data-testid="stAlertContentError"]').filter(has_text=BANNER)
    expect(alert).to_be_visible(timeout=RECOVERY_MS)
    expect(alert).to_contain_text("retries by itself")
    expect(page.get_by_text("Retrying every 5 s")).to_be_visible()
    page.wait_for_selector(READY)
    no_traceback(page)


def shows_overview(page: Page) -> None:
    """The Overview is back with its figures, without the banner."""
    expect(page.locator('[data-testid="stMetricValue"]').first).to_be_visible(timeout=RECOVERY_MS)
    expect(page.locator("h1").filter(has_text="Overview")).to_be_visible()
    expect(page.get_by_text(BANNER)).to_have_count(0)
    page.wait_for_selector(READY)
    no_traceback(page)


def test_down_at_start_then_up_then_down_and_up_again(
    page: Page, outage: Outage, artifacts: Path
) -> None:
    page.goto(f"{outage.base}/?strategy=fraud-screen&window=24h")
    shows_banner(page)
    screenshot(page, artifacts, "faults-down-at-start")

    outage.server.start()
    fill(outage.url)
    shows_overview(page)  # no reload, no click: the page found the database by itself
    assert "fraud-screen" in page.url

    outage.server.stop("fast")
    page.get_by_role("button", name="Refresh").click()  # the next look at the data fails
    shows_banner(page)
    screenshot(page, artifacts, "faults-down-while-open")

    outage.server.start()
    shows_overview(page)
    page.get_by_role("link", name="Runbook").click()  # and the app is fully usable again
    expect(page.locator("h1").filter(has_text="Runbook")).to_be_visible()
    page.wait_for_selector(READY)
    no_traceback(page)
    assert PASSWORD not in outage.log.read_text()  # nor in the server's log
