"""AppTest: the Insights page (cards, the empty state, its baseline from the URL, bad input)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from streamlit.testing.v1 import AppTest

from stratlog.service.insights import fetch_insights, parse_baseline
from stratlog.ui.bridge import Backend
from stratlog.ui.insightsview import KIND_LABEL
from stratlog.ui.state import parse_utc

OpenApp = Callable[..., AppTest]
PAGE = "pages/insights.py"


def expected(backend: Backend, strategy: str, window: dict[str, str], baseline: str) -> Any:
    since, until = parse_utc(window["since"]), parse_utc(window["until"])
    call = fetch_insights(backend.repository, strategy, since, until, parse_baseline(baseline))
    return backend.run(call)


def test_the_page_shows_the_services_findings_ranked(
    open_app: OpenApp, demo_url: str, window: dict[str, str], backend_for: Any, markdown_text: Any
) -> None:
    at = open_app(demo_url, PAGE, strategy="kyc-depth", window="custom", baseline="previous",
                  **window)  # fmt: skip
    assert not at.exception
    assert [t.value for t in at.title] == ["Insights"]
    found = expected(backend_for(demo_url), "kyc-depth", window, "previous")
    assert found.findings, "the demo's kyc-depth has findings against the day before"
    text = markdown_text(at)
    assert text.count("Flagged") == len(found.findings)  # one card each, with its rule
    for finding in found.findings:
        assert KIND_LABEL[finding.kind] in text
    assert at.query_params["baseline"] in ("previous", ["previous"])


def test_a_window_with_nothing_unusual_says_what_was_checked(
    open_app: OpenApp, demo_url: str, window: dict[str, str], backend_for: Any, markdown_text: Any
) -> None:
    at = open_app(demo_url, PAGE, strategy="promo-eligibility", window="custom", **window)
    assert not at.exception
    found = expected(backend_for(demo_url), "promo-eligibility", window, "week")
    assert found.findings == []
    assert any("Nothing unusual" in s.value for s in at.success)
    text = markdown_text(at)
    assert "payloads" in text and "node budget" in text


def test_a_bad_baseline_is_named_and_the_default_used(
    open_app: OpenApp, demo_url: str, window: dict[str, str]
) -> None:
    at = open_app(demo_url, PAGE, strategy="kyc-depth", window="custom", baseline="version:1",
                  **window)  # fmt: skip
    assert not at.exception
    assert any("Unknown insights baseline" in w.value for w in at.warning)
    assert "baseline" not in at.query_params  # written back as the default


def test_a_window_at_the_year_one_has_no_baseline_and_says_so(
    open_app: OpenApp, demo_url: str
) -> None:
    at = open_app(demo_url, PAGE, strategy="kyc-depth", window="custom",
                  since="0001-01-01T00:00:00Z", until="0001-01-02T00:00:00Z")  # fmt: skip
    assert not at.exception
    assert any("No insights" in w.value for w in at.warning)
