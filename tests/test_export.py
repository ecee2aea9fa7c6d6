"""Exports: chart PNGs (vl-convert, scale 2, white, titled) and CSVs that round-trip in pandas."""

from __future__ import annotations

import csv
import io
import re
import struct
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import altair as alt
import pandas as pd
import pytest
import vl_convert as vlc
from PIL import Image

from stratlog import charts, export
from stratlog.service.overview import Overview
from stratlog.service.stats import HistogramBin, percentiles

SINCE = datetime(2026, 3, 1, 6, tzinfo=UTC)
UNTIL = datetime(2026, 3, 1, 7, tzinfo=UTC)
MADE = datetime(2026, 3, 2, 9, 15, 30, tzinfo=UTC)


def _bars() -> alt.Chart:
    data = alt.Data(values=[{"status": "ok", "n": 21}, {"status": "error", "n": 8}])
    return alt.Chart(data).mark_bar().encode(x="n:Q", y="status:N").properties(height=120)


def _png_size(png: bytes) -> tuple[int, int]:
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and png[12:16] == b"IHDR"
    width, height = struct.unpack(">II", png[16:24])
    return int(width), int(height)


def _svg_size(spec: dict[str, Any]) -> tuple[float, float]:
    svg = vlc.vegalite_to_svg(spec)
    match = re.search(r'<svg[^>]* width="([\d.]+)" height="([\d.]+)"', svg)
    assert match is not None
    return float(match.group(1)), float(match.group(2))


def test_title_names_strategy_window_in_utc_and_generation_time():
    local = timezone(timedelta(hours=2))
    title = export.chart_title("fraud-screen", SINCE.astimezone(local), UNTIL, MADE, "Runs")
    assert title["text"] == "fraud-screen · Runs"
    assert title["subtitle"] == [
        "2026-03-01 06:00:00 → 2026-03-01 07:00:00 UTC",
        "generated 2026-03-02 09:15:30 UTC",
    ]


def test_spec_has_the_title_a_white_background_and_a_width():
    title = export.chart_title("fraud-screen", SINCE, UNTIL, MADE)
    spec = export.chart_spec(_bars(), title, width=400)
    assert spec["title"]["text"] == "fraud-screen"
    assert "2026-03-01 06:00:00 → 2026-03-01 07:00:00 UTC" in spec["title"]["subtitle"]
    assert spec["background"] == "white" and spec["width"] == 400
    assert export.chart_spec({**spec, "width": 250}, title)["width"] == 250  # kept when set


def test_png_is_twice_the_css_size_with_a_white_background():
    png = export.chart_png(_bars(), strategy="fraud-screen", since=SINCE, until=UNTIL,
                           heading="Runs by status", generated=MADE, width=400)  # fmt: skip
    title = export.chart_title("fraud-screen", SINCE, UNTIL, MADE, "Runs by status")
    css_width, css_height = _svg_size(export.chart_spec(_bars(), title, width=400))
    width, height = _png_size(png)
    assert (width, height) == (round(css_width * 2), round(css_height * 2))
    assert width > 800  # the 400 px plot plus axis labels, doubled
    image = Image.open(io.BytesIO(png)).convert("RGB")
    assert image.getpixel((1, 1)) == (255, 255, 255)
    assert image.getpixel((width - 2, height - 2)) == (255, 255, 255)


def test_remote_data_is_never_fetched():
    spec = {"data": {"url": "http://127.0.0.1:9/x.json"}, "mark": "bar"}
    with pytest.raises(Exception, match="not allowed"):
        export.spec_png(spec)


def make_overview(**overrides: Any) -> Overview:
    """A small hand-made Overview of the fraud-screen spike (no database needed)."""
    series = [
        {"bucketStart": SINCE + timedelta(minutes=m), "status": s, "count": n}
        for m, s, n in [(0, "ok", 5), (0, "error", 3), (30, "ok", 9), (30, "timeout", 1)]
    ]
    summary = {
        "count": 18, "avgDurationMs": 9.0, "minDurationMs": 2.0, "maxDurationMs": 50.0,
        "sumDurationMs": 162.0, "avgNodes": 150.0, "minNodes": 90, "maxNodes": 300,
        "sumNodes": 2700, "sumPoints": -40.0,
    }  # fmt: skip
    fields: dict[str, Any] = {
        "strategyId": "fraud-screen",
        "since": SINCE,
        "until": UNTIL,
        "bucketSeconds": 1800,
        "statusCounts": {"ok": 14, "error": 3, "timeout": 1},
        "errorCodes": [
            {"errorCode": "UPSTREAM_UNAVAILABLE", "count": 3},
            {"errorCode": "TIMEOUT", "count": 1},
        ],
        "caseNames": [{"caseName": "velocity_ok", "count": 10}, {"caseName": None, "count": 4}],
        "summary": summary,
        "durations": percentiles([2.0, 5.0, 9.0, 12.0, 50.0]),
        "points": percentiles([0.0, -5.0, -25.0]),
        "pointsHistogram": [HistogramBin(-25.0, -12.5, 1), HistogramBin(-12.5, 0.0, 2)],
        "timeseries": series,
    }
    return Overview(**{**fields, **overrides})


def test_every_overview_chart_exports_as_a_titled_png():
    overview = make_overview()
    built = charts.overview_charts(overview, selectable=False)
    assert set(built) >= {"status", "timeseries", "errors", "cases", "durations", "points"}
    for name, chart in built.items():
        styled = charts.style(chart)
        title = export.chart_title("fraud-screen", SINCE, UNTIL, MADE, name)
        spec = export.chart_spec(styled, title)
        assert spec["title"]["text"] == f"fraud-screen · {name}"
        width, height = _png_size(export.spec_png(spec))
        css_width, css_height = _svg_size(spec)
        assert (width, height) == (round(css_width * 2), round(css_height * 2)), name


def test_csv_of_rows_round_trips_through_pandas():
    at = datetime(2026, 3, 1, 6, 5, 20, 123456, tzinfo=UTC)
    rows = [
        {"id": 1, "createdAt": at, "errorCode": "UPSTREAM_UNAVAILABLE",
         "errorMessage": 'refused, "quoted"\nsecond line', "points": None, "durationMs": 30.75},
        {"id": 2, "createdAt": at + timedelta(seconds=1), "errorCode": None,
         "errorMessage": "=cmd|' /C calc'!A0 ünïcode", "points": -5.0, "durationMs": 2.5},
    ]  # fmt: skip
    frame = pd.read_csv(io.BytesIO(export.csv_bytes(rows)), keep_default_na=False,
                        na_values=[""])  # fmt: skip
    assert list(frame.columns) == list(rows[0])
    assert frame["id"].tolist() == [1, 2]
    assert pd.to_datetime(frame["createdAt"]).tolist() == [r["createdAt"] for r in rows]
    # the second message would run as a formula in a spreadsheet: it gets a leading quote
    assert frame["errorMessage"].tolist() == [
        rows[0]["errorMessage"],
        f"'{rows[1]['errorMessage']}",
    ]
    assert frame["errorCode"].fillna("-").tolist() == ["UPSTREAM_UNAVAILABLE", "-"]
    assert frame["points"].isna().tolist() == [True, False]
    assert frame["durationMs"].tolist() == [30.75, 2.5]


def test_csv_writes_payloads_as_json_and_keeps_column_order():
    rows = [{"b": {"z": 1, "a": [1, 2]}, "a": 3, "ignored": "x"}]
    text = export.csv_bytes(rows, columns=["a", "b"]).decode()
    assert text == 'a,b\r\n3,"{""a"": [1, 2], ""z"": 1}"\r\n'
    assert export.csv_bytes([], columns=["a", "b"]) == b"a,b\r\n"


def test_csv_of_a_dataframe_keeps_its_rows():
    frame = pd.DataFrame({"status": ["ok", "error"], "count": [21, 8], "share": [0.724, 0.276]})
    back = pd.read_csv(io.BytesIO(export.csv_bytes(frame)))
    pd.testing.assert_frame_equal(back, frame)
    only = pd.read_csv(io.BytesIO(export.csv_bytes(frame, columns=["count"])))
    assert only.columns.tolist() == ["count"]


#: Cells a spreadsheet would run as a formula (OWASP's CSV injection list).
FORMULAS = ['=HYPERLINK("http://evil","x")', "+1", "-2+3", "@SUM(A1)", "\tx", "\rx"]


def _cells(data: bytes) -> list[list[str]]:
    """The CSV's cells exactly as written (the csv module reads quoted CR and tabs as they are)."""
    return list(csv.reader(io.StringIO(data.decode("utf-8"), newline="")))


@pytest.mark.parametrize("formula", FORMULAS)
def test_csv_cells_a_spreadsheet_would_run_get_a_leading_quote(formula: str) -> None:
    rows = [{"errorCode": formula, "errorMessage": formula, "points": -40.5, "nodes": -3,
             "status": "error", "caseName": None}]  # fmt: skip
    header, row = _cells(export.csv_bytes(rows))
    assert header == list(rows[0])
    assert row == [f"'{formula}", f"'{formula}", "-40.5", "-3", "error", ""]


def test_csv_of_a_dataframe_quotes_formulas_and_keeps_numbers() -> None:
    frame = pd.DataFrame({"errorCode": [*FORMULAS, "UPSTREAM_UNAVAILABLE", None],
                          "points": [-40.5] * 7 + [2.0], "nodes": [-3] * 8})  # fmt: skip
    data = export.csv_bytes(frame)
    codes = [row[0] for row in _cells(data)[1:]]
    assert codes == [*(f"'{f}" for f in FORMULAS), "UPSTREAM_UNAVAILABLE", ""]
    back = pd.read_csv(io.BytesIO(data))
    assert back["points"].tolist() == [-40.5] * 7 + [2.0] and back["nodes"].tolist() == [-3] * 8
    assert frame["errorCode"].tolist()[0] == FORMULAS[0]  # the caller's frame is not changed


def test_csv_a_carriage_return_inside_a_cell_cannot_start_a_new_row() -> None:
    # a spreadsheet reads a bare CR as a row break: unquoted, "=1" would be a new row's formula
    rows = [{"errorMessage": "refused\r=1", "count": 2}, {"errorMessage": "ok", "count": 3}]
    assert _cells(export.csv_bytes(rows)) == [
        ["errorMessage", "count"], ["refused\r=1", "2"], ["ok", "3"]
    ]  # fmt: skip


def test_csv_headers_are_quoted_like_cells() -> None:
    frame = pd.DataFrame({"=cmd": ["x"], "status": ["ok"]})
    assert _cells(export.csv_bytes(frame))[0] == ["'=cmd", "status"]


def test_file_names_are_safe_and_sortable():
    name = export.file_name("fraud/screen ../x", SINCE, UNTIL, "status", "png")
    assert name == "fraud_screen_.._x_20260301T0600Z-20260301T0700Z_status.png"
    assert "/" not in name and not name.startswith(".")
    assert export.safe_name("...") == "unnamed"
