"""AppTest: the entry point and the Overview page (state from the URL, empty states, failures)."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from streamlit.testing.v1 import AppTest

from stratlog.service.overview import fetch_overview
from stratlog.ui.bridge import Backend
from stratlog.ui.state import iso_utc, parse_utc

OpenApp = Callable[..., AppTest]


def frame_with(at: Any, column: str) -> Any:
    """The page's first table with ``column`` (the Versions table comes before the codes)."""
    return next(d.value for d in at.dataframe if column in d.value.columns)


def texts(elements: Any) -> list[str]:
    """The text of every element in an AppTest element list."""
    return [str(e.value) for e in elements]


def metric(at: AppTest, label: str) -> str:
    """The displayed value of the metric with this label."""
    return next(str(m.value) for m in at.metric if m.label == label)


def test_happy_path_shows_every_panel_from_the_url(
    open_app: OpenApp, demo_url: str, window: dict[str, str], backend_for: Any
) -> None:
    at = open_app(demo_url, strategy="fraud-screen", window="custom", **window)
    assert not at.exception
    assert not at.error and not at.warning
    backend: Backend = backend_for(demo_url)
    since, until = parse_utc(window["since"]), parse_utc(window["until"])
    expected = backend.run(fetch_overview(backend.repository, "fraud-screen", since, until))
    assert expected.total > 0
    assert metric(at, "Runs") == f"{expected.total:,}"
    assert [t.value for t in at.title] == ["Overview"]
    assert "fraud\\-screen" in at.caption[0].value  # the header names the strategy (escaped)
    assert at.query_params["since"] == window["since"]
    assert at.query_params["until"] == window["until"]
    assert at.query_params["window"] == "custom"
    # Error codes table: one line per top code, share of failures in [0, 1].
    table = frame_with(at, "Error code")
    assert list(table["Error code"]) == [c["errorCode"] for c in expected.errorCodes]
    assert table["Share of failures"].between(0, 1).all()
    assert not [i for i in at.info if "No runs in this window" in i.value]


def test_a_bare_link_gets_defaults_written_back_as_absolute_bounds(
    open_app: OpenApp, demo_url: str
) -> None:
    at = open_app(demo_url)
    assert not at.exception
    assert not at.warning  # nothing was wrong: a bare link is a fresh start
    params = at.query_params
    assert params["strategy"] == "credit-limit"  # the first strategy of the picker
    assert params["window"] == "24h"
    since, until = parse_utc(params["since"]), parse_utc(params["until"])
    assert until - since == timedelta(hours=24)
    assert until.second == 0 and until.microsecond == 0


def test_a_preset_link_keeps_its_label_and_gets_bounds(open_app: OpenApp, demo_url: str) -> None:
    at = open_app(demo_url, strategy="kyc-depth", window="6h")
    params = at.query_params
    assert params["window"] == "6h"
    assert parse_utc(params["until"]) - parse_utc(params["since"]) == timedelta(hours=6)
    assert "last 6 h" in at.caption[0].value


def test_an_empty_window_says_so_once(open_app: OpenApp, demo_url: str, demo_end: datetime) -> None:
    later = demo_end + timedelta(days=30)
    at = open_app(
        demo_url,
        strategy="credit-limit",
        since=iso_utc(later),
        until=iso_utc(later + timedelta(hours=1)),
    )
    assert not at.exception
    empty = [i for i in at.info if i.value.startswith("No runs in this window.")]
    assert len(empty) == 1  # one notice, not six identical boxes
    assert metric(at, "Runs") == "0"
    assert metric(at, "Error rate") == "–"


def test_unknown_strategy_warns_and_falls_back(open_app: OpenApp, demo_url: str) -> None:
    at = open_app(demo_url, strategy="no-such-strategy", window="24h")
    assert not at.exception
    (warning,) = at.warning
    assert "Unknown strategy" in warning.value
    assert "no\\-such\\-strategy" in warning.value
    assert at.query_params["strategy"] == "credit-limit"


def test_bad_url_values_fall_back_with_notices(open_app: OpenApp, demo_url: str) -> None:
    at = open_app(
        demo_url,
        strategy="kyc-depth",
        since="yesterday",
        until="2026-01-15T12:00:00Z",
        status="exploded",
        limit="9999",
        row="abc",
        window="fortnight",
    )
    assert not at.exception
    notices = " ".join(texts(at.warning))
    for fragment in ("not a valid ISO", "Unknown status", "capped", "Bad row id", "Unknown window"):
        assert fragment in notices
    params = at.query_params
    assert params["window"] == "24h"
    assert "status" not in params and "row" not in params
    assert params["limit"] == "200"


def test_reversed_window_falls_back(open_app: OpenApp, demo_url: str) -> None:
    at = open_app(
        demo_url, strategy="kyc-depth", since="2026-01-15T12:00:00Z", until="2026-01-14T12:00:00Z"
    )
    assert not at.exception
    assert any("ends before it starts" in w.value for w in at.warning)


def test_database_down_says_what_to_do_without_leaking_the_password(
    open_app: OpenApp, down_url: str, markdown_text: Callable[[AppTest], str]
) -> None:
    at = open_app(down_url, strategy="credit-limit")
    assert not at.exception
    (error,) = at.error
    assert "Cannot reach the database" in error.value
    assert "STRATLOG_DATABASE_URL" in error.value
    assert any("ConnectionRefusedError" in c.value or "Connect" in c.value for c in at.code)
    assert "s3cret-pw" not in markdown_text(at) + " ".join(texts(at.code))
    assert [p.value for p in at.page_link] == [
        "Overview",
        "Insights",
        "Runbook",
        "Row detail",
        "Health",
    ]


def test_unreadable_sqlite_path_and_recovery_when_it_appears(
    open_app: OpenApp, demo_url: str, tmp_path: Path
) -> None:
    folder = tmp_path / "not-yet"
    url = f"sqlite+aiosqlite:///{folder / 'demo.db'}"
    at = open_app(url)
    assert not at.exception
    assert "No database file at" in at.error[0].value
    assert any(f"no database file at {folder / 'demo.db'}" in c.value for c in at.code)
    assert not folder.exists()  # nothing was created
    # The database comes back: nothing of the failure was cached, the next run just works.
    folder.mkdir()
    shutil.copy(demo_url.removeprefix("sqlite+aiosqlite:///"), folder / "demo.db")
    again = open_app(url, strategy="pricing-tier")
    assert not again.exception and not again.error
    assert int(metric(again, "Runs").replace(",", "")) >= 0


def test_empty_database_explains_how_to_get_data(open_app: OpenApp, empty_url: str) -> None:
    at = open_app(empty_url)
    assert not at.exception
    assert [t.value for t in at.title] == ["No runs recorded yet"]
    assert "stratlog demo" in at.info[0].value


def test_refresh_button_drops_cached_results(
    open_app: OpenApp, tmp_path: Path, demo_url: str, backend_for: Any, window: dict[str, str]
) -> None:
    copy = tmp_path / "copy.db"
    shutil.copy(demo_url.removeprefix("sqlite+aiosqlite:///"), copy)
    url = f"sqlite+aiosqlite:///{copy}"
    at = open_app(url, strategy="promo-eligibility", window="custom", **window)
    before = int(metric(at, "Runs").replace(",", ""))
    backend: Backend = backend_for(url)
    end = parse_utc(window["until"]) - timedelta(minutes=1)
    row = {"strategyId": "promo-eligibility", "status": "ok", "durationMs": 1.0, "nodes": 3}
    backend.run(backend.repository.insert_many([{**row, "createdAt": end}]))
    cached = open_app(url, strategy="promo-eligibility", window="custom", **window)
    assert int(metric(cached, "Runs").replace(",", "")) == before  # still the cached figure
    refresh = next(b for b in cached.button if b.label == "Refresh")
    refresh.click().run()
    fresh = open_app(url, strategy="promo-eligibility", window="custom", **window)
    assert int(metric(fresh, "Runs").replace(",", "")) == before + 1


def test_custom_window_form_writes_absolute_bounds(
    open_app: OpenApp, demo_url: str, window: dict[str, str]
) -> None:
    at = open_app(demo_url, strategy="kyc-depth", window="custom", **window)
    assert at.segmented_control(key="w_window").value == "custom"
    at.datetime_input(key="w_from").set_value(datetime(2026, 1, 15, 6, 0))
    at.datetime_input(key="w_to").set_value(datetime(2026, 1, 15, 9, 30))
    next(b for b in at.button if b.label == "Apply window").click().run()
    assert not at.exception
    assert at.query_params["since"] == "2026-01-15T06:00:00Z"
    assert at.query_params["until"] == "2026-01-15T09:30:00Z"
    assert at.query_params["window"] == "custom"


def test_custom_window_refuses_a_reversed_range(
    open_app: OpenApp, demo_url: str, window: dict[str, str]
) -> None:
    at = open_app(demo_url, strategy="kyc-depth", window="custom", **window)
    at.datetime_input(key="w_from").set_value(datetime(2026, 1, 15, 9, 0))
    at.datetime_input(key="w_to").set_value(datetime(2026, 1, 15, 8, 0))
    next(b for b in at.button if b.label == "Apply window").click().run()
    assert at.query_params["since"] == window["since"]  # unchanged


def test_preset_and_auto_refresh_controls(open_app: OpenApp, demo_url: str) -> None:
    at = open_app(demo_url, strategy="kyc-depth")
    assert at.toggle(key="w_auto").value is False  # auto-refresh is off by default
    at.segmented_control(key="w_window").set_value("7d").run()
    assert not at.exception
    params = at.query_params
    assert params["window"] == "7d"
    assert parse_utc(params["until"]) - parse_utc(params["since"]) == timedelta(days=7)
    fresh = open_app(demo_url, **params)
    fresh.toggle(key="w_auto").set_value(True).run()
    assert not fresh.exception


def test_estimated_percentiles_say_so(
    open_app: OpenApp, demo_url: str, window: dict[str, str], monkeypatch: Any
) -> None:
    """Above the exact limit the figures come from log histograms: the captions say ±1 %."""
    monkeypatch.setattr("stratlog.service.overview.EXACT_LIMIT", 10)
    at = open_app(demo_url, strategy="credit-limit", window="custom", **window)
    assert not at.exception
    basis = [c.value for c in at.caption if c.value.startswith(("Percentiles", "p50"))]
    assert len(basis) == 2 and all("±1\\%" in b and "log histogram" in b for b in basis)
    monkeypatch.undo()
    exact = open_app(demo_url, strategy="promo-eligibility", window="custom", **window)
    assert any("exact" in c.value for c in exact.caption)


def test_the_overview_compares_with_the_baseline_from_the_url(
    open_app: OpenApp, demo_url: str, window: dict[str, str], backend_for: Any
) -> None:
    from stratlog.service.compare import Baseline, fetch_comparison

    at = open_app(demo_url, strategy="fraud-screen", window="custom", compare="1d", **window)
    assert not at.exception and not at.warning
    assert at.query_params["compare"] == "1d"
    backend: Backend = backend_for(demo_url)
    since, until = parse_utc(window["since"]), parse_utc(window["until"])
    expected = backend.run(
        fetch_comparison(backend.repository, "fraud-screen", since, until, Baseline("1d"))
    )
    runs = next(m for m in at.metric if m.label == "Runs")
    delta = expected.current.total - expected.before.total
    assert str(runs.delta).startswith(f"{delta:+,}")
    assert any("Compared with the same window 1 day earlier" in c.value for c in at.caption)
    codes = frame_with(at, "Error code")
    assert list(codes["Baseline"]) == [c.before for c in expected.codes(10)]
    assert list(codes["New"]) == ["new" if c.new else "" for c in expected.codes(10)]


def test_compare_none_switches_the_baseline_off(
    open_app: OpenApp, demo_url: str, window: dict[str, str]
) -> None:
    at = open_app(demo_url, strategy="fraud-screen", window="custom", compare="none", **window)
    assert not at.exception and not at.warning
    assert not any(m.delta for m in at.metric)
    assert "Baseline" not in frame_with(at, "Error code").columns


def test_a_bad_compare_in_the_link_is_named_and_the_page_still_compares(
    open_app: OpenApp, demo_url: str, window: dict[str, str]
) -> None:
    at = open_app(demo_url, strategy="fraud-screen", window="custom", compare="banana", **window)
    assert not at.exception
    assert any("Unknown comparison" in w.value for w in at.warning)
    assert "compare" not in at.query_params  # rewritten to the default
    assert any(m.delta for m in at.metric)


def test_one_version_against_another_from_the_url(
    open_app: OpenApp, demo_url: str, window: dict[str, str], backend_for: Any
) -> None:
    """pricing-tier deployed 1.5.0 inside the window: version=1.5.0&compare=version:1.4.0
    shows 1.5.0's figures against 1.4.0's, the Versions table says what 1.5.0 brought."""
    from stratlog.demo import DROPPED_CASE, NEW_VERSION_ERROR_CODE
    from stratlog.service.compare import Baseline, fetch_comparison

    params = {"strategy": "pricing-tier", "window": "custom", **window}
    at = open_app(demo_url, version="1.5.0", compare="version:1.4.0", **params)
    assert not at.exception and not at.warning
    assert (at.query_params["version"], at.query_params["compare"]) == ("1.5.0", "version:1.4.0")
    backend: Backend = backend_for(demo_url)
    since, until = parse_utc(window["since"]), parse_utc(window["until"])
    expected = backend.run(
        fetch_comparison(backend.repository, "pricing-tier", since, until,
                         Baseline.parse("version:1.4.0"), version="1.5.0")
    )  # fmt: skip
    assert metric(at, "Runs") == f"{expected.current.total:,}"
    captions = [c.value.replace("\\", "") for c in at.caption]  # Markdown-escaped
    assert any("Only the runs of version 1.5.0" in c for c in captions)
    assert any("version 1.4.0 in the same window" in c for c in captions)
    codes = frame_with(at, "Error code")
    new = dict(zip(codes["Error code"], codes["New"], strict=True))
    assert new[NEW_VERSION_ERROR_CODE] == "new"
    versions = frame_with(at, "First seen (UTC)")
    assert list(versions["Version"]) == ["1.4.0", "1.5.0"]
    row = versions.set_index("Version").loc["1.5.0"]
    assert NEW_VERSION_ERROR_CODE in row["New error codes"]
    assert DROPPED_CASE in row["Cases stopped"]
    # The sidebar offers the other version as a baseline and lists both as filters.
    compare = next(s for s in at.selectbox if s.label == "Compare with")
    assert "Version 1.5.0 (same window)" not in compare.options  # the filter's own version
    version = next(s for s in at.selectbox if s.label == "Version")
    assert version.value == "1.5.0"


@pytest.mark.parametrize(
    ("params", "said"),
    [
        ({"compare": "version:9.9.9"}, "no run of version 9.9.9 in this window"),
        ({"compare": "version:1.5.0", "version": "1.5.0"}, "compared with itself"),
    ],
)
def test_a_version_comparison_that_cannot_be_made_says_why(
    open_app: OpenApp, demo_url: str, window: dict[str, str], params: dict[str, str], said: str
) -> None:
    at = open_app(demo_url, strategy="pricing-tier", window="custom", **window, **params)
    assert not at.exception
    assert any(said in w.value.replace("\\", "") for w in at.warning), [w.value for w in at.warning]
    assert not any(m.delta for m in at.metric)  # the plain Overview


def test_an_unknown_version_filter_shows_an_empty_overview_that_names_it(
    open_app: OpenApp, demo_url: str, window: dict[str, str]
) -> None:
    at = open_app(demo_url, strategy="pricing-tier", window="custom", version="9<b>", **window)
    assert not at.exception
    assert any("No runs of version 9\\<b\\>" in i.value for i in at.info), [
        i.value for i in at.info
    ]
    assert not any("<b>" in i.value for i in at.info)  # escaped, not markup
    assert metric(at, "Runs") == "0"


def test_the_sidebar_picks_a_version_and_a_version_baseline(
    open_app: OpenApp, demo_url: str, window: dict[str, str]
) -> None:
    at = open_app(demo_url, strategy="pricing-tier", window="custom", **window)
    version = next(s for s in at.selectbox if s.label == "Version")
    assert version.options == ["All versions", "1.4.0", "1.5.0"]
    version.select("1.5.0").run()
    assert not at.exception
    assert at.query_params["version"] == "1.5.0"
    compare = next(s for s in at.selectbox if s.label == "Compare with")
    assert "Version 1.4.0 (same window)" in compare.options
    assert "Version 1.5.0 (same window)" not in compare.options  # not against itself
    compare.select("version:1.4.0").run()
    assert not at.exception and not at.warning
    assert at.query_params["compare"] == "version:1.4.0"
    captions = [c.value.replace("\\", "") for c in at.caption]
    assert any("version 1.4.0 in the same window" in c for c in captions)
    next(s for s in at.selectbox if s.label == "Version").select("").run()
    assert "version" not in at.query_params
