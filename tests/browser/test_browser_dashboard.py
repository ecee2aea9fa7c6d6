"""A real browser against ``streamlit run``: every page, the drill-down clicks, copied links."""

from __future__ import annotations

import io
import re
import sqlite3
import struct
import zipfile
from datetime import timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pandas as pd
import pytest
from playwright.sync_api import Browser, Locator, Page, expect

from stratlog.db import sqlite_path
from stratlog.ui.state import iso_utc, parse_utc
from tests.browser.chromium import READY
from tests.browser.conftest import Dashboard

pytestmark = pytest.mark.browser

EXCEPTION = '[data-testid="stException"]'
#: The caption under the page title: strategy, UTC window, preset.
HEADER_CAPTION = '[data-testid="stMain"] [data-testid="stCaptionContainer"]'


def params(page: Page) -> dict[str, str]:
    """The query parameters of the page's current URL."""
    return {k: v[0] for k, v in parse_qs(urlsplit(page.url).query).items()}


def settle(page: Page, heading: str | re.Pattern[str]) -> None:
    """Wait until the page shows ``heading`` and the script has finished; no exception shown."""
    expect(page.locator("h1").filter(has_text=heading).first).to_be_visible()
    page.wait_for_selector(READY)
    expect(page.locator('[data-stale="true"]')).to_have_count(0)  # nothing left from a rerun
    expect(page.locator(EXCEPTION)).to_have_count(0)


def open_page(page: Page, url: str, heading: str | re.Pattern[str]) -> None:
    """Navigate and settle."""
    page.goto(url)
    settle(page, heading)


def screenshot(page: Page, artifacts: Path, name: str) -> Path:
    """A full-page PNG: the viewport grows to the app's scroll height first."""
    height = page.evaluate(
        """() => Math.max(...['stMain', 'stSidebarContent'].map(
            id => document.querySelector(`[data-testid="${id}"]`)?.scrollHeight ?? 0))"""
    )
    size = page.viewport_size or {"width": 1440, "height": 1000}
    page.set_viewport_size({"width": size["width"], "height": max(size["height"], height + 40)})
    page.wait_for_selector(READY)
    path = artifacts / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    page.set_viewport_size(size)
    assert path.stat().st_size > 10_000
    return path


def day(dashboard: Dashboard) -> str:
    """Query string of the 24 h before the demo data ends (a fixed, absolute window)."""
    since = iso_utc(dashboard.end - timedelta(hours=24))
    return f"window=custom&since={since}&until={iso_utc(dashboard.end)}"


def first_cell(page: Page, column: int) -> str:
    """Text of the first data row's cell in column ``column`` of the page's first table.

    Looked up inside the first table and waited for there: a page-wide first cell was the
    Versions table's when its grid drew before the error codes' (seen once in make test)."""
    grid = page.locator('[data-testid="stDataFrame"]').first
    return grid.locator(f'[data-testid="glide-cell-{column}-0"]').inner_text()


def click_first_row(page: Page) -> None:
    """Select the first data row of the first dataframe (its row-marker checkbox)."""
    click_row(page, page.locator('[data-testid="stDataFrame"]').first, 0)


def click_row(page: Page, grid: Locator, row: int) -> None:
    """Select data row ``row`` of the dataframe ``grid`` (its row-marker checkbox)."""
    grid.scroll_into_view_if_needed()
    box = grid.bounding_box()
    assert box is not None
    page.mouse.click(box["x"] + 18, box["y"] + 35 * (row + 1) + 18)


def test_every_page_renders(page: Page, dashboard: Dashboard, artifacts: Path) -> None:
    # First request of the fresh server straight to a page URL (a reloaded tab after a restart).
    runbook = dashboard.at(f"runbook?strategy=fraud-screen&status=error&{day(dashboard)}")
    open_page(page, runbook, "Runbook")
    assert urlsplit(page.url).path == "/runbook"
    expect(page.locator('[data-testid="glide-cell-3-0"]')).to_have_text("error")
    screenshot(page, artifacts, "runbook")
    row = first_cell(page, 1)

    open_page(page, dashboard.at("?strategy=fraud-screen&window=24h"), "Overview")
    assert params(page)["window"] == "24h" and "since" in params(page)  # preset → bounds
    expect(page.locator('[data-testid="stMetric"]').first).to_contain_text("Runs")
    expect(page.locator("g.mark-arc path").first).to_be_attached()
    screenshot(page, artifacts, "overview")

    detail = dashboard.at(f"row?strategy=fraud-screen&row={row}&{day(dashboard)}")
    open_page(page, detail, f"Run {row}")
    expect(page.locator('[data-testid="stCode"]').first).to_be_visible()
    expect(page.locator('[data-testid="stJson"]').first).to_be_visible()
    screenshot(page, artifacts, "row-detail")

    open_page(page, dashboard.at("row?strategy=fraud-screen&window=1h"), "Row detail")
    expect(page.get_by_text("No run selected")).to_be_visible()

    open_page(page, dashboard.at("health?strategy=fraud-screen&window=1h"), "Health")
    expect(page.get_by_text("No recorder has reported yet")).to_be_visible()
    screenshot(page, artifacts, "health")


def test_status_slice_opens_the_filtered_runbook(
    page: Page, dashboard: Dashboard, artifacts: Path
) -> None:
    open_page(page, dashboard.at(f"?strategy=fraud-screen&{day(dashboard)}"), "Overview")
    page.locator('g.mark-arc path[aria-label*="status: error"]').first.click()
    page.wait_for_url(re.compile(r"/runbook\?"))
    settle(page, "Runbook")
    assert params(page)["status"] == "error"
    assert params(page)["since"] == iso_utc(dashboard.end - timedelta(hours=24))
    expect(page.locator('.st-key-f_status button[aria-checked="true"]')).to_have_text("error")
    expect(page.locator('[data-testid="glide-cell-3-0"]')).to_have_text("error")
    screenshot(page, artifacts, "runbook-from-status-slice")


def test_error_code_row_opens_the_filtered_runbook(
    page: Page, dashboard: Dashboard, artifacts: Path
) -> None:
    open_page(page, dashboard.at(f"?strategy=fraud-screen&{day(dashboard)}"), "Overview")
    code = first_cell(page, 1)  # the top error code of the window
    click_first_row(page)
    page.wait_for_url(re.compile(r"/runbook\?"))
    settle(page, "Runbook")
    assert params(page)["code"] == code
    expect(page.locator('[data-testid="glide-cell-4-0"]')).to_have_text(code)
    expect(page.get_by_role("combobox", name="Error code")).to_have_value(code)
    screenshot(page, artifacts, "runbook-from-error-code")


def test_case_bar_opens_the_filtered_runbook(page: Page, dashboard: Dashboard) -> None:
    open_page(page, dashboard.at(f"?strategy=credit-limit&{day(dashboard)}"), "Overview")
    page.locator('g.mark-rect path[aria-label*="prime_customer"]').first.click()
    page.wait_for_url(re.compile(r"/runbook\?"))
    settle(page, "Runbook")
    assert params(page)["case"] == "prime_customer"
    expect(page.locator('[data-testid="glide-cell-5-0"]')).to_have_text("prime_customer")


def test_runbook_row_opens_its_detail_and_back_keeps_filters(
    page: Page, dashboard: Dashboard, artifacts: Path
) -> None:
    url = dashboard.at(f"runbook?strategy=kyc-depth&status=ok&limit=25&{day(dashboard)}")
    open_page(page, url, "Runbook")
    row = first_cell(page, 1)
    click_first_row(page)
    page.wait_for_url(re.compile(r"/row\?"))
    settle(page, f"Run {row}")
    assert params(page)["row"] == row and params(page)["status"] == "ok"
    expect(page.get_by_role("button", name="Newer run")).to_be_disabled()  # the newest run
    screenshot(page, artifacts, "row-from-runbook")
    page.get_by_role("button", name="Older run").click()
    page.wait_for_url(re.compile(r"row=(?!" + row + r"\b)\d+"))
    settle(page, "Run ")
    page.get_by_role("link", name="Back to runbook").click()
    page.wait_for_url(re.compile(r"/runbook\?"))
    settle(page, "Runbook")
    assert params(page)["status"] == "ok" and params(page)["limit"] == "25"
    assert "row" not in params(page)


def test_a_copied_link_reproduces_the_view(
    page: Page, dashboard: Dashboard, browser: Browser
) -> None:
    open_page(page, dashboard.at("?strategy=pricing-tier&window=6h"), "Overview")
    address = page.url  # what an operator copies: the preset is now absolute bounds
    assert "window=6h" in address  # chosen here: it slides with Refresh in this session
    link = address.replace("window=6h", "window=custom")
    page.get_by_role("button", name="Copy link").click()
    expect(page.locator('[data-testid="stPopoverBody"] [data-testid="stCode"]')).to_have_text(link)
    page.keyboard.press("Escape")
    expect(page.locator(HEADER_CAPTION).first).to_contain_text("pricing-tier")
    header = page.locator(HEADER_CAPTION).first.inner_text().split(" · fetched")[0]
    assert "last 6 h" in header
    pinned = header.replace("last 6 h", "custom window")  # the same bounds, by their dates
    expect(page.locator('[data-testid="stMetricValue"]')).to_have_count(12)
    figures = page.locator('[data-testid="stMetricValue"]').all_inner_texts()
    fresh = browser.new_context(viewport={"width": 1440, "height": 1000})
    try:
        for copied in (address, link):  # the address bar's URL and the Copy link box's
            other = fresh.new_page()  # a new browser session, as a colleague opening it
            open_page(other, copied, "Overview")
            expect(other.locator(HEADER_CAPTION).first).to_contain_text(pinned)
            expect(other.locator('[data-testid="stMetricValue"]')).to_have_text(figures)
            assert other.url == link
    finally:
        fresh.close()
    page.reload()
    settle(page, "Overview")
    expect(page.locator('[data-testid="stMetricValue"]')).to_have_text(figures)
    assert page.url == link


def test_sidebar_controls_write_the_url(page: Page, dashboard: Dashboard) -> None:
    open_page(page, dashboard.at(f"?strategy=credit-limit&code=X&{day(dashboard)}"), "Overview")
    page.locator(".st-key-w_strategy input").click()
    page.keyboard.type("kyc")
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(r"strategy=kyc-depth"))
    settle(page, "Overview")
    assert "code" not in params(page)
    expect(page.locator(HEADER_CAPTION).first).to_contain_text("kyc-depth")
    page.locator(".st-key-w_window button", has_text="1 h").click()
    expect(page).to_have_url(re.compile(r"window=1h"))
    settle(page, "Overview")
    bounds = params(page)
    assert bounds["until"] > bounds["since"]


PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def download(page: Page, key: str, artifacts: Path) -> tuple[str, bytes]:
    """Click the download button with this widget key; the file's suggested name and bytes."""
    with page.expect_download() as event:
        page.locator(f".st-key-{key} button").first.click()
    result = event.value
    target = artifacts / f"download-{result.suggested_filename}"
    result.save_as(target)
    return result.suggested_filename, target.read_bytes()


def test_overview_png_and_csv_downloads(page: Page, dashboard: Dashboard, artifacts: Path) -> None:
    open_page(page, dashboard.at(f"?strategy=fraud-screen&{day(dashboard)}"), "Overview")
    name, png = download(page, "png_status", artifacts)
    assert name.startswith("fraud-screen_") and name.endswith("_status.png")
    assert png[:8] == PNG_MAGIC
    width, height = struct.unpack(">II", png[16:24])
    assert width >= 2 * 560 and height > 400  # scale 2 of the 560 px export width
    name, timeseries = download(page, "png_timeseries", artifacts)
    assert timeseries[:8] == PNG_MAGIC and name.endswith("_timeseries.png")

    name, data = download(page, "csv_error_codes", artifacts)
    assert name.endswith("_error_codes.csv")
    frame = pd.read_csv(io.BytesIO(data))
    cells = page.locator('[data-testid="stDataFrame"]').first
    shown = len(frame)
    codes = [
        cells.locator(f'[data-testid="glide-cell-1-{i}"]').inner_text() for i in range(shown)
    ]  # "New" sits between
    runs = [cells.locator(f'[data-testid="glide-cell-3-{i}"]').inner_text() for i in range(shown)]
    assert list(frame["errorCode"]) == codes  # the snapshot's headers: one table, one shape
    assert [f"{n:,}" for n in frame["count"]] == runs
    expect(cells.locator(f'[data-testid="glide-cell-1-{shown}"]')).to_have_count(0)  # no more
    assert frame["shareOfFailures"].between(0, 1).all()

    name, archive = download(page, "snapshot_zip", artifacts)
    assert name.startswith("snapshot_fraud-screen_") and name.endswith(".zip")
    files = set(zipfile.ZipFile(io.BytesIO(archive)).namelist())
    assert {"snapshot.md", "status.png", "timeseries.png", "error_codes.csv"} <= files
    assert len([f for f in files if f.endswith(".png")]) == 6
    expect(page.locator(EXCEPTION)).to_have_count(0)


def test_an_unknown_page_and_a_repeated_parameter_are_named(
    page: Page, dashboard: Dashboard
) -> None:
    open_page(page, dashboard.at("incidents?strategy=nope&strategy=fraud-screen"), "Overview")
    warnings = page.locator('[data-testid="stAlertContentWarning"]')
    expect(warnings.filter(has_text="There is no page")).to_contain_text("incidents")
    expect(warnings.filter(has_text="The link gives strategy 2 times")).to_contain_text(
        "fraud-screen"
    )


def test_the_baseline_is_drawn_and_a_new_code_opens_its_runs(
    page: Page, dashboard: Dashboard, artifacts: Path
) -> None:
    """pricing-tier's last 6 h against the same hours a day earlier (before its deploy)."""
    since, until = iso_utc(dashboard.end - timedelta(hours=6)), iso_utc(dashboard.end)
    query = f"?strategy=pricing-tier&window=custom&since={since}&until={until}&compare=1d"
    open_page(page, dashboard.at(query), "Overview")
    expect(page.get_by_text("Compared with the same window 1 day earlier")).to_be_visible()
    # The baseline dashed over the bars and the failure-rate line with its dots.
    expect(page.locator('g.mark-line path[stroke-dasharray="5,3"]').first).to_be_attached()
    expect(page.locator("g.mark-line").first).to_be_attached()
    expect(page.get_by_text("fired in the baseline and not once now")).to_be_visible()
    screenshot(page, artifacts, "overview-compared")
    assert first_cell(page, 1) == "TIER_TABLE_STALE"
    assert first_cell(page, 2) == "new"  # beside the code, visible without scrolling
    _, data = download(page, "csv_error_codes", artifacts)  # the table as shown
    codes = pd.read_csv(io.BytesIO(data), keep_default_na=False)
    assert list(codes.columns) == ["errorCode", "count", "shareOfFailures", "new", "baseline",
                                   "change"]  # fmt: skip
    assert codes.iloc[0]["errorCode"] == "TIER_TABLE_STALE" and codes.iloc[0]["new"] == "new"
    assert codes.iloc[0]["baseline"] == 0
    click_first_row(page)
    page.wait_for_url(re.compile(r"/runbook\?"))
    settle(page, "Runbook")
    assert params(page)["code"] == "TIER_TABLE_STALE" and params(page)["compare"] == "1d"


def test_a_request_id_from_the_sidebar_opens_its_run_in_two_clicks(
    page: Page, dashboard: Dashboard, artifacts: Path
) -> None:
    path = sqlite_path(dashboard.url)
    assert path is not None
    with sqlite3.connect(path) as db:
        run, request = db.execute(
            "SELECT id, request_id FROM strategy_execution_log WHERE strategy_id = 'kyc-depth' "
            "ORDER BY created_at DESC LIMIT 1"
        ).fetchone()
    open_page(page, dashboard.at(f"?strategy=credit-limit&{day(dashboard)}"), "Overview")
    box = page.get_by_role("textbox", name="Find a request id")
    box.fill(request)
    box.press("Enter")  # click 1
    page.wait_for_url(re.compile(r"/runbook\?"))
    settle(page, "Runbook")
    assert params(page)["request"] == request
    assert first_cell(page, 3) == "kyc-depth"  # the Strategy column of a request search
    click_first_row(page)  # click 2
    page.wait_for_url(re.compile(r"/row\?"))
    settle(page, re.compile("Run"))
    assert params(page)["row"] == str(run)
    screenshot(page, artifacts, "row-from-request-search")


def test_versions_are_drawn_and_a_version_opens_its_runs(
    page: Page, dashboard: Dashboard, artifacts: Path
) -> None:
    """pricing-tier deployed 1.5.0 inside the last day: a labelled rule on both time charts,
    a Versions row saying what it brought; selecting the row lists 1.5.0's runs."""
    open_page(page, dashboard.at(f"?strategy=pricing-tier&{day(dashboard)}"), "Overview")
    labels = page.locator("g.mark-text text").filter(has_text=re.compile(r"^1\.5\.0$"))
    expect(labels).to_have_count(2)  # Runs over time and Duration over time
    expect(page.get_by_text("Duration over time")).to_be_visible()
    versions = page.locator('.st-key-ov_versions [data-testid="stDataFrame"]')
    versions.scroll_into_view_if_needed()
    screenshot(page, artifacts, "overview-versions")
    _, data = download(page, "csv_versions", artifacts)
    table = pd.read_csv(io.BytesIO(data), keep_default_na=False)
    assert list(table["version"]) == ["1.4.0", "1.5.0"]
    assert table.iloc[1]["previousVersion"] == "1.4.0"
    assert "TIER_TABLE_STALE" in table.iloc[1]["newErrorCodes"]
    assert "gold" in table.iloc[1]["casesStopped"]
    click_row(page, versions, 1)
    page.wait_for_url(re.compile(r"/runbook\?"))
    settle(page, "Runbook")
    assert params(page)["version"] == "1.5.0"
    expect(page.locator('[data-testid="stDataFrame"]').first).to_be_visible()  # runs listed
    expect(page.get_by_text("No runs in this window match")).to_have_count(0)
    # A window after the deploy, compared with the previous one that holds it: the rule of the
    # baseline window, moved onto this one.
    since, until = (iso_utc(dashboard.end - timedelta(hours=h)) for h in (14, 8))
    query = f"?strategy=pricing-tier&window=custom&since={since}&until={until}"
    open_page(page, dashboard.at(query), "Overview")
    moved = page.locator("g.mark-text text").filter(has_text="1.5.0 (baseline)")
    expect(moved).to_have_count(2)


def test_a_dragged_range_zooms_and_a_bucket_opens_its_runs(
    page: Page, dashboard: Dashboard
) -> None:
    open_page(page, dashboard.at(f"?strategy=fraud-screen&{day(dashboard)}"), "Overview")
    chart = page.locator('[data-testid="stVegaLiteChart"]').nth(1)  # Runs over time
    chart.scroll_into_view_if_needed()
    box = chart.bounding_box()
    assert box is not None
    y = box["y"] + box["height"] * 0.6
    before = page.url
    page.mouse.move(box["x"] + box["width"] * 0.3, y)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] * 0.5, y, steps=8)
    page.mouse.up()
    # The day's link is a custom window already: wait for the URL to change, not to match
    # "window=custom" (which it did before the drag's rerun had run; seen once in make test).
    page.wait_for_url(lambda url: url != before)
    settle(page, "Overview")
    since, until = parse_utc(params(page)["since"]), parse_utc(params(page)["until"])
    assert dashboard.end - timedelta(hours=24) <= since < until <= dashboard.end
    assert timedelta(hours=2) < until - since < timedelta(hours=8)  # about a fifth of the day
    assert since.second == 0 and until.second == 0
    bar = page.locator('g.mark-rect path[aria-label*="Bucket (UTC)"]').nth(2)
    label = bar.get_attribute("aria-label") or ""
    bar.click()
    page.wait_for_url(re.compile(r"/runbook\?"))
    settle(page, "Runbook")
    start = parse_utc(params(page)["since"])
    assert start.strftime("%Y-%m-%d %H:%M") in label  # the clicked bucket's start
    assert parse_utc(params(page)["until"]) - start <= timedelta(minutes=10)


def test_insights_cards_and_a_drill_down_to_the_runs(
    page: Page, dashboard: Dashboard, artifacts: Path
) -> None:
    """pricing-tier's deploy: the cards are ranked (critical first), each says why it was
    flagged; the new code's card opens the runbook filtered by that code."""
    open_page(page, dashboard.at(f"/insights?strategy=pricing-tier&{day(dashboard)}"), "Insights")
    cards = page.locator('[class*="st-key-finding_"]')
    expect(cards.first).to_be_visible()
    expect(cards.first).to_contain_text("critical")
    new_code = cards.filter(has_text="New error code").first
    expect(new_code).to_contain_text("TIER_TABLE_STALE")
    expect(new_code).to_contain_text("Flagged:")
    expect(new_code.locator('[data-testid="stVegaLiteChart"]')).to_have_count(1)
    expect(page.get_by_text("the 7 days before the window").first).to_be_visible()
    screenshot(page, artifacts, "insights-pricing-tier")
    new_code.get_by_role("link", name="Open these runs").click()
    page.wait_for_url(re.compile(r"/runbook\?"))
    settle(page, "Runbook")
    assert params(page)["code"] == "TIER_TABLE_STALE"
    expect(page.locator('[data-testid="glide-cell-4-0"]')).to_have_text("TIER_TABLE_STALE")


def test_insights_of_the_steady_strategy_and_a_bad_baseline(
    page: Page, dashboard: Dashboard, artifacts: Path
) -> None:
    url = f"/insights?strategy=promo-eligibility&{day(dashboard)}&baseline=%3Cscript%3E"
    open_page(page, dashboard.at(url), "Insights")
    expect(page.get_by_text("Nothing unusual").first).to_be_visible()
    expect(page.get_by_text("Checked", exact=True)).to_be_visible()
    expect(page.get_by_text("Unknown insights baseline").first).to_be_visible()
    assert page.locator("script:text('<script>')").count() == 0
    screenshot(page, artifacts, "insights-steady")
    page.get_by_role("radio", name="the previous window of the same length").click()
    page.wait_for_url(re.compile(r"baseline=previous"))
    settle(page, "Insights")
    expect(page.get_by_text("Nothing unusual").first).to_be_visible()
