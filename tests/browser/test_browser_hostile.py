"""Log content is data, not markup: hostile rows on every page of a real browser.

The rows of ``tests/browser/hostile.py`` hold scripts, ``<img onerror>``, Markdown links and
images, Streamlit's own Markdown directives and 10 kB strings without a space. On every page
that shows them: no dialog opens, ``window.__pwned`` stays undefined, no element or request
comes out of log text, the text is there literally, and the page does not grow sideways.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import pytest
from playwright.sync_api import Page, Request, expect

from stratlog.ui.bridge import Backend
from stratlog.vocabulary import visible
from tests.browser import hostile
from tests.browser.conftest import Dashboard
from tests.browser.test_browser_dashboard import HEADER_CAPTION, day, open_page, screenshot

pytestmark = pytest.mark.browser

#: Everything in the DOM that log text could have turned into an element.
PROBE = r"""() => {
  const bad = [];
  const needles = %s;
  for (const s of document.querySelectorAll('script'))
    if (needles.some(n => s.textContent.includes(n))) bad.push('script: ' + s.textContent);
  for (const i of document.querySelectorAll('img, image, iframe, video, audio, source')) {
    const src = i.getAttribute('src') || i.getAttribute('href') || '';
    if (src === 'x' || needles.some(n => src.includes(n))) bad.push(i.tagName + ' ' + src);
  }
  for (const a of document.querySelectorAll('a[href]')) {
    const href = a.getAttribute('href').trim().toLowerCase();
    const external = /^(https?:|www\.|mailto:)/.test(href);  // our own links are relative
    if (href.startsWith('javascript:') || (external && needles.some(n => href.includes(n))))
      bad.push('link ' + a.getAttribute('href'));
  }
  for (const e of document.querySelectorAll('[onerror], [onload]:not(body)'))
    bad.push('handler on ' + e.tagName);
  for (const e of document.querySelectorAll('b, u, strong, em, .katex'))
    if (['bold', 'u', 'x^2', 'alarm'].includes(e.textContent.trim()))
      bad.push('markup ' + e.tagName);
  const html = document.documentElement;
  return {pwned: window.__pwned ?? null, bad, width: html.scrollWidth, viewport: innerWidth};
}""" % list(hostile.NEEDLES)  # noqa: UP031


@dataclass
class Watch:
    """Dialogs and requests a page produced."""

    dialogs: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)

    def on_request(self, request: Request) -> None:
        url = request.url
        if request.is_navigation_request():  # the test's own links carry log text
            return
        if url.endswith("/x") or any(n in url for n in hostile.NEEDLES):
            self.requests.append(url)


@pytest.fixture
def watched(page: Page) -> Iterator[tuple[Page, Watch]]:
    """The page, with every dialog recorded (and dismissed) and suspicious requests noted."""
    watch = Watch()
    page.on("dialog", lambda dialog: (watch.dialogs.append(dialog.message), dialog.dismiss()))
    page.on("request", watch.on_request)
    yield page, watch


def assert_harmless(page: Page, watch: Watch) -> None:
    """Nothing ran, nothing was created or fetched from log text, the layout holds."""
    page.wait_for_timeout(300)  # let late images and handlers have their chance
    found: dict[str, Any] = page.evaluate(PROBE)
    assert watch.dialogs == [] and found["pwned"] is None
    assert found["bad"] == [] and watch.requests == []
    assert found["width"] <= found["viewport"] + 2, "the page scrolls sideways"


def hostile_view(dashboard: Dashboard, path: str = "", **params: str) -> str:
    """A URL of the hostile strategy over the day before the demo's end."""
    query = urlencode({"strategy": hostile.STRATEGY, **params}, quote_via=quote)
    return dashboard.at(f"{path}?{query}&{day(dashboard)}")


def hostile_rows(dashboard: Dashboard) -> list[Any]:
    """The hostile runs, newest first."""
    backend = Backend(dashboard.url, migrate=False)
    try:
        return backend.run(backend.repository.list_runs(strategyId=hostile.STRATEGY, limit=200))
    finally:
        backend.close()


def test_overview(watched: tuple[Page, Watch], dashboard: Dashboard, artifacts: Path) -> None:
    page, watch = watched
    open_page(page, hostile_view(dashboard), "Overview")
    expect(page.locator(HEADER_CAPTION).first).to_contain_text(hostile.STRATEGY)
    codes = page.locator('[data-testid="stDataFrame"]').first
    expect(codes.locator('[data-testid="glide-cell-1-2"]')).to_be_attached()
    cells = [codes.locator(f'[data-testid="glide-cell-1-{row}"]').inner_text() for row in range(3)]
    assert sorted(cells) == sorted(hostile.CODES)
    labels = page.locator('[data-testid="stVegaLiteChart"] svg text').all_text_contents()
    assert hostile.MD_IMAGE in labels  # a case bar's label, as text
    assert visible(hostile.BIDI) in labels and hostile.BIDI not in labels  # shown, not applied
    screenshot(page, artifacts, "hostile-overview")
    assert_harmless(page, watch)


def test_runbook(watched: tuple[Page, Watch], dashboard: Dashboard, artifacts: Path) -> None:
    page, watch = watched
    open_page(page, hostile_view(dashboard, "runbook", limit="25"), "Runbook")
    shown = page.locator('[data-testid="stDataFrame"]').first
    newest = next(r for r in hostile_rows(dashboard) if r.errorCode is not None)
    expect(shown.locator('[data-testid="glide-cell-4-0"]')).to_have_text(newest.errorCode)
    screenshot(page, artifacts, "hostile-runbook")
    assert_harmless(page, watch)
    open_page(page, hostile_view(dashboard, "runbook", code=hostile.IMG), "Runbook")
    expect(page.get_by_role("combobox", name="Error code")).to_have_value(hostile.IMG)
    expect(shown.locator('[data-testid="glide-cell-4-0"]')).to_have_text(hostile.IMG)
    page.get_by_role("combobox", name="Case").click()  # the picker lists cases as text
    expect(page.get_by_role("option", name=hostile.MD_IMAGE)).to_be_visible()
    page.keyboard.press("Escape")
    assert_harmless(page, watch)


MESSAGES = ("SCRIPT", "IMG", "MD_LINK", "MD_IMAGE", "MARKUP", "LONG")


def test_row_detail(watched: tuple[Page, Watch], dashboard: Dashboard, artifacts: Path) -> None:
    page, watch = watched
    runs = hostile_rows(dashboard)
    for message in MESSAGES:
        text = getattr(hostile, message)
        run = next(r for r in runs if r.errorMessage == text)
        open_page(page, hostile_view(dashboard, "row", row=str(run.id)), f"Run {run.id}")
        code = page.locator('[data-testid="stCode"]').filter(has_text=text[:40]).first
        assert code.inner_text().strip() == text  # the whole message, literally
        payloads = page.locator('[data-testid="stJson"]').first
        expect(payloads).to_contain_text(hostile.SCRIPT)
        expect(payloads).to_contain_text(hostile.IMG)  # a key, as text
        if message in ("LONG", "IMG"):
            page.get_by_text("Output payload").click()
            screenshot(page, artifacts, f"hostile-row-{message.lower()}")
        assert_harmless(page, watch)


def test_row_detail_shows_invisible_characters_and_scrolls_tall_messages(
    watched: tuple[Page, Watch], dashboard: Dashboard, artifacts: Path
) -> None:
    page, watch = watched
    runs = hostile_rows(dashboard)
    bidi = next(r for r in runs if r.errorMessage == hostile.BIDI)
    open_page(page, hostile_view(dashboard, "row", row=str(bidi.id)), f"Run {bidi.id}")
    code = page.locator('[data-testid="stCode"]').filter(has_text="invoice").first
    assert code.inner_text().strip() == "invoice⟨U+202E⟩gnp.exe⟨U+202C⟩ done"
    tall = next(r for r in runs if r.errorMessage == hostile.LINES)
    open_page(page, hostile_view(dashboard, "row", row=str(tall.id)), f"Run {tall.id}")
    block = page.locator('[data-testid="stCode"]').filter(has_text="line 1").first
    box = block.bounding_box()
    assert box is not None and box["height"] <= 400, box  # it scrolls inside its box
    screenshot(page, artifacts, "hostile-row-tall-message")
    assert_harmless(page, watch)


def test_hostile_links(watched: tuple[Page, Watch], dashboard: Dashboard) -> None:
    page, watch = watched
    bad = {"strategy": hostile.IMG, "code": hostile.SCRIPT, "status": hostile.MD_LINK}
    query = urlencode({**bad, "limit": hostile.MD_IMAGE, "row": hostile.MARKUP}, quote_via=quote)
    open_page(page, dashboard.at(f"runbook?{query}"), "Runbook")
    warnings = page.locator('[data-testid="stAlertContentWarning"]')
    expect(warnings.filter(has_text="Unknown strategy")).to_contain_text(hostile.IMG[:30])
    expect(warnings.filter(has_text="Unknown status")).to_contain_text(hostile.MD_LINK)
    assert_harmless(page, watch)
