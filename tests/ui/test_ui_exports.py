"""Exports: PNG/CSV downloads on every panel, the snapshot, "Copy link"; nothing rendered early."""

from __future__ import annotations

import io
import struct
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from stratlog import export
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
