"""Exports: PNG/CSV downloads on every panel, the snapshot, "Copy link"; nothing rendered early."""

from __future__ import annotations

import csv
import io
import struct
import zipfile
from collections.abc import Callable
from datetime import datetime, timedelta
from itertools import pairwise
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pandas as pd
import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from stratlog import export, report
from stratlog.service.overview import Overview, fetch_overview
from stratlog.ui import exports
from stratlog.ui.bridge import Backend
from stratlog.ui.state import iso_utc, parse_utc

OpenApp = Callable[..., AppTest]
RUNBOOK = "pages/runbook.py"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
PANELS = ("status", "timeseries", "errors", "cases", "durations", "points")


def downloads(at: AppTest) -> dict[str, Any]:
    """Download buttons by widget key."""
    return {str(b.proto.id).rsplit("-", 1)[-1]: b for b in at.get("download_button")}


@pytest.fixture(autouse=True)
def no_rendered_pngs() -> None:
    """Each test renders its own PNGs (the process keeps rendered ones)."""
    exports._PNGS.clear()


@pytest.fixture
def overview(demo_url: str, backend_for: Any, window: dict[str, str]) -> Overview:
    backend: Backend = backend_for(demo_url)
    since, until = parse_utc(window["since"]), parse_utc(window["until"])
    return backend.run(fetch_overview(backend.repository, "fraud-screen", since, until))


def test_every_overview_panel_offers_png_and_csv_and_renders_none_on_load(
    open_app: OpenApp, demo_url: str, window: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    rendered: list[Any] = []
    monkeypatch.setattr(export, "spec_png", lambda *a, **k: rendered.append(a) or b"")
    at = open_app(demo_url, strategy="fraud-screen", window="custom", **window)
    assert not at.exception
    buttons = downloads(at)
    assert {f"png_{p}" for p in PANELS} <= set(buttons)
    csvs = {"csv_status", "csv_timeseries", "csv_error_codes", "csv_cases", "csv_durations"}
    assert csvs | {"csv_points", "snapshot_zip"} <= set(buttons)
    assert all(b.proto.ignore_rerun for b in buttons.values())  # a download never reruns
    assert all(b.proto.deferred_file_id for b in buttons.values())  # made on click only
    assert rendered == []  # the page load rendered no PNG


def test_empty_window_offers_no_exports(
    open_app: OpenApp, demo_url: str, demo_end: datetime
) -> None:
    later = demo_end + timedelta(days=30)
    bounds = {"since": iso_utc(later), "until": iso_utc(later + timedelta(hours=1))}
    at = open_app(demo_url, strategy="credit-limit", **bounds)
    assert not at.exception
    buttons = downloads(at)
    assert set(buttons) == {"snapshot_zip"} and buttons["snapshot_zip"].proto.disabled


def test_copy_link_reproduces_the_view(open_app: OpenApp, demo_url: str) -> None:
    at = open_app(demo_url, strategy="kyc-depth", window="6h", status="limit")
    (link,) = [c.value for c in at.code]
    parts = urlsplit(link)
    params = {k: v[0] for k, v in parse_qs(parts.query).items()}
    assert parts.path == "/overview"
    assert params == {**at.query_params, "window": "custom"}  # absolute bounds, pinned
    assert parse_utc(params["until"]) - parse_utc(params["since"]) == timedelta(hours=6)
    again = open_app(demo_url, **params)
    assert not again.warning and [c.value for c in again.code] == [link]


@pytest.mark.parametrize("name", PANELS)
def test_chart_png_is_a_titled_png_at_scale_two(overview: Overview, name: str) -> None:
    png = exports.chart_png(overview, name)
    assert png[:8] == PNG_MAGIC
    width, _ = struct.unpack(">II", png[16:24])
    assert width >= 2 * exports.CHART_EXPORTS[name][1]


def test_panel_csvs_parse_to_the_overview(overview: Overview) -> None:
    status = pd.read_csv(io.BytesIO(exports.overview_csv(overview, "status")))
    assert dict(zip(status["status"], status["count"], strict=True)) == {
        s: overview.statusCounts.get(s, 0) for s in ("ok", "error", "timeout", "limit")
    }
    series = pd.read_csv(io.BytesIO(exports.overview_csv(overview, "timeseries")))
    assert series["count"].sum() == overview.total
    cases = pd.read_csv(io.BytesIO(exports.overview_csv(overview, "cases")))
    assert list(cases["count"]) == [c["count"] for c in overview.caseNames]
    durations = pd.read_csv(io.BytesIO(exports.overview_csv(overview, "durations")))
    assert durations.loc[0, "p50"] == pytest.approx(overview.durations.p50)
    points = pd.read_csv(io.BytesIO(exports.overview_csv(overview, "points")))
    assert points["count"].sum() == overview.points.total


def test_runbook_offers_its_rows_as_csv(
    open_app: OpenApp, demo_url: str, window: dict[str, str]
) -> None:
    at = open_app(demo_url, RUNBOOK, strategy="fraud-screen", status="error", **window)
    assert "csv_runbook" in downloads(at)
    assert not at.exception


@pytest.fixture
def clicks(monkeypatch: pytest.MonkeyPatch) -> dict[str, Callable[[], bytes]]:
    """The deferred data of every download button the page renders, by key: calling it clicks."""
    found: dict[str, Callable[[], bytes]] = {}
    real = st.download_button

    def recording(label: str, data: Any, *args: Any, **kwargs: Any) -> bool:
        found[kwargs["key"]] = data
        return real(label, data, *args, **kwargs)

    monkeypatch.setattr(st, "download_button", recording)
    return found


def test_the_error_code_download_has_the_snapshots_headers_and_rows(
    open_app: OpenApp, demo_url: str, window: dict[str, str], overview: Overview, clicks: Any
) -> None:
    compared = open_app(demo_url, strategy="fraud-screen", window="custom", **window)
    assert not compared.exception
    head = clicks["csv_error_codes"]().split(b"\r\n")[0]  # the table as shown: with baseline
    assert head == b"errorCode,count,shareOfFailures,new,baseline,change"
    at = open_app(demo_url, strategy="fraud-screen", window="custom", compare="none", **window)
    assert not at.exception
    data = clicks["csv_error_codes"]()
    assert data.split(b"\r\n")[0] == b"errorCode,count,shareOfFailures"  # report.COLUMNS
    snapshot = report.build_snapshot(overview, charts=False)
    assert (
        data == snapshot.files["error_codes.csv"] == exports.overview_csv(overview, "error_codes")
    )
    assert len(pd.read_csv(io.BytesIO(data))) == len(overview.errorCodes) > 0


def test_the_dashboard_snapshot_says_where_it_came_from_and_links_back(
    open_app: OpenApp,
    demo_url: str,
    window: dict[str, str],
    clicks: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(export, "spec_png", lambda *a, **k: b"png")  # the document is the point
    at = open_app(demo_url, strategy="fraud-screen", window="custom", **window)
    (link,) = [c.value for c in at.code]  # "Copy link": this view, pinned
    with zipfile.ZipFile(io.BytesIO(clicks["snapshot_zip"]())) as archive:
        text = archive.read("snapshot.md").decode()
    assert " UTC from the dashboard\n" in text and "stratlog snapshot" not in text
    assert f"\n- **Dashboard link:** `{link}`\n" in text  # inline code, not a live link
    params = parse_qs(urlsplit(link).query)
    assert params["strategy"] == ["fraud-screen"] and params["since"] == [window["since"]]


def test_the_duration_csv_is_one_table(overview: Overview) -> None:
    text = exports.overview_csv(overview, "durations").decode()
    assert text.count("\r\n") == 2  # a header and one row: no second table below it
    frame = pd.read_csv(io.StringIO(text))
    assert tuple(frame.columns) == exports.DURATION_COLUMNS == (
        "figure", "p50", "p95", "p99", "min", "mean", "max", "sampled", "total", "exact", "basis"
    )  # fmt: skip
    row, s = frame.iloc[0], overview.summary
    assert row["figure"] == "duration (ms)" and row["p50"] == pytest.approx(overview.durations.p50)
    assert (row["min"], row["mean"], row["max"]) == pytest.approx(
        (s["minDurationMs"], s["avgDurationMs"], s["maxDurationMs"])
    )
    assert row["total"] == overview.total and row["basis"] == overview.durations.describe()


def test_the_points_csv_has_rounded_bin_edges_that_still_touch(overview: Overview) -> None:
    cells = list(csv.DictReader(io.StringIO(exports.overview_csv(overview, "points").decode())))
    edges = [cell for row in cells for cell in (row["start"], row["end"])]
    assert all(len(edge.partition(".")[2]) <= 4 for edge in edges), edges  # no -39.84584798186362
    assert all(a["end"] == b["start"] for a, b in pairwise(cells))
    assert sum(int(row["count"]) for row in cells) == overview.points.total


def test_the_timeseries_csv_has_every_bucket_in_order(overview: Overview) -> None:
    series = pd.read_csv(io.BytesIO(exports.overview_csv(overview, "timeseries")))
    buckets = (overview.until - overview.since).total_seconds() / overview.bucketSeconds
    assert len(series) == 4 * buckets  # every bucket x every status, empty ones as zeros
    starts = pd.to_datetime(series["bucketStart"])
    assert starts.is_monotonic_increasing and starts.nunique() == buckets
    assert series["count"].sum() == overview.total


def test_the_status_png_is_titled_like_its_panel(
    overview: Overview, monkeypatch: pytest.MonkeyPatch
) -> None:
    specs: list[Any] = []
    monkeypatch.setattr(export, "spec_png", lambda spec, *a, **k: specs.append(spec) or b"")
    exports.chart_png(overview, "status")
    assert specs[0]["title"]["text"] == "fraud-screen · Outcome by status"


def test_a_second_click_on_the_same_result_gets_the_same_png_unrendered(
    overview: Overview, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = exports.chart_png(overview, "points")

    def no_render(*args: Any, **kwargs: Any) -> bytes:
        raise AssertionError("rendered again")

    monkeypatch.setattr(export, "spec_png", no_render)
    assert exports.chart_png(overview, "points") == first
    with pytest.raises(AssertionError, match="rendered again"):
        exports.chart_png(overview, "cases")  # another chart: rendered
