"""Altair chart builders: valid specs, fixed status colours, UTC time axis, empty states."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from typing import Any

import pytest
import vl_convert as vlc

from stratlog import charts
from stratlog.service.overview import Overview
from stratlog.service.stats import HistogramBin, Percentiles, percentiles, weighted_histogram
from stratlog.vocabulary import NO_RULE, NO_RULE_LABEL, STATUS_COLORS, STATUS_ORDER

END = datetime(2026, 1, 15, 12, tzinfo=UTC)


def make_overview(empty: bool = False) -> Overview:
    """A small hand-made Overview (or an empty one)."""
    start = END - timedelta(hours=1)
    status = {} if empty else {"ok": 90, "error": 7, "timeout": 3}
    series = (
        []
        if empty
        else [
            {"bucketStart": start, "status": "ok", "count": 50},
            {"bucketStart": start, "status": "error", "count": 7},
            {"bucketStart": start + timedelta(minutes=30), "status": "ok", "count": 40},
            {"bucketStart": start + timedelta(minutes=30), "status": "timeout", "count": 3},
        ]
    )
    points = [] if empty else [float(i % 10) for i in range(90)]
    durations = [] if empty else [1.0 + i for i in range(100)]
    total = sum(status.values())
    summary: dict[str, Any] = {
        "count": total,
        "minDurationMs": min(durations, default=None),
        "avgDurationMs": sum(durations) / len(durations) if durations else None,
        "maxDurationMs": max(durations, default=None),
        "avgNodes": None if empty else 12.0,
        "sumPoints": None if empty else sum(points),
    }
    return Overview(
        strategyId="s",
        since=start,
        until=END,
        bucketSeconds=1800,
        statusCounts=status,
        errorCodes=[] if empty else [{"errorCode": "BOOM", "count": 7}],
        caseNames=[]
        if empty
        else [{"caseName": "gold", "count": 60}, {"caseName": None, "count": 40}],
        summary=summary,
        durations=percentiles(durations, total),
        points=percentiles(points),
        pointsHistogram=weighted_histogram([(p, 1) for p in points]),
        timeseries=series,
    )


def spec(chart: Any) -> dict[str, Any]:
    """The Vega-Lite dict (Altair validates it against the schema)."""
    result: dict[str, Any] = chart.to_dict()
    return result


def find(node: Any, key: str) -> list[Any]:
    """Every value stored under ``key`` anywhere in a nested spec."""
    found: list[Any] = []
    if isinstance(node, dict):
        for k, v in node.items():
            if k == key:
                found.append(v)
            found += find(v, key)
    elif isinstance(node, list):
        for item in node:
            found += find(item, key)
    return found


def test_every_overview_chart_is_a_valid_spec() -> None:
    for name, chart in charts.overview_charts(make_overview()).items():
        assert spec(charts.style(chart)), name


def test_status_colours_are_fixed_everywhere() -> None:
    ov = make_overview()
    for chart in (
        charts.status_donut(ov.status_rows()),
        charts.timeseries(ov.timeseries, 1800, ov.since, ov.until),
    ):
        scales = [s for s in find(spec(chart), "scale") if isinstance(s, dict) and "range" in s]
        assert {
            "domain": list(STATUS_ORDER),
            "range": [STATUS_COLORS[s] for s in STATUS_ORDER],
        } in scales


def test_selections_carry_the_runbook_filter_values() -> None:
    ov = make_overview()
    donut = spec(charts.status_donut(ov.status_rows()))
    assert charts.STATUS_SELECTION in [p["name"] for p in find(donut, "params")[0]]
    bars = spec(charts.case_bars(ov.caseNames, ov.total))
    values = json.dumps(bars)
    assert NO_RULE in values and NO_RULE_LABEL in values
    assert charts.CASE_SELECTION in values


def layers(chart: dict[str, Any], data: Any = None) -> list[dict[str, Any]]:
    """Every leaf view of a (possibly layered) spec, in drawing order, with the data it draws
    (its own or its layer's: Altair hoists a lone layer's data)."""
    data = chart.get("data", data)
    if "layer" not in chart:
        return [{**chart, "data": data}]
    return [leaf for sub in chart["layer"] for leaf in layers(sub, data)]


def values(chart: dict[str, Any], view: dict[str, Any]) -> list[dict[str, Any]]:
    """The data rows of one leaf view (inline or in the top-level datasets)."""
    data = view.get("data", {})
    if "values" in data:
        return list(data["values"])
    return list(chart["datasets"][data["name"]])


def test_time_axis_is_utc_and_stacks_add_up() -> None:
    ov = make_overview()
    chart = spec(charts.timeseries(ov.timeseries, ov.bucketSeconds, ov.since, ov.until))
    bars, rate = layers(chart)  # the stacked bars, then the failure-rate line
    assert bars["encoding"]["x"]["scale"]["type"] == "utc"
    first = [r for r in values(chart, bars) if r["start"] == "2026-01-15T11:00:00Z"]
    assert [(r["status"], r["low"], r["high"]) for r in first] == [("ok", 0, 50), ("error", 50, 57)]
    rates = {r["start"]: r["rate"] for r in values(chart, rate)}
    assert rates["2026-01-15T11:15:00Z"] == pytest.approx(7 / 57)  # at the bucket's middle


def test_the_baseline_is_dashed_and_moved_onto_the_window() -> None:
    ov = make_overview()
    shift = ov.until - ov.since
    before = [{**r, "bucketStart": r["bucketStart"] - shift} for r in ov.timeseries]
    chart = spec(
        charts.timeseries(
            ov.timeseries, ov.bucketSeconds, ov.since, ov.until, baseline=before, offset=shift
        )
    )
    bars, dashed, _ = layers(chart)
    assert dashed["mark"]["strokeDash"] == charts.BASELINE_DASH
    totals: dict[str, int] = {}
    for r in values(chart, bars):
        totals[r["start"]] = totals.get(r["start"], 0) + r["count"]
    assert {r["start"]: r["runs"] for r in values(chart, dashed)} == totals
    # the bars' tooltip says the baseline's runs; the line has none, so it takes no clicks
    assert {r["start"]: r["baselineRuns"] for r in values(chart, bars)} == totals
    assert "tooltip" not in dashed["encoding"]


def test_the_dashed_baseline_does_not_swallow_a_click_on_a_bar() -> None:
    """A click where the baseline crosses a bar must reach the bar's bucket selection: the
    compiled Vega marks the line non-interactive (a browser test once clicked the line)."""
    ov = make_overview()
    shift = ov.until - ov.since
    before = [{**r, "bucketStart": r["bucketStart"] - shift} for r in ov.timeseries]
    chart = charts.timeseries(
        ov.timeseries, ov.bucketSeconds, ov.since, ov.until,
        baseline=before, offset=shift, selectable=True,
    )  # fmt: skip
    vega = vlc.vegalite_to_vega(spec(charts.style(chart)))

    def marks(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [m for i in items for m in [i, *marks(i.get("marks", []))]]

    kinds = {(m["type"], m.get("interactive")) for m in marks(vega["marks"]) if "style" in m}
    assert ("rect", True) in kinds  # the bars take the click
    assert ("line", False) in kinds  # the baseline does not


@pytest.mark.parametrize("name", ["status", "timeseries", "errors", "cases", "durations", "points"])
def test_empty_overview_gives_empty_state_charts(name: str) -> None:
    chart = spec(charts.overview_charts(make_overview(empty=True))[name])
    assert "no " in json.dumps(chart)  # "no runs in this window" and the like
    assert chart["mark"]["type"] == "text"


# -- what a pasted PNG shows: the rendered scene (vl-convert), not just the spec ----------------


def scene(chart: Any, width: int = 480) -> dict[str, Any]:
    """The rendered scenegraph of a styled chart at ``width`` CSS pixels."""
    graph: dict[str, Any] = vlc.vegalite_to_scenegraph(
        {**spec(charts.style(chart)), "width": width}
    )
    return graph


def _walk(node: Any, orient: str | None = None) -> Iterator[tuple[dict[str, Any], str | None]]:
    """Every dict of a scenegraph with the orient of the axis (or legend) it sits in."""
    if isinstance(node, dict):
        orient = node.get("orient", orient)
        yield node, orient
        for value in node.values():
            yield from _walk(value, orient)
    elif isinstance(node, list):
        for item in node:
            yield from _walk(item, orient)


def axis_labels(graph: dict[str, Any]) -> dict[str, list[str]]:
    """The tick labels drawn on each axis, by orient ("left", "bottom"); blank or hidden: out."""
    labels: dict[str, list[str]] = {}
    for node, orient in _walk(graph):
        if node.get("role") == "axis-label" and orient is not None:
            shown = [i for i in node["items"] if i.get("opacity", 1)]  # 0: hidden, overlapping
            texts = [str(i["text"]) for i in shown if str(i.get("text", ""))]
            labels.setdefault(orient, []).extend(texts)
    return labels


def mark_texts(graph: dict[str, Any]) -> list[str]:
    """The text marks of a chart (labels on the plot, not on axes or legends)."""
    return [
        str(item["text"])
        for node, _ in _walk(graph)
        if node.get("role") == "mark" and node.get("marktype") == "text"
        for item in node["items"]
    ]


def _lab(colour: str) -> tuple[float, float, float]:
    """CIE L*a*b* (D65) of an sRGB hex colour."""
    rgb = [int(colour[i : i + 2], 16) / 255 for i in (1, 3, 5)]
    r, g, b = (c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in rgb)
    xyz = (
        (0.4124 * r + 0.3576 * g + 0.1805 * b) / 0.95047,
        0.2126 * r + 0.7152 * g + 0.0722 * b,
        (0.0193 * r + 0.1192 * g + 0.9505 * b) / 1.08883,
    )
    fx, fy, fz = (v ** (1 / 3) if v > 0.008856 else 7.787 * v + 16 / 116 for v in xyz)
    return 116 * fy - 16, 500 * (fx - fy), 200 * (fy - fz)


def _delta_e(a: str, b: str) -> float:
    return math.dist(_lab(a), _lab(b))


def _durations(values: list[float]) -> tuple[Percentiles, dict[str, Any]]:
    summary = {"minDurationMs": min(values), "maxDurationMs": max(values),
               "avgDurationMs": sum(values) / len(values)}  # fmt: skip
    return percentiles(values), summary


def test_duration_strip_labels_each_percentile_and_the_mean_with_its_value() -> None:
    p, summary = _durations([2.0, 5.0, 9.0, 12.0, 50.0])
    texts = mark_texts(scene(charts.duration_strip(p, summary)))
    assert sorted(texts) == ["mean 15.6 ms", "p50 9.0 ms", "p95 42.4 ms", "p99 48.5 ms"]


def test_percentile_colours_tell_apart_and_are_no_status_colour() -> None:
    colours = [colour for _, colour in charts.PERCENTILE_MARKS]
    assert [name for name, _ in charts.PERCENTILE_MARKS] == ["p50", "p95", "p99"]
    pairs = [(a, b) for i, a in enumerate(colours) for b in colours[i + 1 :]]
    assert min(_delta_e(a, b) for a, b in pairs) >= 40  # the three greys were 18 apart
    statuses = [c.lower() for c in STATUS_COLORS.values()]
    assert all(_delta_e(c, s) >= 30 for c in colours for s in statuses)  # none reads as a status


def _x_encoding(chart: Any) -> dict[str, Any]:
    """The first x encoding with a scale (every layer of the strip shares it)."""
    return next(e["x"] for e in find(spec(chart), "encoding") if "scale" in e.get("x", {}))


def test_duration_axis_is_log_from_the_fastest_run_without_a_zero_tick() -> None:
    p, summary = _durations([1.289, 5.0, 7.0, 16.6, 28.6, 65.302])
    chart = charts.duration_strip(p, summary)
    x = _x_encoding(chart)
    assert x["scale"]["type"] == "log" and x["scale"]["domain"] == [1.289, 65.302]
    assert x["title"] == "duration (ms, log scale)"
    ticks = axis_labels(scene(chart))["bottom"]
    assert ticks and "0" not in ticks
    assert all(1.289 <= float(t) <= 65.302 for t in ticks)


def test_a_zero_ms_run_gets_an_axis_titled_for_what_it_is() -> None:
    p, summary = _durations([0.0, 0.2, 0.5, 3.0, 40.0])
    x = _x_encoding(charts.duration_strip(p, summary))
    assert x["scale"]["type"] == "symlog"  # log cannot place 0 ms
    assert x["title"] == "duration (ms, linear below 1, log above)"


def _tiny_or_large(scale: int) -> dict[str, Any]:
    """Every count chart's inputs with counts of 1-3 (scale 1) or of thousands."""
    start = END - timedelta(hours=1)
    series = [
        {"bucketStart": start + timedelta(minutes=10 * i), "status": "ok", "count": n * scale}
        for i, n in enumerate([1, 3, 2, 1])
    ]
    bins = [HistogramBin(float(i), float(i + 1), n * scale) for i, n in enumerate([1, 2, 3])]
    cases = [{"caseName": "gold", "count": 3 * scale}, {"caseName": None, "count": 1 * scale}]
    codes = [{"errorCode": "BOOM", "count": 2 * scale}, {"errorCode": "SLOW", "count": scale}]
    return {
        "left": [charts.timeseries(series, 600, start, END), charts.points_histogram(bins)],
        "bottom": [charts.case_bars(cases, 4 * scale), charts.error_code_bars(codes, 3 * scale)],
    }


@pytest.mark.parametrize("scale", [1, 7_919, 150_001])
def test_every_count_axis_shows_whole_numbers_only(scale: int) -> None:
    for orient, built in _tiny_or_large(scale).items():
        for chart in built:
            ticks = axis_labels(scene(chart))[orient]
            assert ticks[0] == "0" and len(set(ticks)) == len(ticks), ticks
            assert all(re.fullmatch(r"\d{1,3}(,\d{3})*", t) for t in ticks), ticks
            values = sorted(int(t.replace(",", "")) for t in ticks)  # overlap checks reorder
            steps = {b - a for a, b in pairwise(values)}
            assert min(steps) >= 1 and len(steps) == 1, ticks


def test_histogram_bin_edges_are_rounded_and_still_touch() -> None:
    values = [(-39.84584798186362, 247), (0.0, 30), (-5.1234567, 12)]
    bins = weighted_histogram(values)  # edges like -37.85355558277044
    rounded = charts.rounded_bins(bins)
    assert rounded[0].start == -39.846 and rounded[-1].end == 0.0
    assert [b.count for b in rounded] == [b.count for b in bins]
    assert all(a.end == b.start for a, b in pairwise(rounded))
    assert all(len(repr(v).split(".")[-1]) <= 3 for b in rounded for v in (b.start, b.end))
    data = spec(charts.points_histogram(bins))
    rows = data["data"]["values"] if "values" in data.get("data", {}) else None
    rows = rows or next(iter(data["datasets"].values()))
    assert [(r["start"], r["end"]) for r in rows] == [(b.start, b.end) for b in rounded]
